"""Frame ranges as people type them ("3-10", "7"): one parser for the CLI and the GUI, and its inverse."""

from __future__ import annotations

from collections.abc import Iterable

from app.core.errors import StudioError


class FrameRangeError(StudioError):
    """A typed frame range is malformed or lies outside the video."""


def parse_frame_range(text: str, num_frames: int) -> range:
    """'3-10' (0-based, inclusive) or '7' -> the frames it names, checked against the video's length."""
    first, _, last = text.replace(" ", "").partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise FrameRangeError(f"{text!r} is not a frame range; write it as first-last (0-based, inclusive), e.g. "
                              "3-10.") from None
    if not 0 <= start <= end < num_frames:
        raise FrameRangeError(f"Frames {start}-{end} are outside the video (frames 0-{num_frames - 1}).")
    return range(start, end + 1)


def format_frame_ranges(frames: Iterable[int]) -> str:
    """Frame indices written as the ranges ``parse_frame_range`` reads, e.g. [3, 4, 5, 9] -> '3-5, 9'."""
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)
