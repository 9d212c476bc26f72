"""A DVIS run as a job (see `app.core.progress`): what to run, the model, and the generator that runs it.

`inference_job` loads the model (torch and dvis_models are imported there, never at import time), decodes the
frame range with its own VideoSource (decoders are not shared across threads) and yields `Progress` and one
`FrameResult` per finished frame, so the GUI's worker and a headless caller run it the same way. Aborting it
keeps the frames already yielded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from app.core.progress import Job, Progress, Rate, threaded

BUNDLED = "bundled"
PRESET_PREFIX = "preset:"
MODEL_PREFIX = "model:"  # an installed model of the library, by name


@dataclass(frozen=True)
class RunRequest:
    """What to run: `model` is "bundled", "preset:<name>" (fresh weights), "model:<name>" (installed) or a path."""

    video_path: Path
    model: str = BUNDLED
    offline: bool = False
    short_edge: int | None = None  # None: the model's own test resolution
    start: int = 0
    stop: int | None = None  # exclusive; None: to the end
    device: str | None = None  # None: CUDA when available, else CPU
    chunk_size: int = 8  # frames per segmenter batch: smaller shows results sooner, larger is faster
    score_threshold: float | None = None  # minimum object score; None: the model's own (0.8 for DVIS)
    torch_threads: int | None = None
    seed: int = 0  # initialises a preset's fresh weights, so test runs are reproducible
    keep_edited: bool = True  # how results are merged: edited tracks are kept like locked ones
    fast: bool = False  # CPU fast mode (VideoSegmenter's fast): quicker, slightly off the official outputs


_model_cache: dict[tuple, object] = {}  # (source, file mtime) -> model; used by one run at a time


def load_model(source: str, seed: int = 0):
    """Build or load the model for `source` (cached, so re-runs start at once). Runs in the job."""
    import torch

    import dvis_models

    if source.startswith(MODEL_PREFIX):
        from app.core.models import ModelLibrary

        path = ModelLibrary().path(source[len(MODEL_PREFIX):])
    else:
        path = None if source == BUNDLED or source.startswith(PRESET_PREFIX) else Path(source)
    key = (source, path.stat().st_mtime if path is not None and path.exists() else seed)
    if key in _model_cache:
        return _model_cache[key]

    if source == BUNDLED:
        from dvis_models.resources import BUNDLED_CHECKPOINT

        model = dvis_models.load_checkpoint(BUNDLED_CHECKPOINT)
    elif source.startswith(PRESET_PREFIX):
        torch.manual_seed(seed)
        model = dvis_models.build_model(source[len(PRESET_PREFIX):])
    else:
        model = dvis_models.load_checkpoint(path)
    _model_cache.clear()
    _model_cache[key] = model
    return model


def inference_job(request: RunRequest) -> Job[None]:
    """Run `request`. Yields, in order: Progress with a text while the model loads and once it runs; Progress
    without text (frames done of the range) after each frame; before an offline run's frames finish, Progress
    with its phase ("Segmenting 12/24 frames", "Refining window 1/2", ...); and each frame's `FrameResult`,
    whose `index` is the frame's index in the video."""
    yield Progress(0, None, "Loading model…")
    import torch

    from app.core.video import VideoSource
    from dvis_models.pipeline import FINISHED, VideoSegmenter, progress_text

    if request.torch_threads:
        torch.set_num_threads(request.torch_threads)
    model = load_model(request.model, request.seed)
    device = request.device or ("cuda" if torch.cuda.is_available() else "cpu")
    max_size = request.short_edge and round(request.short_edge * 1333 / 720)  # keep DVIS's 720/1333 aspect
    segmenter = VideoSegmenter(model, device=device, chunk_size=request.chunk_size, offline=request.offline,
                               object_mask_threshold=request.score_threshold, short_edge=request.short_edge,
                               fast=request.fast, max_size=max_size)

    def segment(report, cancelled) -> None:
        """The pipeline reports its phases through a callback, so it runs on `threaded`'s helper thread."""
        with VideoSource.open(request.video_path) as video:
            stop = video.num_frames if request.stop is None else min(request.stop, video.num_frames)
            total = max(0, stop - request.start)
            frames = (frame for _, frame in video.iter_frames(request.start, stop))
            report(Progress(0, None, f"Running on {device}{' in fast mode' if segmenter.fast else ''}…"))
            report(Progress(0, total))

            def phase(name: str, count: int, of: int | None) -> None:
                """Offline frames finish only after a whole window is refined: show the phases until then."""
                if request.offline and name != FINISHED:
                    report(Progress(count, of, progress_text(name, count, of).capitalize()))

            results = segmenter.run(frames, num_frames=total, progress=phase, cancel=cancelled)
            for done, result in enumerate(results, 1):
                report(dataclasses.replace(result, index=result.index + request.start))
                report(Progress(done, total))

    yield from threaded(segment)


def frames_text(rate: Rate) -> str:
    """'12/100 frames · 3.4 frames/s · ETA 0:26' from a run's frame progress (`rate.last`)."""
    progress = rate.last
    text = f"{progress.done}/{progress.total} frames"
    per_second, left = rate.per_second, rate.seconds_left
    if per_second is None or left is None:
        return text
    left = int(round(left))
    return f"{text} · {per_second:.1f} frames/s · ETA {left // 60}:{left % 60:02d}"
