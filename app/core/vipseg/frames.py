"""The plain data the format and the metrics work on: one frame = an id map plus id -> category."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PanopticFrame(NamedTuple):
    """``ids``: int32 (H, W), 0 = void; ``segments``: every non-zero id of ``ids`` -> json category id.

    The same id in two frames of one video is the same object (track / tube).
    """

    ids: np.ndarray
    segments: dict[int, int]


def first_appearance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero values of ``labels`` in raster order of first appearance, plus per-pixel index and counts.

    Returns (values, counts, inverse, order): ``values``/``counts`` sorted by value (void included at 0
    if present), ``inverse`` maps each pixel to its position in ``values``, ``order`` lists positions of
    the non-zero values sorted by where they first appear (a content-derived, id-independent order).
    """
    values, first, inverse, counts = np.unique(labels.ravel(), return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first, kind="stable")
    order = order[values[order] != 0]
    return values, counts, inverse.reshape(labels.shape), order
