"""Resumable HTTP(S) download of one file with progress, cancel and a sha256 check (stdlib ``urllib`` only).

The bytes go to ``TARGET.part``; an interrupted download keeps it and the next call asks the server for
the rest (``Range: bytes=N-``). A server that ignores the range gets a fresh download. ``urllib``'s
default opener includes ``ProxyHandler``, which reads ``http_proxy`` / ``https_proxy`` / ``no_proxy``
from the environment, so a proxy needs no setting here.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import Cancelled, ModelLibraryError

CHUNK = 1 << 20
PART_SUFFIX = ".part"
USER_AGENT = "dvis-studio"


@dataclass(frozen=True)
class Progress:
    """One progress report: bytes in the file so far, the whole size (None: unknown), bytes/s of this session."""

    done: int
    total: int | None
    speed: float


ProgressCallback = Callable[[Progress], None]


def part_path(target: Path) -> Path:
    return target.with_name(target.name + PART_SUFFIX)


def _file_sha256(path: Path, hasher: hashlib._Hash) -> None:
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            hasher.update(block)


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range") or ""
    match = re.match(r"bytes \d+-\d+/(\d+)", content_range)
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _open(url: str, offset: int, timeout: float, page: str | None) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.build_opener().open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the part is already whole
            raise
        raise ModelLibraryError(f"The server answered HTTP {error.code} ({error.reason}) for {url}; "
                                f"{_browser_hint(page)}") from None
    except (urllib.error.URLError, OSError) as error:
        host = urllib.parse.urlsplit(url).hostname or url
        reason = getattr(error, "reason", error)
        raise ModelLibraryError(f"Cannot reach {host} ({reason}): check your connection or proxy "
                                f"(http_proxy / https_proxy); {_browser_hint(page)}") from None


def _browser_hint(page: str | None) -> str:
    where = f" from {page}" if page else ""
    return f"or download the file in a browser{where} and use 'dvis models add FILE'."


def download(url: str, target: Path, sha256: str | None = None, progress: ProgressCallback | None = None,
             cancel: Callable[[], bool] | None = None, page: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` into ``target`` (via ``target.part``, resuming one left by an earlier try).

    Raises ``Cancelled`` when ``cancel()`` turns true (checked per chunk; the part is kept),
    ``ModelLibraryError`` when the network fails (part kept, the next call resumes) or the checksum
    does not match (part deleted). Returns ``target``.
    """
    target = Path(target)
    part = part_path(target)
    offset = part.stat().st_size if part.exists() else 0
    hasher = hashlib.sha256()
    try:
        response = _open(url, offset, timeout, page)
    except urllib.error.HTTPError:  # 416: the server has no bytes after the part's end
        response, total = None, offset
    if response is not None:
        with response:
            if offset and response.status != 206:  # the server ignored the range: start again
                offset = 0
            total = _total_size(response, offset)
            mode = "ab" if offset else "wb"
            if offset:
                _file_sha256(part, hasher)
            _receive(response, part, mode, offset, total, hasher, progress, cancel, url)
    else:
        _file_sha256(part, hasher)
    size = part.stat().st_size
    if total is not None and size != total:
        raise ModelLibraryError(f"The download of {url} stopped after {size} of {total} bytes; "
                                "run the download again to resume it.")
    if sha256 and hasher.hexdigest() != sha256.lower():
        part.unlink()
        raise ModelLibraryError(f"The file downloaded from {url} is damaged or not the expected one (sha256 "
                                f"{hasher.hexdigest()}, expected {sha256}); it was deleted. Try again, or "
                                f"{_browser_hint(page)}")
    os.replace(part, target)
    return target


def _receive(response, part: Path, mode: str, offset: int, total: int | None, hasher, progress, cancel, url) -> None:
    """Append the response body to ``part``; a dropped connection keeps what arrived."""
    done, started = offset, time.monotonic()
    with open(part, mode) as handle:
        while True:
            if cancel is not None and cancel():
                raise Cancelled(f"Download cancelled after {done} bytes; downloading again resumes it.")
            try:
                block = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as error:
                handle.flush()
                raise ModelLibraryError(f"The connection to {urllib.parse.urlsplit(url).hostname} broke after "
                                        f"{done} of {total or '?'} bytes ({error}); run the download again to "
                                        "resume it.") from None
            if not block:
                break
            handle.write(block)
            hasher.update(block)
            done += len(block)
            if progress is not None:
                progress(Progress(done, total, (done - offset) / max(time.monotonic() - started, 1e-6)))
        handle.flush()
        os.fsync(handle.fileno())
