"""Image-aware fill: the region of similar colour around a clicked pixel, as one paint edit.

Unlike the label-region fill of :class:`~app.core.edits.Paint` (which follows existing masks), this
follows the video frame's colours, so a missed object of even colour is painted with one click.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.core.edits import PaintMask
from app.core.errors import AnnotationError

__all__ = ["colour_region", "image_fill"]


def colour_region(image: np.ndarray, x: int, y: int, tolerance: int) -> np.ndarray:
    """The 4-connected pixels around (x, y) whose every channel is within ``tolerance`` of the seed pixel's.

    The range is fixed to the seed's colour (OpenCV ``FLOODFILL_FIXED_RANGE``), so a slow gradient does
    not leak the fill across a whole frame as a neighbour-to-neighbour range would.
    """
    height, width = image.shape[:2]
    if not (0 <= x < width and 0 <= y < height):
        raise AnnotationError(f"The fill point ({x}, {y}) is outside the {width}x{height} frame; click inside the "
                              "picture.")
    if not 0 <= tolerance <= 255:
        raise AnnotationError(f"Fill tolerance {tolerance} is out of range; use 0 to 255 (colour levels per channel).")
    mask = np.zeros((height + 2, width + 2), np.uint8)  # OpenCV's mask has a one-pixel border
    diff = (tolerance,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)  # mask value 1
    # MASK_ONLY leaves the image as it is, but OpenCV's binding wants a writable array (video frames are read-only)
    cv2.floodFill(np.array(image, np.uint8, order="C"), mask, (int(x), int(y)), 0, diff, diff, flags)
    return mask[1:-1, 1:-1].astype(bool)


def image_fill(image: np.ndarray, frame: int, track_id: int, x: int, y: int, tolerance: int) -> PaintMask:
    """The edit that paints the colour region around (x, y) of ``image`` (frame ``frame``) into ``track_id``."""
    region = colour_region(image, x, y, tolerance)
    return PaintMask.of(frame, track_id, region, f"Colour fill {track_id} on frame {frame}")
