"""VPQ and STQ in one pass over the frames (each PNG is read once), from plain data or from folders."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.core.metrics.common import MetricsError, VideoPair, feed_frames
from app.core.metrics.stq import STQAccumulator, STQResult
from app.core.metrics.vpq import VIPSEG_WINDOWS, VPQAccumulator, VPQResult
from app.core.progress import Job, Progress, run_job
from app.core.vipseg.reader import read_ground_truth, read_predictions
from dvis_models.categories import CategoryTable


@dataclass
class Evaluation:
    vpq: VPQResult
    stq: STQResult


def evaluate(videos: Iterable[VideoPair], categories: CategoryTable, **options) -> Evaluation:
    """VPQ + STQ. ``options``: windows, short_videos_as_one_window (VPQ); crowd_quirk, void_column_quirk (STQ)."""
    return run_job(evaluation(videos, categories, **options))


def evaluation(videos: Iterable[VideoPair], categories: CategoryTable, total: int | None = None,
               **options) -> Job[Evaluation]:
    """``evaluate`` as a job: yields ``Progress`` per frame (of ``total`` frames when known)."""
    vpq_acc = VPQAccumulator(
        categories, options.pop("windows", VIPSEG_WINDOWS), options.pop("short_videos_as_one_window", False)
    )
    stq_acc = STQAccumulator(categories, options.pop("crowd_quirk", True), options.pop("void_column_quirk", True))
    if options:
        raise TypeError(f"Unknown evaluation options {sorted(options)}")
    for done in feed_frames(videos, vpq_acc, stq_acc):
        yield Progress(done, total)
    return Evaluation(vpq_acc.result(), stq_acc.result())


def folder_pairs(gt_root: str | Path, pred_root: str | Path,
                 split: str | None = None) -> tuple[CategoryTable, list[VideoPair]]:
    """Pairs of a VIPSeg ground-truth folder and a prediction folder, matched by video id and frame stem.

    The prediction is evaluator output (``pred.json`` + ``pan_pred/``), which like the evaluators may not keep
    one category per id (its category is taken per window), or a VIPSeg folder such as ``dvis infer`` writes.
    """
    categories, gt_videos = read_ground_truth(gt_root, split)
    if (Path(pred_root) / "pred.json").exists():
        _, pred_videos = read_predictions(pred_root, categories, one_category_per_id=False)
    else:
        _, pred_videos = read_ground_truth(pred_root)
    predictions = {video.video_id: video for video in pred_videos}
    pairs = []
    for gt in gt_videos:
        pred = predictions.get(gt.video_id)
        if pred is None:
            raise MetricsError(f"{pred_root} has no prediction for video {gt.video_id!r}; predict every ground-truth "
                               "video.")
        if pred.stems != gt.stems:
            raise MetricsError(
                f"Video {gt.video_id!r}: the prediction's frames ({len(pred.stems)}) differ from the ground truth's "
                f"({len(gt.stems)}); predict exactly the annotated frames, in order."
            )
        pairs.append(VideoPair(gt.video_id, gt.frames(), pred.frames()))
    return categories, pairs


def evaluate_folders(gt_root: str | Path, pred_root: str | Path, split: str | None = None, **options) -> Evaluation:
    categories, pairs = folder_pairs(gt_root, pred_root, split)
    return evaluate(pairs, categories, **options)
