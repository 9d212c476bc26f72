"""Propagation of a keyframe mask through a video: the frame order, stopping rules and blending.

A run goes forward and/or backward from the keyframe, one frame at a time, until the end of the range,
the next keyframe of the same track, or the object's disappearance (its area below a fraction of the
keyframe's). Between two keyframes it runs from both sides and blends the two soft masks, each weighted
by its closeness to its keyframe (mask interpolation). ``Propagation.run`` is a generator of progress
``(done, total)``: stop iterating to cancel, the frames done stay in ``masks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app.core.annotation import Annotation
from app.core.edits import EditGroup, SetMask
from app.core.errors import PropagationError

DIRECTIONS = ("forward", "backward", "both")
ENGINES = ("flow", "model", "copy")
DEFAULT_ENGINE = "flow"  # best J and J&F in benchmarks/bench_propagation.py, and the fastest


class Engine(Protocol):
    """Follows one object: ``start`` on a keyframe, then ``step`` to each next frame (adjacent to the last)."""

    name: str

    def start(self, index: int, mask: np.ndarray) -> None: ...

    def step(self, index: int) -> np.ndarray:
        """The object's soft mask (float32 in [0, 1], frame size) on frame ``index``."""


class CopyEngine:
    """The baseline: the keyframe mask, unchanged, on every frame."""

    name = "copy"

    def start(self, index: int, mask: np.ndarray) -> None:
        self._mask = mask.astype(np.float32)

    def step(self, index: int) -> np.ndarray:
        return self._mask


@dataclass
class PropagationRequest:
    """What to propagate. ``keyframes`` are the track's other trusted frames (they bound and anchor the run)."""

    keyframe: int
    direction: str = "forward"
    start: int = 0
    stop: int | None = None  # exclusive; None: to the end of the video
    keyframes: tuple[int, ...] = ()
    min_area_fraction: float = 0.1  # the object has disappeared below this fraction of its keyframe area
    void_only: bool = False  # fill only void instead of taking other unlocked tracks' pixels


@dataclass
class _Span:
    """Frames strictly between ``begin`` and ``end`` (either order); ``end`` is a keyframe when ``anchored``."""

    begin: int
    end: int
    anchored: bool

    @property
    def frames(self) -> list[int]:
        step = 1 if self.end > self.begin else -1
        return list(range(self.begin + step, self.end, step))


@dataclass
class Propagation:
    """One propagation run over masks given per keyframe (``key_masks``: frame -> bool mask).

    ``make_engine`` may be given after planning: a job run on a worker thread gives it the engine over that
    thread's own reader of the video.
    """

    key_masks: dict[int, np.ndarray]
    request: PropagationRequest
    num_frames: int
    make_engine: Callable[[], Engine] | None = None
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    last_frame: int | None = None  # the frame whose mask the latest step wrote (or rewrote, blending)

    def __post_init__(self) -> None:
        request = self.request
        stop = self.num_frames if request.stop is None else request.stop
        if request.direction not in DIRECTIONS:
            raise PropagationError(f"Unknown direction {request.direction!r}; use one of {', '.join(DIRECTIONS)}.")
        if not 0 <= request.start <= request.keyframe < stop <= self.num_frames:
            raise PropagationError(f"Keyframe {request.keyframe} and range {request.start}..{stop - 1} must lie inside "
                                   f"the video (frames 0..{self.num_frames - 1}), the keyframe inside the range.")
        if not self.key_masks.get(request.keyframe, np.zeros(1, bool)).any():
            raise PropagationError(f"The object has no pixels on keyframe {request.keyframe}; paint or accept a mask "
                                   "there first.")
        self._stop = stop

    def spans(self) -> list[_Span]:
        request, keys = self.request, sorted(k for k in self.key_masks if k != self.request.keyframe)
        spans = []
        if request.direction in ("forward", "both"):
            after = [k for k in keys if request.keyframe < k < self._stop]
            spans.append(_Span(request.keyframe, after[0], True) if after
                         else _Span(request.keyframe, self._stop, False))
        if request.direction in ("backward", "both"):
            before = [k for k in keys if request.start <= k < request.keyframe]
            spans.append(_Span(request.keyframe, before[-1], True) if before
                         else _Span(request.keyframe, request.start - 1, False))
        return spans

    def total(self) -> int:
        return sum(len(s.frames) * (2 if s.anchored else 1) for s in self.spans())

    def run(self) -> Iterator[tuple[int, int]]:
        """Propagate, yielding ``(steps done, steps total)`` after every frame."""
        total, done = self.total(), 0
        for span in self.spans():
            for frame in self._run_span(span):
                self.last_frame = frame
                done += 1
                yield done, total

    def _run_span(self, span: _Span) -> Iterator[int]:
        if self.make_engine is None:
            raise PropagationError("Choose a propagation engine before running a propagation.")
        key_area = int(self.key_masks[span.begin].sum())
        forward: dict[int, np.ndarray] = {}
        engine = self.make_engine()
        engine.start(span.begin, self.key_masks[span.begin])
        for index in span.frames:
            soft = engine.step(index)
            mask = soft >= 0.5
            if not span.anchored and mask.sum() < self.request.min_area_fraction * key_area:
                return  # the object has left the frame or is hidden
            forward[index] = soft
            self.masks[index] = mask
            yield index
        if not span.anchored:
            return
        engine = self.make_engine()
        engine.start(span.end, self.key_masks[span.end])
        length = abs(span.end - span.begin)
        for index in reversed(span.frames):
            weight = abs(index - span.begin) / length  # closeness to the far keyframe
            self.masks[index] = (1 - weight) * forward[index] + weight * engine.step(index) >= 0.5
            yield index

    def edit(self, track_id: int) -> EditGroup:
        """The masks done so far as one undoable edit of ``track_id``."""
        edits = [SetMask.of(i, track_id, self.masks[i], self.request.void_only).to_json() for i in sorted(self.masks)]
        return EditGroup(edits, f"propagate track {track_id} over {len(edits)} frames")


def track_propagation(annotation: Annotation, track_id: int, request: PropagationRequest,
                      make_engine: Callable[[], Engine] | None = None) -> Propagation:
    """A propagation of ``track_id``'s mask on ``request.keyframe`` (and its other keyframes) in ``annotation``."""
    track = annotation.tracks.get(track_id)
    if track is None:
        raise PropagationError(f"There is no track {track_id}; select a track to propagate.")
    if track.locked:
        raise PropagationError(f"Track {track_id} is locked; unlock it before propagating it.")
    frames = [request.keyframe, *request.keyframes]
    if any(not 0 <= f < annotation.num_frames for f in frames):
        raise PropagationError(f"Keyframes {frames} must be frames of the video (0..{annotation.num_frames - 1}).")
    key_masks = {f: annotation.track_map(f) == track_id for f in frames}
    key_masks = {f: m for f, m in key_masks.items() if f == request.keyframe or m.any()}
    return Propagation(key_masks, request, annotation.num_frames, make_engine)
