"""The labelling use cases the GUI (and tests) call: accept a prompted mask, plan and run a propagation.

Both end in one undoable edit that also marks keyframes (frames a person vouched for) and propagated
frames, so a later propagation knows where to stop and interpolate, and the timeline can show them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.annotation import Annotation
from app.core.edits import AddTrack, Edit, EditGroup, MarkFrames, SetMask
from app.core.errors import Cancelled, PromptError, PropagationError
from app.core.keyframes import KEY, PROPAGATED
from app.core.progress import Job, Progress
from app.core.propagation.driver import (
    DEFAULT_ENGINE,
    DIRECTIONS,
    ENGINES,
    CopyEngine,
    Engine,
    Propagation,
    PropagationRequest,
    track_propagation,
)
from app.core.propagation.flow import FlowEngine, FrameSource

STOP_AT = ("disappearance", "range_end", "next_keyframe")
CACHED_FRAMES = 8  # segmenter outputs the model engine keeps: about 100 MB a frame at 720p (an interpolated span
# longer than this is segmented twice: once each way)
DISAPPEARED_FRACTION = 0.1  # "the object's disappearance": its area below this fraction of the keyframe's


def accept_proposal(annotation: Annotation, frame: int, mask: np.ndarray, category_id: int,
                    track_id: int | None = None) -> tuple[Edit, int]:
    """(the edit, the track it fills): ``mask`` becomes the track's mask on ``frame`` and that frame a keyframe.

    Without ``track_id`` a new track of ``category_id`` is made; a stuff category's existing track (VIPSeg
    allows one per video) is used instead of a second one.
    """
    if not mask.any():
        raise PromptError("The proposal is empty; click on the object (or drag a box around it) first.")
    edits: list[Edit] = []
    if track_id is None:
        category = annotation.categories[category_id]
        track_id = None if category.isthing else annotation.stuff_track(category_id)
        if track_id is None:
            track_id = annotation.next_track_id
            edits.append(AddTrack(category_id, track_id=track_id))
    edits += [SetMask.of(frame, track_id, mask), MarkFrames(track_id, [[frame, KEY]])]
    name = annotation.categories.name(category_id)
    label = f"Prompted {name} mask into {'new ' if len(edits) == 3 else ''}track {track_id} on frame {frame}"
    return EditGroup([e.to_json() for e in edits], label), track_id


@dataclass(frozen=True)
class PropagateOptions:
    """What the Propagate dialog asks: ``start``..``stop`` (exclusive, None: the end) is the range."""

    direction: str = "forward"
    stop_at: str = "disappearance"
    start: int = 0
    stop: int | None = None
    engine: str = DEFAULT_ENGINE
    void_only: bool = False


def plan_propagation(annotation: Annotation, track_id: int, keyframe: int, options: PropagateOptions) -> Propagation:
    """The propagation of ``track_id`` from ``keyframe``, bounded by its other keyframes (which it
    interpolates towards) and by ``options.stop_at``; checked here, run later by :func:`propagation_job`.

    "next_keyframe" only fills frames between ``keyframe`` and the track's nearest keyframes (nothing on a
    side without one); "range_end" runs to the range's end even where the object seems gone;
    "disappearance" also stops where its mask shrinks below a tenth of the keyframe's.
    """
    if options.stop_at not in STOP_AT:
        raise PropagationError(f"Unknown stop rule {options.stop_at!r}; use one of {', '.join(STOP_AT)}.")
    if options.engine not in ENGINES:
        raise PropagationError(f"Unknown engine {options.engine!r}; use one of {', '.join(ENGINES)}.")
    start, stop = options.start, annotation.num_frames if options.stop is None else options.stop
    keyframes = [f for f in annotation.marks.frames(track_id, KEY) if f != keyframe and start <= f < stop]
    if options.stop_at == "next_keyframe":
        after, before = [k for k in keyframes if k > keyframe], [k for k in keyframes if k < keyframe]
        start, stop = (before[-1] if before else keyframe), (after[0] + 1 if after else keyframe + 1)
    request = PropagationRequest(keyframe, options.direction, start, stop, tuple(keyframes),
                                 DISAPPEARED_FRACTION if options.stop_at == "disappearance" else 0.0, options.void_only)
    return track_propagation(annotation, track_id, request)


def engine_factory(name: str, frames: FrameSource,
                   load_model: Callable[[], object] | None = None) -> Callable[[], Engine]:
    """Makes a fresh engine per propagated span; the model engine's segmenter outputs are shared by all spans."""
    if name == "flow":
        return lambda: FlowEngine(frames)
    if name == "copy":
        return CopyEngine
    if name == "model":
        if load_model is None:
            raise PropagationError("The model engine needs a model: run DVIS once (Model → Run DVIS), "
                                   "or choose the flow engine.")
        from app.core.propagation.model_engine import ModelEngine
        from app.core.propagation.segmenter import SegmenterCache

        cache = SegmenterCache(load_model(), frames, max_frames=CACHED_FRAMES)
        return lambda: ModelEngine(cache, frames)
    raise PropagationError(f"Unknown engine {name!r}; use one of {', '.join(ENGINES)}.")


@dataclass(frozen=True)
class FrameMask:
    """A propagated frame, as the edit that sets the track's mask there (built on the worker thread: the
    mask's PNG encoding is the slow part)."""

    frame: int
    edit: SetMask


@dataclass
class PropagationResult:
    propagation: Propagation
    cancelled: bool

    @property
    def frames(self) -> list[int]:
        return sorted(self.propagation.masks)


def propagation_job(propagation: Propagation, track_id: int, video_path: Path, engine: str,
                    load_model: Callable[[], object] | None = None) -> Job[PropagationResult]:
    """Run a planned propagation of ``track_id`` (on a worker thread: it opens its own reader of the video),
    yielding a :class:`FrameMask` per frame step and ``Progress``. Cancelling (``Cancelled`` thrown in) ends it
    with the frames done so far."""
    from app.core.video import VideoSource

    with VideoSource.open(video_path) as video:
        propagation.make_engine = engine_factory(engine, video.frame, load_model)
        try:
            yield Progress(0, propagation.total(), "Propagating")
            for done, total in propagation.run():
                frame = propagation.last_frame
                mask = propagation.masks[frame]
                yield FrameMask(frame, SetMask.of(frame, track_id, mask, propagation.request.void_only))
                yield Progress(done, total, "Propagating")
        except Cancelled:
            return PropagationResult(propagation, cancelled=True)
    return PropagationResult(propagation, cancelled=False)


class AppliedPropagation:
    """Writes a running propagation's frames into the annotation as they arrive (so they show at once and the
    UI never applies hundreds of frames in one go), and makes all of it one undoable change at the end."""

    def __init__(self, annotation: Annotation, track_id: int):
        self.annotation, self.track_id = annotation, track_id
        self._inverses: list[dict] = []

    def add(self, frame_mask: FrameMask) -> None:
        self._inverses.append(self.annotation.apply(frame_mask.edit).to_json())

    def finish(self, keyframe: int, frames: list[int]) -> EditGroup | None:
        """Mark ``keyframe`` and the propagated ``frames``; returns the edit undoing all of it (None: nothing done)."""
        if not self._inverses:
            return None
        marks = MarkFrames(self.track_id, [[keyframe, KEY], *([f, PROPAGATED] for f in frames)])
        inverses = [self.annotation.apply(marks).to_json(), *reversed(self._inverses)]
        self._inverses = []
        return EditGroup(inverses, f"Propagate track {self.track_id} over {len(frames)} frames")


__all__ = ["DIRECTIONS", "ENGINES", "STOP_AT", "AppliedPropagation", "FrameMask", "PropagateOptions",
           "PropagationResult", "accept_proposal", "engine_factory", "plan_propagation", "propagation_job"]
