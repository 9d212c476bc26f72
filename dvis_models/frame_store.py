"""Per-frame tensors the pipeline keeps between the segmenter and the refiner, in memory or spilled to disk.

The offline refiner needs a whole window's queries at once, but each frame's mask features (the part that
grows fastest with the window: a megabyte or more per frame) only when that frame's masks are computed.
Spilled series are appended to an anonymous temporary file (removed by the OS even after a crash) and read
back a few frames at a time with plain reads, not a memory map, so pages read never count as the process's
resident memory. Dropping finished frames truncates the file and rewrites the few kept ones, so the disk
never holds more than one window.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection
from pathlib import Path

import numpy as np
import torch


class _MemorySeries:
    """Frames of one tensor held as the appended parts; a read concatenates only the parts it covers."""

    def __init__(self) -> None:
        self._parts: list[torch.Tensor] = []

    def __len__(self) -> int:
        return sum(part.shape[0] for part in self._parts)

    def append(self, tensor: torch.Tensor) -> None:
        self._parts.append(tensor)

    def read(self, frames: slice) -> torch.Tensor:
        start, stop, _ = frames.indices(len(self))
        pieces, offset = [], 0
        for part in self._parts:
            if offset < stop and start < offset + part.shape[0]:
                pieces.append(part[max(start - offset, 0) : stop - offset])
            offset += part.shape[0]
        if not pieces:
            return self._parts[0][:0]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def drop_before(self, count: int) -> None:
        kept = self.read(slice(count, None)) if self._parts else None
        self._parts = [kept.clone()] if kept is not None and kept.shape[0] else []


class _DiskSeries:
    """Frames of one tensor in an unnamed temporary file: fixed-size records, one per frame."""

    def __init__(self, directory: str | Path | None) -> None:
        self._directory = directory
        self._file = tempfile.TemporaryFile(dir=directory)
        self._length = 0
        self._frame_shape: tuple[int, ...] = ()
        self._dtype: torch.dtype = torch.float32
        self._frame_bytes = 0

    def __len__(self) -> int:
        return self._length

    def append(self, tensor: torch.Tensor) -> None:
        if not self._length:
            self._frame_shape, self._dtype = tuple(tensor.shape[1:]), tensor.dtype
            self._frame_bytes = tensor[:1].numel() * tensor.element_size()
        self._file.seek(self._length * self._frame_bytes)
        self._file.write(tensor.detach().cpu().contiguous().numpy().tobytes())
        self._length += tensor.shape[0]

    def read(self, frames: slice) -> torch.Tensor:
        start, stop, step = frames.indices(self._length)
        if step != 1:
            raise ValueError("spilled frames are read as contiguous ranges")
        count = max(0, stop - start)
        out = torch.empty((count, *self._frame_shape), dtype=self._dtype)
        if not count:
            return out
        self._file.seek(start * self._frame_bytes)
        if self._file.readinto(out.numpy().reshape(-1).view(np.uint8)) != count * self._frame_bytes:
            raise OSError(f"a spill file in {self._directory or tempfile.gettempdir()} ended early: is the disk full?")
        return out

    def drop_before(self, count: int) -> None:
        kept = self.read(slice(count, self._length))
        self._file.truncate(0)  # frees the disk space of the dropped frames
        self._length = 0
        if kept.shape[0]:
            self.append(kept)

    def close(self) -> None:
        self._file.close()


class FrameStore:
    """Per-frame tensors by name for frames ``[start, start + len)``; names in ``spill`` live on disk.

    ``spill_dir`` is where spill files go (default: the system temporary folder; choose a disk, not a
    RAM-backed tmpfs, or spilling saves nothing).
    """

    def __init__(self, spill: Collection[str] = (), spill_dir: str | Path | None = None) -> None:
        self.start = 0  # video index of the first stored frame
        self._spill = frozenset(spill)
        self._spill_dir = spill_dir
        self._series: dict[str, _MemorySeries | _DiskSeries] = {}

    def append(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, tensor in tensors.items():
            if name not in self._series:
                self._series[name] = _DiskSeries(self._spill_dir) if name in self._spill else _MemorySeries()
            self._series[name].append(tensor)

    def get(self, name: str, frames: slice) -> torch.Tensor:
        """Frames ``frames`` (relative to ``start``) of tensor ``name``, concatenated along time."""
        return self._series[name].read(frames)

    def drop_before(self, index: int) -> None:
        """Forget frames with video index < ``index``."""
        for series in self._series.values():
            series.drop_before(index - self.start)
        self.start = index

    def close(self) -> None:
        """Delete the spill files now (they also go when the store is garbage collected)."""
        for series in self._series.values():
            if isinstance(series, _DiskSeries):
                series.close()

    def __enter__(self) -> FrameStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

