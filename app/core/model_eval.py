"""Score a model on a VIPSeg ground-truth folder (VPQ / STQ), all in memory, as a generator job.

The model runs on every video's frames and its results are compared with the folder's masks; nothing
is written. ``dvis eval-bundled`` and fine-tuning's before/after scores both go through here.
"""

from __future__ import annotations

from pathlib import Path

from app.core.progress import Job, Progress


def evaluate_model_job(model, gt_root: Path, split: str | None = None, offline: bool | None = None, device=None,
                       max_videos: int | None = None, fast: bool = False, short_edge: int | None = None,
                       text: str = "Scoring the model", **options) -> Job:
    """Yields a `Progress` per frame (``text`` names the phase) and returns the `Evaluation`; ``options`` go to
    ``app.core.metrics.evaluate``."""
    from app.core.metrics import VideoPair, evaluate
    from app.core.vipseg import PanopticFrame, read_ground_truth
    from dvis_models import VideoSegmenter
    from dvis_models.data.vipseg_format import read_rgb_image

    categories, videos = read_ground_truth(gt_root, split)
    videos = videos[:max_videos]
    segmenter = VideoSegmenter(model, device=device, offline=offline, fast=fast, short_edge=short_edge)
    total, done = sum(len(video.image_paths) for video in videos), 0
    pairs = []
    for video in videos:
        frames = [read_rgb_image(path) for path in video.image_paths]
        predicted = []
        for result in segmenter.run(frames, num_frames=len(frames)):
            predicted.append(PanopticFrame(result.track_map, {s.track_id: s.category_id for s in result.segments}))
            done += 1
            yield Progress(done, total, text)
        pairs.append(VideoPair(video.video_id, video.frames(), predicted))
    return evaluate(pairs, categories, **options)
