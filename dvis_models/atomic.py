"""Atomic file writes for the model package: a reader (or a crash) sees the old file or the complete new one.

The bytes go to a temporary file in the destination folder (same file system, so the rename is atomic),
are flushed and fsynced, then ``os.replace``-d over the destination; on any failure the temporary file is
removed and the error propagates. (``app/core/atomic.py`` is the application's own copy: app/core must not
need the model package for plain file writing.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch


def write_with(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Create the parent folder, let ``write`` fill a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    write_with(path, lambda stream: stream.write(data))


def torch_save(payload: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that leaves either the old file or the complete new one, never a partial file."""
    write_with(path, lambda stream: torch.save(payload, stream))
