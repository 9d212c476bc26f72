"""Frame ranges as people type them ("3-10", "7"): one parser for the CLI and the GUI."""

from __future__ import annotations

from app.core.errors import StudioError


class FrameRangeError(StudioError):
    """A typed frame range is malformed or lies outside the video."""


def parse_frame_range(text: str, num_frames: int) -> range:
    """'3-10' (0-based, inclusive) or '7' -> the frames it names, checked against the video's length."""
    first, _, last = text.replace(" ", "").partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise FrameRangeError(f"{text!r} is not a frame range; write it as first-last (0-based, inclusive), e.g. 3-10.") from None
    if not 0 <= start <= end < num_frames:
        raise FrameRangeError(f"Frames {start}-{end} are outside the video (frames 0-{num_frames - 1}).")
    return range(start, end + 1)
