"""Track colours and mask overlay rendering.

``track_color`` is THE colour function of the application: the overlay, the timeline, the track
lists and every export call it, so one object has one colour everywhere. Colours come from the
id alone (no state, no randomness), so they are identical across runs, processes and machines.

The rendering helpers are vectorised with lookup tables indexed by the int32 track map, which keeps
them at a few milliseconds per 1080p frame: the GUI redraws with them while scrubbing and the
overlay export calls them once per frame.
"""

from __future__ import annotations

import colorsys
from collections.abc import Collection
from typing import Literal

import cv2
import numpy as np

RGB = tuple[int, int, int]
OverlayMode = Literal["fill", "contour", "fill_contour", "fade", "cutout"]
OVERLAY_MODES: tuple[str, ...] = ("fill", "contour", "fill_contour", "fade", "cutout")

_GOLDEN = 0.618033988749895  # hue step: consecutive ids land far apart on the colour wheel
VOID_COLOR: RGB = (0, 0, 0)


def track_color(track_id: int) -> RGB:
    """Distinct, deterministic RGB colour of a track; ``VOID_COLOR`` for id 0 (void).

    Hue steps by the golden ratio so ids 1, 2, 3... are far apart on the wheel. Hues come close again
    for ids that differ by a Fibonacci number (5, 8, 13, 21...): value alternates with the id's parity
    and saturation cycles with period 3, so such pairs still differ in brightness or saturation.
    Value never drops below 0.72: no near-black colour that would vanish on dark footage or look like void.
    """
    track_id = int(track_id)
    if track_id <= 0:
        return VOID_COLOR
    hue = (track_id * _GOLDEN) % 1.0
    saturation = (0.95, 0.6, 0.8)[track_id % 3]
    value = (1.0, 0.72)[track_id % 2]
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return (round(r * 255), round(g * 255), round(b * 255))


class _ColorTable:
    """Grow-only table with entry i = track_color(i), so colouring a map is one gather.

    Kept both as (N, 3) uint8 and packed as one uint32 (R, G, B, 0 bytes) per id: gathering 4-byte
    scalars with ``np.take`` is about 10x faster than gathering 3-byte rows.
    """

    def __init__(self) -> None:
        self.rgb = np.zeros((1, 3), np.uint8)
        self.packed = np.zeros(1, np.uint32)

    def grow(self, max_id: int) -> None:
        if max_id >= len(self.rgb):
            size = max(max_id + 1, 2 * len(self.rgb), 256)
            rgb = np.array([track_color(i) for i in range(size)], np.uint8)
            packed = np.zeros(size, np.uint32)
            packed.view(np.uint8).reshape(size, 4)[:, :3] = rgb
            self.rgb, self.packed = rgb, packed  # replaced together: readers in other threads see a pair


_COLOR_TABLE = _ColorTable()


def _colorize(track_map: np.ndarray, max_id: int) -> np.ndarray:
    _COLOR_TABLE.grow(max_id)
    rgbx = np.take(_COLOR_TABLE.packed, track_map).view(np.uint8).reshape(*track_map.shape, 4)
    return cv2.cvtColor(rgbx, cv2.COLOR_RGBA2RGB)


def visible_mask(
    track_map: np.ndarray,
    visible: Collection[int] | None = None,
    hidden: Collection[int] = (),
) -> np.ndarray:
    """(H, W) bool: pixels of tracks that are shown (in ``visible``, or any when None; not ``hidden``; not void)."""
    track_map = _check_map(track_map)
    return _shown(track_map, int(track_map.max(initial=0)), visible, hidden).view(bool)


def _shown(
    track_map: np.ndarray, max_id: int, visible: Collection[int] | None, hidden: Collection[int]
) -> np.ndarray:
    """(H, W) uint8 0/1 mask of shown pixels (uint8 is what OpenCV masks take; ``.view(bool)`` is free)."""
    shown = np.zeros(max_id + 1, np.uint8)
    if visible is None:
        shown[1:] = 1
    else:
        shown[[int(i) for i in visible if 0 < int(i) <= max_id]] = 1
    shown[[int(i) for i in hidden if 0 < int(i) <= max_id]] = 0
    return np.take(shown, track_map)


def boundary_mask(track_map: np.ndarray, width: int = 2) -> np.ndarray:
    """(H, W) bool: pixels whose track differs from a neighbour within ``width`` pixels (inner boundaries)."""
    track_map = _check_map(track_map)
    return _boundary_mask(track_map, width)


def _boundary_mask(track_map: np.ndarray, width: int) -> np.ndarray:
    edge = np.zeros(track_map.shape, bool)
    for d in range(1, max(1, int(width)) + 1):
        vertical = track_map[:-d, :] != track_map[d:, :]
        horizontal = track_map[:, :-d] != track_map[:, d:]
        edge[:-d, :] |= vertical
        edge[d:, :] |= vertical
        edge[:, :-d] |= horizontal
        edge[:, d:] |= horizontal
    return edge


def overlay(
    frame: np.ndarray,
    track_map: np.ndarray,
    alpha: float = 0.5,
    mode: OverlayMode = "fill",
    visible: Collection[int] | None = None,
    hidden: Collection[int] = (),
    contour_width: int = 2,
    background: RGB = (0, 0, 0),
) -> np.ndarray:
    """Render tracks over an RGB frame; returns a new (H, W, 3) uint8 array (``frame`` is not modified).

    Modes (``alpha`` is the opacity of the effect, 0..1):
      * ``fill``: track colours blended over the shown tracks' pixels;
      * ``contour``: track boundaries drawn in the track colour;
      * ``fill_contour``: both;
      * ``fade``: everything except the shown tracks blended towards ``background``;
      * ``cutout``: everything except the shown tracks replaced by ``background`` (``alpha`` ignored).
    ``visible`` limits drawing to these ids (None: all); ``hidden`` ids are never drawn.
    """
    frame = np.asarray(frame)
    track_map = _check_map(track_map)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}")
    if frame.shape[:2] != track_map.shape:
        raise ValueError(f"frame {frame.shape[:2]} and track map {track_map.shape} differ in size")
    if mode not in OVERLAY_MODES:
        raise ValueError(f"unknown overlay mode {mode!r}; use one of {', '.join(OVERLAY_MODES)}")
    alpha = float(np.clip(alpha, 0.0, 1.0))
    max_id = int(track_map.max(initial=0))
    shown = _shown(track_map, max_id, visible, hidden)
    out = frame.copy()

    if mode in ("fill", "contour", "fill_contour"):
        colors = _colorize(track_map, max_id)
    if mode in ("fill", "fill_contour"):
        cv2.copyTo(cv2.addWeighted(frame, 1.0 - alpha, colors, alpha, 0.0), shown, out)
    if mode in ("contour", "fill_contour"):
        edge = (_boundary_mask(track_map, contour_width) & shown.view(bool)).view(np.uint8)
        opacity = 1.0 if mode == "fill_contour" else alpha
        cv2.copyTo(cv2.addWeighted(frame, 1.0 - opacity, colors, opacity, 0.0), edge, out)
    if mode in ("fade", "cutout"):
        strength = 1.0 if mode == "cutout" else alpha
        flat = np.empty_like(frame)
        flat[...] = np.asarray(background, np.uint8)
        cv2.copyTo(cv2.addWeighted(frame, 1.0 - strength, flat, strength, 0.0), 1 - shown, out)
    return out


def _check_map(track_map: np.ndarray) -> np.ndarray:
    track_map = np.asarray(track_map)
    if track_map.ndim != 2 or not np.issubdtype(track_map.dtype, np.integer):
        raise ValueError(f"track map must be a 2-D integer array, got {track_map.dtype} {track_map.shape}")
    if track_map.size and int(track_map.min()) < 0:
        raise ValueError("track map holds negative ids; ids are 0 (void) or track ids >= 1")
    return track_map
