"""Video Panoptic Quality exactly as VIPSeg's ``eval_vpq_vspw.py`` defines it.

For each window length (1, 2, 4, 6, 8 annotated frames) a window starts at every frame index where it
fits. Inside a window, ids are tubes: areas and intersections are summed over the window's frames, and a
tube's category (and ``iscrowd``) is the one it has in the first frame of the window where it appears. A
non-crowd GT and a predicted tube of the same category with IoU > 0.5 are a TP, where union = pred + gt -
intersection - (pred on void). Unmatched non-crowd GT tubes are FNs; crowd GT tubes are never matched nor
counted. An unmatched predicted tube is an FP unless more than half of it lies on void plus the crowd tube of
its category (panopticapi's ``crowd_labels_dict``: one crowd tube per category, the last one listed in the
window, in frame order then ``segments_info`` order).
Per class PQ = sum IoU / (TP + FP/2 + FN/2) over all windows of all videos; classes without any TP, FP or
FN are left out of the means; the final VPQ is the plain mean over the window lengths.

Implementation note: the evaluator re-reads and stacks the frames of every window; we count each frame's
(gt id, pred id) pixel pairs once (``FramePair``) and sum those tables per window, which gives the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.core.metrics.common import FramePair, VideoPair, accumulate
from dvis_models.categories import CategoryTable

VIPSEG_WINDOWS = (1, 2, 4, 6, 8)


@dataclass
class ClassPQ:
    pq: float
    sq: float
    rq: float
    iou: float
    tp: int
    fp: int
    fn: int


@dataclass
class PQSummary:
    """Mean PQ / SQ / RQ over the ``n`` classes that have any TP, FP or FN (nan when n == 0)."""

    pq: float
    sq: float
    rq: float
    n: int


@dataclass
class WindowResult:
    nframes: int
    all: PQSummary
    things: PQSummary
    stuff: PQSummary
    per_class: dict[int, ClassPQ]

    @property
    def k(self) -> int:
        """The evaluator's label for the window, ``vpq-<k>.txt`` with k = (nframes - 1) * 5."""
        return (self.nframes - 1) * 5


@dataclass
class VPQResult:
    """Fractions in [0, 1] (the evaluator prints them x 100). ``all/things/stuff`` = mean over windows."""

    windows: list[WindowResult]
    all: float
    things: float
    stuff: float


@dataclass
class _FrameStats:
    pairs: dict[tuple[int, int], int]
    gt_category: dict[int, int]
    pred_category: dict[int, int]
    gt_crowd: frozenset[int]


@dataclass
class _ClassStat:
    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0


@dataclass
class _Stats:
    """Per-class TP/FP/FN/IoU of one window length, summed over windows and videos."""

    per_class: dict[int, _ClassStat] = field(default_factory=lambda: defaultdict(_ClassStat))

    def add_window(self, frames: Sequence[_FrameStats]) -> None:
        pairs: Counter = Counter()
        gt_area: Counter = Counter()
        pred_area: Counter = Counter()
        gt_category: dict[int, int] = {}
        pred_category: dict[int, int] = {}
        crowd: dict[int, bool] = {}
        for frame in frames:
            for (gt_id, pred_id), count in frame.pairs.items():
                pairs[gt_id, pred_id] += count
                gt_area[gt_id] += count
                pred_area[pred_id] += count
            for segment_id, category in frame.gt_category.items():
                gt_category.setdefault(segment_id, category)
                crowd.setdefault(segment_id, segment_id in frame.gt_crowd)
            for segment_id, category in frame.pred_category.items():
                pred_category.setdefault(segment_id, category)

        gt_matched, pred_matched = set(), set()
        for (gt_id, pred_id), intersection in pairs.items():
            if gt_id == 0 or pred_id == 0 or crowd[gt_id] or gt_category[gt_id] != pred_category[pred_id]:
                continue
            union = pred_area[pred_id] + gt_area[gt_id] - intersection - pairs.get((0, pred_id), 0)
            iou = intersection / union
            if iou > 0.5:
                stat = self.per_class[gt_category[gt_id]]
                stat.tp += 1
                stat.iou += iou
                gt_matched.add(gt_id)
                pred_matched.add(pred_id)
        crowd_of_category: dict[int, int] = {}
        for gt_id, category in gt_category.items():
            if crowd[gt_id]:
                crowd_of_category[category] = gt_id
            elif gt_id not in gt_matched:
                self.per_class[category].fn += 1
        for pred_id, category in pred_category.items():
            if pred_id in pred_matched:
                continue
            ignored = pairs.get((0, pred_id), 0)
            if category in crowd_of_category:
                ignored += pairs.get((crowd_of_category[category], pred_id), 0)
            if ignored / pred_area[pred_id] <= 0.5:
                self.per_class[category].fp += 1

    def summarize(self, nframes: int, categories: CategoryTable) -> WindowResult:
        per_class: dict[int, ClassPQ] = {}
        groups: dict[str, list[ClassPQ]] = {"all": [], "things": [], "stuff": []}
        for category in categories:
            stat = self.per_class.get(category.id, _ClassStat())
            denominator = stat.tp + 0.5 * stat.fp + 0.5 * stat.fn
            if denominator == 0:
                per_class[category.id] = ClassPQ(0.0, 0.0, 0.0, 0.0, 0, 0, 0)
                continue
            result = ClassPQ(
                stat.iou / denominator, stat.iou / stat.tp if stat.tp else 0.0, stat.tp / denominator,
                stat.iou, stat.tp, stat.fp, stat.fn
            )
            per_class[category.id] = result
            groups["all"].append(result)
            groups["things" if category.isthing else "stuff"].append(result)
        summaries = {name: _mean(results) for name, results in groups.items()}
        return WindowResult(nframes, summaries["all"], summaries["things"], summaries["stuff"], per_class)


def _mean(results: list[ClassPQ]) -> PQSummary:
    if not results:
        return PQSummary(math.nan, math.nan, math.nan, 0)
    n = len(results)
    return PQSummary(sum(r.pq for r in results) / n, sum(r.sq for r in results) / n, sum(r.rq for r in results) / n, n)


def window_starts(num_frames: int, nframes: int, short_videos_as_one_window: bool) -> range:
    """Official: every start where a full window fits (none for shorter videos). The switch counts a video
    shorter than the window once, as one window over all its frames (DEVA's variant)."""
    if short_videos_as_one_window:
        return range(max(num_frames - nframes + 1, 1))
    return range(max(num_frames - nframes + 1, 0))


class VPQAccumulator:
    """Feed frames video by video (``start_video`` then ``add_frame``), then read ``result()``."""

    def __init__(self, categories: CategoryTable, windows: Sequence[int] = VIPSEG_WINDOWS,
                 short_videos_as_one_window: bool = False):
        self.categories = categories
        self.short_videos_as_one_window = short_videos_as_one_window
        self.stats = {nframes: _Stats() for nframes in windows}
        self.video_id = ""
        self.frames: list[_FrameStats] = []

    def start_video(self, video_id: str) -> None:
        self._finish_video()
        self.video_id = video_id

    def add_frame(self, pair: FramePair) -> None:
        rows, cols = np.nonzero(pair.joint)
        keys = zip(pair.gt_values[rows].tolist(), pair.pred_values[cols].tolist())
        pairs = dict(zip(keys, pair.joint[rows, cols].tolist()))
        self.frames.append(_FrameStats(pairs, dict(pair.gt_segments), dict(pair.pred_segments), pair.gt_crowd))

    def _finish_video(self) -> None:
        for nframes, stat in self.stats.items():
            for start in window_starts(len(self.frames), nframes, self.short_videos_as_one_window):
                stat.add_window(self.frames[start : start + nframes])
        self.frames = []

    def result(self) -> VPQResult:
        self._finish_video()
        results = [stat.summarize(nframes, self.categories) for nframes, stat in self.stats.items()]
        return VPQResult(
            results,
            float(np.mean([r.all.pq for r in results])),
            float(np.mean([r.things.pq for r in results])),
            float(np.mean([r.stuff.pq for r in results])),
        )


def vpq(
    videos: Iterable[VideoPair],
    categories: CategoryTable,
    windows: Sequence[int] = VIPSEG_WINDOWS,
    short_videos_as_one_window: bool = False,
) -> VPQResult:
    """VPQ over ``videos`` (default windows and rules = VIPSeg's evaluator)."""
    accumulator = VPQAccumulator(categories, windows, short_videos_as_one_window)
    accumulate(videos, accumulator)
    return accumulator.result()
