"""Segmentation and Tracking Quality as VIPSeg's ``eval_stq_vspw.py`` computes it with DeepLab2's STQuality.

Per frame, every segment becomes ``(category << 16) + instance``, where ``instance`` is the position of the
segment id in the video's order of first appearance (frame order, then ``segments`` order); void is
category 255 (ignored). AQ (things only, whole videos, no windows): per video
``sum_gt 1/|gt| sum_pred |gt & pred| * IoU(gt, pred)`` over the number of GT tubes. SQ: mean class IoU
from a confusion matrix over all frames, where predictions on GT void are ignored. STQ = sqrt(AQ * SQ).

Two behaviours of the official code are kept by default and can be switched off:
- ``crowd_quirk``: instance numbers start at 0, and DeepLab2 treats thing pixels with instance 0 as crowd,
  so the first segment seen in a video, if it is a thing, is dropped from AQ (with the predictions on it).
  ``False`` numbers instances from 1, so every thing counts.
- ``void_column_quirk``: when labelled pixels are predicted void, DeepLab2's mean IoU counts the void
  column as an extra class with IoU 0. ``False`` averages over the real classes only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from app.core.categories import CategoryTable
from app.core.metrics.common import OFFSET, VideoPair, check_segments, checked_frames
from app.core.vipseg.frames import PanopticFrame

IGNORE = 255
BIT_SHIFT = 16


@dataclass
class VideoSTQ:
    video_id: str
    stq: float
    aq: float
    iou: float
    num_frames: int


@dataclass
class STQResult:
    stq: float
    aq: float
    sq: float  # mean class IoU
    per_video: list[VideoSTQ]


def _add_counts(stats: dict[int, int], values: np.ndarray) -> None:
    keys, counts = np.unique(values, return_counts=True)
    for key, count in zip(keys.tolist(), counts.tolist()):
        stats[key] = stats.get(key, 0) + count


@dataclass
class _Sequence:
    video_id: str
    confusion: np.ndarray
    gt_instances: dict[int, int] = field(default_factory=dict)
    pred_instances: dict[int, int] = field(default_factory=dict)
    gt_areas: dict[int, int] = field(default_factory=dict)
    pred_areas: dict[int, int] = field(default_factory=dict)
    intersections: dict[int, int] = field(default_factory=dict)
    num_frames: int = 0

    def association(self) -> float:
        """Sum over GT tubes of (1/|gt|) sum_pred TPA * IoU (the numerator of AQ)."""
        total = 0.0
        for key, tpa in self.intersections.items():
            gt_label, pred_label = divmod(key, OFFSET)
            gt_size, pred_size = self.gt_areas[gt_label], self.pred_areas[pred_label]
            total += tpa * (tpa / (gt_size + pred_size - tpa)) / gt_size
        return total


class STQAccumulator:
    """Feed frames video by video (``add_frame``), then read ``result()``."""

    def __init__(self, categories: CategoryTable, crowd_quirk: bool = True, void_column_quirk: bool = True):
        self.num_classes = max(c.id for c in categories) + 1
        self.things = np.zeros(IGNORE + 1, dtype=bool)
        self.things[[c.id for c in categories.things]] = True
        self.first_instance = 0 if crowd_quirk else 1
        self.void_column_quirk = void_column_quirk
        self.sequences: list[_Sequence] = []

    def start_video(self, video_id: str) -> None:
        size = self.num_classes + 1
        self.sequences.append(_Sequence(video_id, np.zeros((size, size), dtype=np.int64)))

    def _encode(self, frame: PanopticFrame, instances: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(semantic, panoptic label) maps; instances numbered by first appearance in the video."""
        for segment_id in frame.segments:
            instances.setdefault(segment_id, len(instances) + self.first_instance)
        values, inverse = np.unique(frame.ids, return_inverse=True)
        semantic_lut = np.array([frame.segments.get(int(v), IGNORE) if v else IGNORE for v in values], dtype=np.int64)
        instance_lut = np.array([instances[int(v)] if v else IGNORE for v in values], dtype=np.int64)
        inverse = inverse.reshape(frame.ids.shape)
        semantic = semantic_lut[inverse]
        return semantic, (semantic << BIT_SHIFT) + instance_lut[inverse]

    def add_frame(self, gt: PanopticFrame, pred: PanopticFrame) -> None:
        sequence = self.sequences[-1]
        index = sequence.num_frames
        check_segments(sequence.video_id, index, gt, "ground-truth", set(np.unique(gt.ids).tolist()) - {0})
        check_segments(sequence.video_id, index, pred, "predicted", set(np.unique(pred.ids).tolist()) - {0})
        gt_semantic, gt_label = self._encode(gt, sequence.gt_instances)
        pred_semantic, pred_label = self._encode(pred, sequence.pred_instances)
        size = self.num_classes + 1
        rows = np.where(gt_semantic == IGNORE, self.num_classes, gt_semantic)
        cols = np.where(pred_semantic == IGNORE, self.num_classes, pred_semantic)
        sequence.confusion += np.bincount((rows * size + cols).ravel(), minlength=size * size).reshape(size, size)

        gt_things = self.things[gt_semantic]
        crowd = gt_things & ((gt_label & 0xFFFF) == 0)
        gt_mask = gt_things & ~crowd
        pred_mask = self.things[pred_semantic] & ~crowd
        _add_counts(sequence.gt_areas, gt_label[gt_mask])
        _add_counts(sequence.pred_areas, pred_label[pred_mask])
        both = gt_mask & pred_mask
        _add_counts(sequence.intersections, gt_label[both] * OFFSET + pred_label[both])
        sequence.num_frames += 1

    def _mean_iou(self, confusion: np.ndarray) -> float:
        confusion = confusion.copy()
        confusion[self.num_classes, :] = 0  # predictions on GT void are not false positives
        intersections = confusion.diagonal()
        unions = confusion.sum(axis=0) + confusion.sum(axis=1) - intersections
        if not self.void_column_quirk:
            intersections, unions = intersections[:-1], unions[:-1]
        present = np.count_nonzero(unions)
        if present == 0:
            return math.nan
        return float(np.sum(intersections / np.maximum(unions, 1)) / present)

    def result(self) -> STQResult:
        per_video = []
        association, tubes = 0.0, 0
        total_confusion = np.zeros_like(self.sequences[0].confusion) if self.sequences else np.zeros((1, 1), dtype=np.int64)
        for sequence in self.sequences:
            seq_association = sequence.association()
            association += seq_association
            tubes += len(sequence.gt_areas)
            total_confusion = total_confusion + sequence.confusion
            aq = seq_association / len(sequence.gt_areas) if sequence.gt_areas else 0.0
            iou = self._mean_iou(sequence.confusion)
            per_video.append(VideoSTQ(sequence.video_id, math.sqrt(aq * iou), aq, iou, sequence.num_frames))
        aq = association / tubes if tubes else 0.0
        sq = self._mean_iou(total_confusion) if self.sequences else math.nan
        return STQResult(math.sqrt(aq * sq), aq, sq, per_video)


def stq(videos: Iterable[VideoPair], categories: CategoryTable, crowd_quirk: bool = True, void_column_quirk: bool = True) -> STQResult:
    """STQ over ``videos`` (defaults = the official VIPSeg evaluator's numbers)."""
    accumulator = STQAccumulator(categories, crowd_quirk, void_column_quirk)
    for pair in videos:
        accumulator.start_video(pair.video_id)
        for _, gt, pred in checked_frames(pair):
            accumulator.add_frame(gt, pred)
    return accumulator.result()
