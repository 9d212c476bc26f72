"""The plain data the format and the metrics work on: one frame = an id map plus id -> category."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PanopticFrame(NamedTuple):
    """``ids``: int32 (H, W), 0 = void; ``segments``: every non-zero id of ``ids`` -> json category id, in
    ``segments_info`` order; ``crowd``: the ids marked ``iscrowd`` (ground truth the metrics ignore).

    The same id in two frames of one video is the same object (track / tube).
    """

    ids: np.ndarray
    segments: dict[int, int]
    crowd: frozenset[int] = frozenset()


def compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, per-pixel index into them). Much faster than ``np.unique(return_inverse=True)``."""
    values = np.unique(labels)
    return values, np.searchsorted(values, labels)


def first_appearance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Non-zero values of ``labels`` in raster order of first appearance, plus per-pixel index and counts.

    Returns (values, counts, inverse, order): ``values``/``counts`` sorted by value (void included at 0
    if present), ``inverse`` maps each pixel to its position in ``values``, ``order`` lists positions of
    the non-zero values sorted by where they first appear (a content-derived, id-independent order).
    """
    values, inverse = compact(labels)
    flat = inverse.ravel()
    counts = np.bincount(flat, minlength=len(values))
    first = np.full(len(values), flat.size, dtype=np.int64)
    np.minimum.at(first, flat, np.arange(flat.size))
    order = np.argsort(first, kind="stable")
    return values, counts, inverse, order[values[order] != 0]
