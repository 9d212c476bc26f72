"""Segmentation and Tracking Quality as VIPSeg's ``eval_stq_vspw.py`` computes it with DeepLab2's STQuality.

Per frame, every segment becomes ``(category << 16) + instance``, where ``instance`` is the position of the
segment id in the video's order of first appearance (frame order, then ``segments`` order); void is
category 255 (ignored). AQ (things only, whole videos, no windows): per video
``sum_gt 1/|gt| sum_pred |gt & pred| * IoU(gt, pred)`` over the number of GT tubes. SQ: mean class IoU
from a confusion matrix over all frames, where predictions on GT void are ignored. STQ = sqrt(AQ * SQ).
``iscrowd`` is not read: VIPSeg's STQ script never looks at it, so crowd segments count as ordinary tubes.

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

from app.core.metrics.common import OFFSET, FramePair, VideoPair, accumulate
from dvis_models.categories import CategoryTable

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


def _add(stats: dict[int, int], keys: np.ndarray, counts: np.ndarray) -> None:
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

    def _labels(self, values: np.ndarray, segments: dict[int, int],
                instances: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(semantic, panoptic label) per distinct id; instances numbered by first appearance in the video."""
        for segment_id in segments:
            instances.setdefault(segment_id, len(instances) + self.first_instance)
        ids = values.tolist()
        semantic = np.array([segments[v] if v else IGNORE for v in ids], dtype=np.int64)
        instance = np.array([instances[v] if v else IGNORE for v in ids], dtype=np.int64)
        return semantic, (semantic << BIT_SHIFT) + instance

    def add_frame(self, pair: FramePair) -> None:
        sequence = self.sequences[-1]
        gt_semantic, gt_label = self._labels(pair.gt_values, pair.gt_segments, sequence.gt_instances)
        pred_semantic, pred_label = self._labels(pair.pred_values, pair.pred_segments, sequence.pred_instances)
        joint = pair.joint
        size = self.num_classes + 1
        rows = np.where(gt_semantic == IGNORE, self.num_classes, gt_semantic)
        cols = np.where(pred_semantic == IGNORE, self.num_classes, pred_semantic)
        cells = (rows[:, None] * size + cols[None, :]).ravel()
        counts = np.bincount(cells, weights=joint.ravel(), minlength=size * size)
        sequence.confusion += counts.astype(np.int64).reshape(size, size)

        gt_things = self.things[gt_semantic]
        crowd = gt_things & ((gt_label & 0xFFFF) == 0)
        gt_kept = gt_things & ~crowd
        pred_things = self.things[pred_semantic]
        pred_areas = joint[~crowd].sum(axis=0)  # predictions on crowd pixels are not counted
        _add(sequence.gt_areas, gt_label[gt_kept], joint[gt_kept].sum(axis=1))
        kept = pred_things & (pred_areas > 0)
        _add(sequence.pred_areas, pred_label[kept], pred_areas[kept])
        inner = joint[np.ix_(gt_kept, pred_things)]
        rows_i, cols_i = np.nonzero(inner)
        _add(sequence.intersections, gt_label[gt_kept][rows_i] * OFFSET + pred_label[pred_things][cols_i],
             inner[rows_i, cols_i])
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
        total_confusion = (np.zeros_like(self.sequences[0].confusion) if self.sequences
                           else np.zeros((1, 1), dtype=np.int64))
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


def stq(videos: Iterable[VideoPair], categories: CategoryTable, crowd_quirk: bool = True,
        void_column_quirk: bool = True) -> STQResult:
    """STQ over ``videos`` (defaults = the official VIPSeg evaluator's numbers)."""
    accumulator = STQAccumulator(categories, crowd_quirk, void_column_quirk)
    accumulate(videos, accumulator)
    return accumulator.result()
