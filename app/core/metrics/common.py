"""Shared input type and error of the metrics: a video pair is ground-truth frames + predicted frames."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from app.core.errors import StudioError
from app.core.vipseg.frames import PanopticFrame, compact

OFFSET = 1 << 24  # panoptic ids are < 2^24 (RGB); STQ encodes label pairs as gt * OFFSET + pred


class MetricsError(StudioError):
    """Ground truth and prediction cannot be compared (frame count or size mismatch, ids without a category)."""


@dataclass
class VideoPair:
    """One video's ground truth and prediction, frame by frame in the same order (iterables are consumed once)."""

    video_id: str
    gt: Iterable[PanopticFrame]
    pred: Iterable[PanopticFrame]


def checked_frames(pair: VideoPair) -> Iterable[tuple[int, PanopticFrame, PanopticFrame]]:
    """(index, gt, pred) per frame, checking that both have the same number of frames of the same size."""
    gt_iter, pred_iter = iter(pair.gt), iter(pair.pred)
    index = 0
    while True:
        gt = next(gt_iter, None)
        pred = next(pred_iter, None)
        if gt is None and pred is None:
            return
        if gt is None or pred is None:
            raise MetricsError(f"Video {pair.video_id!r}: ground truth and prediction have different numbers of frames "
                               f"(they differ at frame {index}).")
        if gt.ids.shape != pred.ids.shape:
            raise MetricsError(f"Video {pair.video_id!r} frame {index}: ground truth is {gt.ids.shape} but prediction "
                               f"is {pred.ids.shape}.")
        yield index, gt, pred
        index += 1


@dataclass
class FramePair:
    """One frame of ground truth and prediction reduced to a table: ``joint[i, j]`` = pixels with gt id
    ``gt_values[i]`` and pred id ``pred_values[j]`` (void included as id 0). Both metrics read only this."""

    gt_values: np.ndarray
    pred_values: np.ndarray
    joint: np.ndarray
    gt_segments: dict[int, int]
    pred_segments: dict[int, int]
    gt_crowd: frozenset[int] = frozenset()


def frame_pair(video_id: str, index: int, gt: PanopticFrame, pred: PanopticFrame) -> FramePair:
    gt_values, gt_inverse = compact(gt.ids)
    pred_values, pred_inverse = compact(pred.ids)
    check_segments(video_id, index, gt, "ground-truth", set(gt_values.tolist()) - {0})
    check_segments(video_id, index, pred, "predicted", set(pred_values.tolist()) - {0})
    size = len(gt_values) * len(pred_values)
    joint = np.bincount((gt_inverse.astype(np.int64) * len(pred_values) + pred_inverse).ravel(), minlength=size)
    return FramePair(gt_values, pred_values, joint.reshape(len(gt_values), len(pred_values)), gt.segments,
                     pred.segments, gt.crowd)


def frame_pairs(pair: VideoPair) -> Iterable[FramePair]:
    for index, gt, pred in checked_frames(pair):
        yield frame_pair(pair.video_id, index, gt, pred)


def accumulate(videos: Iterable[VideoPair], *accumulators) -> None:
    """Feed every video's frame pairs to each accumulator (``start_video``, ``add_frame``); each frame is read once."""
    for _ in feed_frames(videos, *accumulators):
        pass


def feed_frames(videos: Iterable[VideoPair], *accumulators) -> Iterator[int]:
    """``accumulate`` one frame at a time: yields the number of frames fed so far (a job reports progress with it)."""
    done = 0
    for pair in videos:
        for accumulator in accumulators:
            accumulator.start_video(pair.video_id)
        for frame in frame_pairs(pair):
            for accumulator in accumulators:
                accumulator.add_frame(frame)
            done += 1
            yield done


def check_segments(video_id: str, index: int, frame: PanopticFrame, role: str, present: set[int]) -> None:
    """Every id in the map has a category and every listed id is in the map (the evaluators' sanity checks)."""
    missing = present - frame.segments.keys()
    if missing:
        raise MetricsError(f"Video {video_id!r} frame {index}: {role} ids {sorted(missing)} are in the mask but have "
                           "no category.")
    absent = frame.segments.keys() - present
    if absent:
        raise MetricsError(f"Video {video_id!r} frame {index}: {role} lists ids {sorted(absent)} that are not in the "
                           "mask.")
