"""Display-size JPEG copies of a video's frames, kept on disk across sessions, for instant scrubbing.

Random access into long-GOP video (camera footage, screen recordings) decodes up to a whole keyframe
interval per frame: over a second at 1080p. A proxy keeps every frame as a JPEG at display size, so any
frame is one read and one JPEG decode (about 10 ms). It is for showing only: painting, exports and
inference read exact frames from the ``VideoSource``.

One folder per video under the store's root, named by a hash of the video's path, size and modification
time (an edited file gets a new proxy): ``frames.bin`` holds the JPEGs back to back and ``index.npy``
each frame's (offset, length), -1 while not stored. The store is bounded in bytes; the proxies used
least recently (their ``index.npy`` time) are deleted first.

A proxy left damaged (a crash or a full disk mid-write, a truncated or overwritten file) is never shown as
garbage: an unreadable index starts the proxy over, entries pointing past the end of ``frames.bin`` count
as not stored, and a stored JPEG that does not decode is forgotten when read, so the pass stores it again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from dvis_models import atomic

if TYPE_CHECKING:
    from app.core.video import VideoSource

log = logging.getLogger(__name__)

PROXY_MAX_SIDE = 960  # pixels on the longer side: a typical view pane, and about 50 KB per JPEG
JPEG_QUALITY = 80
DEFAULT_STORE_BYTES = 8 * 1024**3
_INDEX = "index.npy"
_PACK = "frames.bin"
_INDEX_EVERY = 64  # frames stored between index writes: what an interrupted pass has to redo


def proxy_size(width: int, height: int, max_side: int = PROXY_MAX_SIDE) -> tuple[int, int]:
    """(width, height) of the proxy of a ``width`` x ``height`` video: never larger than the video."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class FrameProxy:
    """One video's proxy. One thread stores frames (``put``) while others read them (``get``)."""

    def __init__(self, folder: Path, num_frames: int, full_size: tuple[int, int]) -> None:
        self.folder = folder
        self.full_size = full_size
        self.size = proxy_size(*full_size)
        self._lock = threading.Lock()
        self._unsaved = 0
        entries = self._load_index(num_frames)
        if entries is None:  # new, or left by another version of the video: start over
            (folder / _PACK).unlink(missing_ok=True)
            entries = np.full((num_frames, 2), -1, np.int64)
            atomic.write_npy(folder / _INDEX, entries)
        self._entries = entries
        self._ready = entries[:, 1] >= 0
        self._writer = open(folder / _PACK, "ab", buffering=0)  # unbuffered: readers see each JPEG at once
        self._reader = open(folder / _PACK, "rb")

    def _load_index(self, num_frames: int) -> np.ndarray | None:
        """The stored index with entries the pack cannot hold marked missing; None if unusable."""
        try:
            entries = np.load(self.folder / _INDEX)
        except (OSError, ValueError, EOFError):  # missing, garbage or empty
            return None
        if entries.shape != (num_frames, 2) or entries.dtype != np.int64:
            return None
        try:
            pack_bytes = (self.folder / _PACK).stat().st_size
        except FileNotFoundError:
            pack_bytes = 0
        offsets, lengths = entries[:, 0], entries[:, 1]
        stored = lengths >= 0
        damaged = (lengths < -1) | (stored & ((lengths == 0) | (offsets < 0) | (offsets + lengths > pack_bytes)))
        if damaged.any():
            log.warning("proxy %s: %d frames are damaged or cut off; they are decoded again",
                        self.folder.name, int(np.count_nonzero(damaged)))
            entries[damaged] = -1
        return entries

    @property
    def num_ready(self) -> int:
        return int(np.count_nonzero(self._ready))

    @property
    def complete(self) -> bool:
        return bool(self._ready.all())

    @property
    def nbytes(self) -> int:
        return os.fstat(self._writer.fileno()).st_size

    def ready(self, index: int) -> bool:
        return bool(self._ready[index])

    def missing(self) -> np.ndarray:
        """The indices not stored, ascending."""
        return np.flatnonzero(~self._ready)

    def nearest_ready(self, index: int) -> int | None:
        """The stored frame closest to ``index`` (the earlier one on a tie), None while none is stored."""
        ready = np.flatnonzero(self._ready)
        if not len(ready):
            return None
        position = int(np.searchsorted(ready, index))
        candidates = ready[max(0, position - 1):position + 1]
        return int(candidates[np.argmin(np.abs(candidates - index))])

    def get(self, index: int) -> np.ndarray | None:
        """Frame ``index`` at proxy size, (h, w, 3) uint8 RGB; None if it is not stored. A stored JPEG that is
        not whole (damaged file) is forgotten, so it is stored again, and None returned."""
        with self._lock:
            offset, length = (int(v) for v in self._entries[index])
            if length < 0:
                return None
            self._reader.seek(offset)
            data = self._reader.read(length)
        whole = len(data) == length and data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"  # SOI ... EOI
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if whole else None
        if bgr is None or bgr.shape[1::-1] != self.size:
            log.warning("proxy %s: frame %d is damaged; it is decoded again", self.folder.name, index)
            self._forget(index)
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _forget(self, index: int) -> None:
        with self._lock:
            self._entries[index] = -1
            self._ready[index] = False
            self._unsaved += 1

    def put(self, index: int, frame: np.ndarray) -> None:
        """Store frame ``index`` (full-size RGB) unless it is stored already or the proxy is closed (its video
        was closed while a job still decodes). OSError when the disk is full."""
        small = frame if frame.shape[1::-1] == self.size else cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError(f"JPEG encoding of frame {index} failed")
        with self._lock:
            if self._ready[index] or self._writer.closed:  # another thread stored it meanwhile, or closed
                return
            offset = self.nbytes
            self._writer.write(jpeg.tobytes())
            self._entries[index] = (offset, len(jpeg))
            self._ready[index] = True
            self._unsaved += 1
            if self._unsaved >= _INDEX_EVERY:
                self._save_index()

    def flush(self) -> None:
        """Write the index, so a later session finds what is stored."""
        with self._lock:
            if self._unsaved and not self._writer.closed:
                self._save_index()

    def _save_index(self) -> None:
        atomic.write_npy(self.folder / _INDEX, self._entries)
        self._unsaved = 0

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._writer.close()
            self._reader.close()


class ProxyStore:
    """The proxies of all videos under one folder, at most ``max_bytes`` together."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_STORE_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def open(self, source: VideoSource) -> FrameProxy:
        """The proxy of ``source`` (empty if new), marked as the most recently used; older ones may go."""
        folder = self.root / _key(source.path)
        folder.mkdir(parents=True, exist_ok=True)
        proxy = FrameProxy(folder, source.num_frames, (source.width, source.height))
        os.utime(folder / _INDEX)  # last used
        self.evict(keep=folder)
        return proxy

    def evict(self, keep: Path) -> int:
        """Delete the least recently used proxies (never ``keep``) until the store fits; returns its bytes."""
        folders = [f for f in self.root.iterdir() if f.is_dir()] if self.root.is_dir() else []
        sizes = {folder: _folder_bytes(folder) for folder in folders}
        total = sum(sizes.values())
        for folder in sorted(folders, key=_last_used):
            if total <= self.max_bytes:
                break
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
                total -= sizes[folder]
                log.info("proxy cache: removed %s (least recently used)", folder.name)
        return total

    def has_room(self, proxy: FrameProxy) -> bool:
        """Whether ``proxy`` may grow: others are evicted first; False once it alone fills the store."""
        return self.evict(keep=proxy.folder) < self.max_bytes


def _key(path: Path) -> str:
    resolved = path.resolve()
    stat = resolved.stat()
    return hashlib.sha1(f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]


def _last_used(folder: Path) -> float:
    try:
        return (folder / _INDEX).stat().st_mtime
    except OSError:
        return 0.0


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
