"""Reading a weights file without trusting it, and writing one atomically: every checkpoint read and written
(model, training init, resume) goes here.

``torch.load(weights_only=True)`` is what keeps a crafted file from running code, and torch <= 2.5.1 lets a
crafted file bypass it (CVE-2025-32434); so no file is opened under a torch older than ``MIN_TORCH``.
A file's first bytes are read before torch sees it, so a Git LFS pointer, a web page or a JSON file saved
as ``.pth`` is named for what it is instead of being reported as a checkpoint "with Python objects".
"""

from __future__ import annotations

import codecs
import os
import pickle
import re
from pathlib import Path

import torch

from dvis_models import atomic
from dvis_models.errors import CheckpointError

MIN_TORCH = (2, 6)  # first release not affected by CVE-2025-32434
HEAD_BYTES = 512
LFS_POINTER = b"version https://git-lfs.github.com/spec/"
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")
CHECKPOINT_STARTS = (b"PK\x03\x04", b"\x80")  # torch's zip format; a pickle (protocol 2+, torch's legacy format)


def require_safe_torch() -> None:
    """Refuse to read checkpoints under a torch whose ``weights_only`` loading can be bypassed."""
    match = re.match(r"(\d+)\.(\d+)", str(torch.__version__))
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_TORCH:
        raise CheckpointError(
            f"torch {torch.__version__} is installed; torch before {MIN_TORCH[0]}.{MIN_TORCH[1]} lets a crafted "
            "checkpoint run code despite weights_only=True (CVE-2025-32434), so DVIS Studio does not load checkpoints "
            f"with it. Upgrade torch: pip install 'torch>={MIN_TORCH[0]}.{MIN_TORCH[1]}'."
        )


def is_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a truncated last character is fine): weights files are binary."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def not_weights(head: bytes) -> str | None:
    """What a file is, from its first bytes, when that is clearly not weights (None: it may be weights)."""
    if not head:
        return "empty (0 bytes): the download or copy did not finish; fetch the file again"
    if head.startswith(LFS_POINTER):
        return ("a Git LFS pointer, not the weights: download the real file (e.g. `git lfs pull`, or the file's "
                "download link)")
    if not is_text(head):
        return None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(HTML_STARTS):
        return ("a web page, not a checkpoint: the download link probably returned a login/landing page; "
                "download the file itself (e.g. from the browser, signed in)")
    if text.startswith((b"{", b"[")):
        return "a JSON file, not a checkpoint; point to the .pth/.pkl weights file instead"
    return None


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {path} does not exist; check the path.") from None
    except OSError as error:
        raise CheckpointError(f"Cannot read the checkpoint {path}: {error.strerror or error}.") from None


def check_file(path: Path) -> bytes:
    """The file's first bytes, after refusing an unsafe torch and files that are visibly not weights."""
    require_safe_torch()
    head = _read_head(path)
    what = not_weights(head)
    if what:
        raise CheckpointError(f"{path} is {what}.")
    return head


def torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)`` on CPU, every failure a ``CheckpointError`` that says what the file is."""
    head = check_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {path} does not exist; check the path.") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError,
            IndexError, KeyError, TypeError) as error:  # what torch's unpickler raises on a non-checkpoint file
        if is_text(head):
            raise CheckpointError(f"{path} is a text file, not a checkpoint; point to the .pth weights file.") from None
        if "weights only" in str(error).lower() and head.startswith(CHECKPOINT_STARTS):
            raise CheckpointError(
                f"Checkpoint {path} contains Python objects that need code to load; DVIS Studio never runs code "
                "from a weights file. If you trust the file, re-save just its state dict (tensors only) and load that."
            ) from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({error}). Is the file complete?") from None


def torch_save(payload: object, path: str | os.PathLike) -> None:
    """``torch.save`` that leaves either the old file or the complete new one (folder created, file and folder
    fsynced)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_with(path, lambda stream: torch.save(payload, stream))
