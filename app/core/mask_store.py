"""Per-frame slot maps kept PNG-compressed in memory, with a small LRU of decoded frames.

A 10,000-frame 720p video needs ~9 GB as raw uint8 maps but a few hundred MB as PNG, and a
project can leave saved frames on disk entirely (``loader``). The store knows nothing about
tracks: a slot map is just a small integer image whose meaning lives in the annotation tables.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import cv2
import numpy as np

from dvis_models.atomic import png_bytes

#: Reads a frame's stored PNG bytes from elsewhere (a project folder) with a name for error messages
#: (the file), or returns None when that frame has no stored map (all void).
Loader = Callable[[int], "tuple[bytes, str] | None"]


def encode_slots(slots: np.ndarray) -> bytes:
    """PNG bytes of a uint8/uint16 slot map (single channel, so no colour swap)."""
    return png_bytes(slots, rgb=False, compression=1)


def decode_slots(data: bytes, height: int, width: int, source: str = "slot map") -> np.ndarray:
    """Inverse of :func:`encode_slots`; raises ValueError naming ``source`` when the bytes are not a valid map."""
    try:  # OpenCV raises (rather than returning None) on an empty buffer
        slots = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error:
        slots = None
    if slots is None or slots.ndim != 2 or slots.shape != (height, width) or slots.dtype not in (np.uint8, np.uint16):
        got = "undecodable data" if slots is None else f"{slots.shape} {slots.dtype}"
        raise ValueError(f"{source}: expected a {height}x{width} uint8/uint16 PNG, got {got}")
    return slots


class MaskStore:
    """Slot maps of ``num_frames`` frames; frames never written are all 0 (void)."""

    def __init__(self, num_frames: int, height: int, width: int, loader: Loader | None = None, cache_frames: int = 48,
                 slot_limit: Callable[[], int] | None = None):
        self.num_frames = num_frames
        self.height = height
        self.width = width
        self._loader = loader
        self._blobs: dict[int, bytes] = {}
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_frames = cache_frames
        self._cache_lock = threading.Lock()  # a GUI worker (diagnostics) reads frames while the UI thread shows them
        self.dirty: set[int] = set()  # frames changed since the last save (the project writes only these)
        # Stored frames whose map is lost or unreadable: shown void, left out of exports until written again.
        self.damaged: set[int] = set()
        self._slot_limit = slot_limit  # slot values must stay below this (the width of the annotation's slot table)

    def get(self, index: int) -> np.ndarray:
        """The slot map of frame ``index`` (read-only: copy it before changing pixels)."""
        with self._cache_lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
        found = None if index in self.damaged else self._find(index)
        slots = None if found is None else self._decode(index, found[0])
        if slots is None:
            slots = np.zeros((self.height, self.width), np.uint8)
        slots.flags.writeable = False
        self._remember(index, slots)
        return slots

    def _decode(self, index: int, data: bytes) -> np.ndarray | None:
        """The frame's slot map, or None after marking it damaged when the stored map is unreadable or out of range."""
        try:
            slots = decode_slots(data, self.height, self.width)
        except ValueError:
            self.damaged.add(index)
            return None
        limit = self._slot_limit() if self._slot_limit is not None else None
        if limit is not None and int(slots.max(initial=0)) >= limit:  # the map disagrees with its table
            self.damaged.add(index)
            return None
        return slots

    def put(self, index: int, slots: np.ndarray) -> None:
        """Replace frame ``index``; uint16 is needed only when a frame uses more than 255 slots."""
        if slots.shape != (self.height, self.width):
            raise ValueError(f"slot map of frame {index} is {slots.shape}, expected {(self.height, self.width)}")
        if slots.dtype == np.uint16 and int(slots.max(initial=0)) <= 255:
            slots = slots.astype(np.uint8)
        slots = np.array(slots, copy=True)
        slots.flags.writeable = False
        self._blobs[index] = encode_slots(slots)
        self.dirty.add(index)
        self.damaged.discard(index)  # written again (re-run, import, paint): the frame is whole
        self._remember(index, slots)

    def put_blob(self, index: int, data: bytes) -> None:
        """Replace frame ``index`` with an encoded slot map (bytes :meth:`blob` gave): nothing is encoded, and
        it is decoded only when next read, so restoring many frames at once (undo) stays cheap."""
        self._find(index)  # checks the index
        self._blobs[index] = data
        self.dirty.add(index)
        self.damaged.discard(index)
        with self._cache_lock:
            self._cache.pop(index, None)

    def blob(self, index: int) -> bytes | None:
        """The PNG bytes of frame ``index``, or None when it was never written (all void)."""
        found = self._find(index)
        return None if found is None else found[0]

    def _find(self, index: int) -> tuple[bytes, str] | None:
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} is outside 0..{self.num_frames - 1}")
        data = self._blobs.get(index)
        if data is not None:
            return data, f"mask of frame {index}"
        return None if self._loader is None else self._loader(index)

    def clear_cache(self) -> None:
        """Forget decoded frames (benchmarks and memory pressure); they are decoded again when needed."""
        with self._cache_lock:
            self._cache.clear()

    def hold_all(self) -> None:
        """Read every stored frame into memory and mark it dirty, so the next save writes all of them.

        Used when an annotation moves to a new project ("save as"): its frames on disk belong to the old one.
        """
        for index in range(self.num_frames):
            found = None if index in self.damaged else self._find(index)
            if found is not None:
                self._blobs[index] = found[0]
                self.dirty.add(index)

    @property
    def loader(self) -> Loader | None:
        return self._loader

    def set_loader(self, loader: Loader | None) -> None:
        """Where frames not held in memory are read from (the project's mask files)."""
        self._loader = loader

    def mark_saved(self, saved: dict[int, bytes | None]) -> None:
        """The project wrote these frames' bytes: forget them (the loader re-reads them) and clear their dirty flag.

        A frame changed again since (its bytes are not the ones saved) stays in memory and dirty.
        """
        for index, data in saved.items():
            if self._blobs.get(index) is data:
                self.dirty.discard(index)
                self._blobs.pop(index, None)

    def _remember(self, index: int, slots: np.ndarray) -> None:
        with self._cache_lock:
            self._cache[index] = slots
            self._cache.move_to_end(index)
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
