"""A DVIS run as a job (see `app.core.progress`): what to run, the model, and the generator that runs it.

`inference_job` loads the model (torch and dvis_models are imported there, never at import time), decodes the
frame range with its own VideoSource (decoders are not shared across threads) and yields `Progress` and one
`FrameResult` per finished frame, so the GUI's worker and a headless caller run it the same way. Aborting it
keeps the frames already yielded. Given a `SharedDecode` (the open video's `app.core.scrub.Scrubber`), the run
reads its frames through it, so the one decode of the range also fills the scrubbing proxy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.core.model_source import BUNDLED, build_segmenter, load_model, phase_text, set_threads
from app.core.progress import Job, Progress, Rate, threaded

if TYPE_CHECKING:
    import numpy as np

    from app.core.video import VideoSource

# What ``chunk_size`` does, for the Run dialog's tooltip and ``dvis infer --chunk-size``'s help.
CHUNK_SIZE_HELP = (
    "Online runs only (offline runs ignore it): frames per post-processing unit, as the official DVIS long-video "
    "demo's --windows_size. The tracker follows objects across units whatever the size, but each unit's classes "
    "(the tracker's class scores averaged over the unit), score threshold and overlap filter are decided over its "
    "frames alone, so the masks depend on it: on the bundled model's held-out videos, sizes 1 / 4 / 8 change the "
    "class (or void) of 3.0 / 2.5 / 1.6 % of the pixels against 16 (VPQ 44.0 / 44.4 / 47.7 against 48.1). A size "
    "of at least the video's length gives the official whole-video result. Smaller: results appear sooner and need "
    "less memory."
)


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
    chunk_size: int = 16  # online post-processing unit (CHUNK_SIZE_HELP); 16 as dvis infer and VideoSegmenter
    score_threshold: float | None = None  # minimum object score; None: the model's own (0.8 for DVIS)
    torch_threads: int | None = None
    seed: int = 0  # initialises a preset's fresh weights, so test runs are reproducible
    keep_edited: bool = True  # how results are merged: edited tracks are kept like locked ones
    fast: bool = False  # CPU fast mode (VideoSegmenter's fast): quicker, slightly off the official outputs


class SharedDecode(Protocol):
    """Something else that needs the frames a run decodes: it is handed the run's decoding to share."""

    def iter_frames(self, video: VideoSource, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """`video.iter_frames(start, stop)`, making what it needs of each frame on the way."""
        ...


def inference_job(request: RunRequest, shared: SharedDecode | None = None) -> Job[None]:
    """Run `request`. Yields, in order: Progress with a text while the model loads and once it runs; Progress
    without text (frames done of the range) after each frame; before an offline run's frames finish, Progress
    with its phase ("Segmenting 12/24 frames", "Refining window 1/2", ...); and each frame's `FrameResult`,
    whose `index` is the frame's index in the video. `shared`: the frames are read through it (see
    `SharedDecode`), and its iterator is closed when the run ends, however it ends."""
    yield Progress(0, None, "Loading model…")
    from app.core.video import VideoSource

    set_threads(request.torch_threads)
    model = load_model(request.model, request.seed)
    segmenter = build_segmenter(model, device=request.device, chunk_size=request.chunk_size, offline=request.offline,
                                score_threshold=request.score_threshold, short_edge=request.short_edge,
                                fast=request.fast)
    device = segmenter.device

    def segment(report, cancelled) -> None:
        """The pipeline reports its phases through a callback, so it runs on `threaded`'s helper thread."""
        with VideoSource.open(request.video_path) as video:
            stop = video.num_frames if request.stop is None else min(request.stop, video.num_frames)
            total = max(0, stop - request.start)
            decoded = (video.iter_frames(request.start, stop) if shared is None
                       else shared.iter_frames(video, request.start, stop))
            with closing(decoded):  # a cancelled run stops sharing its decode at once
                frames = (frame for _, frame in decoded)
                report(Progress(0, None, f"Running on {device}{' in fast mode' if segmenter.fast else ''}…"))
                report(Progress(0, total))

                def phase(name: str, count: int, of: int | None) -> None:
                    """Offline frames finish only after a whole window is refined: show the phases until then."""
                    text = phase_text(name, count, of)
                    if request.offline and text is not None:
                        report(Progress(count, of, text))

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
