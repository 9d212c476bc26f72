"""What the pipeline hands to the app: plain numpy results, one per frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One object in one frame. ``track_id`` (>= 1) is the same object across frames."""

    track_id: int
    category_id: int  # VIPSeg json id 0..123 (or the model's own table)
    isthing: bool
    score: float
    area: int


@dataclass
class FrameResult:
    """Panoptic result of one frame at the original resolution.

    ``track_map`` is int32 (H, W): 0 = void, otherwise the ``track_id`` of the pixel's segment.
    Every id in ``track_map`` has exactly one entry in ``segments`` and the other way round.
    """

    index: int
    track_map: np.ndarray
    segments: list[Segment] = field(default_factory=list)
