"""Atomic file writes, for both packages: a reader (or a crash) sees either the old file or the complete new one.

Plain Python (numpy, OpenCV; no torch), so the app imports it without loading the model; torch files go
through ``dvis_models.weights_file.torch_save``. Every write goes to a temporary file in the destination
folder (same file system, so the rename is atomic), is flushed and fsynced, then ``os.replace``-d over the destination;
finally the folder itself is fsynced so the rename survives a power cut. On any failure the temporary file is removed
and the original ``OSError`` propagates: callers wrap it in their own area's error with a message
that names the file and says what to do (for example "free some disk space").
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

TEMP_SUFFIX = ".tmp"


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename/creation inside ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and Windows) refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)


def write_with(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Atomically replace ``path`` with what ``write`` puts into the binary stream it is given."""
    path = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    write_with(path, lambda handle: handle.write(data))


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: object, indent: int | None = 1) -> None:
    """Atomically write ``obj`` as UTF-8 JSON (NaN is refused: it is not valid JSON for other tools)."""
    write_bytes(path, json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False).encode("utf-8"))


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` serialised as a .npy file (``allow_pickle`` is off: object arrays are refused)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    write_bytes(path, npy_bytes(array))


def png_bytes(image: np.ndarray, rgb: bool = True, compression: int = 1) -> bytes:
    """Encode a uint8/uint16 image as PNG with OpenCV.

    ``rgb``: a 3/4-channel ``image`` is RGB(A) (our convention) and is swapped to OpenCV's BGR(A).
    ``compression`` 0..9: 1 is the sweet spot for label maps (almost as small as 9, several times faster).
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG needs uint8 or uint16 pixels, got {image.dtype}")
    if rgb and image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif rgb and image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} {image.dtype} image as PNG")
    return encoded.tobytes()


def write_png(path: str | os.PathLike, image: np.ndarray, rgb: bool = True, compression: int = 1) -> None:
    """Atomically write ``image`` (uint8/uint16; 3-channel images are RGB unless ``rgb=False``) as PNG."""
    write_bytes(path, png_bytes(image, rgb=rgb, compression=compression))


def write_new_files(files: Iterable[tuple[str | os.PathLike, bytes]], workers: int = 8) -> None:
    """Durably write many files that nothing refers to yet (e.g. new-generation masks before their manifest).

    No temp/rename dance is needed because no reader looks at these names until a manifest written
    afterwards points at them; a crash leaves unreferenced garbage, never a torn file in use. The
    fsyncs run on a thread pool: on SSDs that is an order of magnitude faster than one by one.
    """

    def write(item: tuple[str | os.PathLike, bytes]) -> Path:
        path, data = Path(item[0]), item[1]
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return path.parent

    with ThreadPoolExecutor(max_workers=workers) as pool:
        folders = set(pool.map(write, files))
    for folder in folders:
        fsync_dir(folder)


def remove_stale_temp_files(folder: str | os.PathLike) -> int:
    """Delete temporary files a crashed writer left in ``folder``; returns how many were removed."""
    removed = 0
    for entry in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        try:
            entry.unlink()
            removed += 1
        except OSError:
            pass  # not ours to worry about: an unremovable temp file does not affect correctness
    return removed
