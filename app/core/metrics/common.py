"""Shared input type and error of the metrics: a video pair is ground-truth frames + predicted frames."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from app.core.errors import StudioError
from app.core.vipseg.frames import PanopticFrame

OFFSET = 1 << 24  # panoptic ids are < 2^24 (RGB); pairs are encoded as gt * OFFSET + pred


class MetricsError(StudioError):
    """Ground truth and prediction cannot be compared (frame count or size mismatch, ids without a category)."""


@dataclass
class VideoPair:
    """One video's ground truth and prediction, frame by frame in the same order (iterables are consumed once)."""

    video_id: str
    gt: Iterable[PanopticFrame]
    pred: Iterable[PanopticFrame]


def checked_frames(pair: VideoPair) -> Iterable[tuple[int, PanopticFrame, PanopticFrame]]:
    """(index, gt, pred) per frame, checking equal lengths, equal sizes and that every id has a category."""
    gt_iter, pred_iter = iter(pair.gt), iter(pair.pred)
    index = 0
    while True:
        gt = next(gt_iter, None)
        pred = next(pred_iter, None)
        if gt is None and pred is None:
            return
        if gt is None or pred is None:
            raise MetricsError(f"Video {pair.video_id!r}: ground truth and prediction have different numbers of frames (they differ at frame {index}).")
        if gt.ids.shape != pred.ids.shape:
            raise MetricsError(f"Video {pair.video_id!r} frame {index}: ground truth is {gt.ids.shape} but prediction is {pred.ids.shape}.")
        yield index, gt, pred
        index += 1


def pair_counts(gt_ids: np.ndarray, pred_ids: np.ndarray) -> dict[tuple[int, int], int]:
    """Pixel counts of every (gt id, pred id) pair in one frame, void (0) included."""
    keys, counts = np.unique(gt_ids.astype(np.int64).ravel() * OFFSET + pred_ids.astype(np.int64).ravel(), return_counts=True)
    return {(int(k) // OFFSET, int(k) % OFFSET): int(c) for k, c in zip(keys, counts)}


def check_segments(video_id: str, index: int, frame: PanopticFrame, role: str, present: set[int]) -> None:
    """Every id in the map has a category and every listed id is in the map (the evaluators' sanity checks)."""
    missing = present - frame.segments.keys()
    if missing:
        raise MetricsError(f"Video {video_id!r} frame {index}: {role} ids {sorted(missing)} are in the mask but have no category.")
    absent = frame.segments.keys() - present
    if absent:
        raise MetricsError(f"Video {video_id!r} frame {index}: {role} lists ids {sorted(absent)} that are not in the mask.")
