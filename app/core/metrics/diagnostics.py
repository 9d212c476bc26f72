"""Tracking-stability diagnostics: where a person should look on the timeline.

Works on any sequence of track maps (an Annotation, or a model's output before VIPSeg rules are applied)
and reports each suspicious event as a ``Diagnostic`` the GUI can place as a marker:

- ``id_switch``: two tracks swap masks between consecutive frames, a track jumps onto the mask another
  track had, or a track ends exactly where a new one starts on the same pixels;
- ``fragment``: a track disappears and comes back (a gap), or a new track starts where a track ended a
  few frames earlier (a lost re-identification);
- ``class_flicker``: the per-frame class a model gave a track changes (needs ``frame_classes``);
- ``area_jump``: a track's area changes by a large factor between consecutive frames;
- ``short_track``: a track that lives only a few frames.

Masks are compared at a reduced resolution (``max_side``), presence and areas at full resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from app.core.progress import Job, Progress, run_job
from app.core.result_merger import pair_iou

KINDS = ("id_switch", "fragment", "class_flicker", "area_jump", "short_track")


@dataclass(frozen=True)
class Diagnostic:
    """One marker: ``severity`` in (0, 1] (1 = almost certainly wrong); ``other_track_id`` for switches/fragments."""

    kind: str
    track_id: int
    frame: int
    detail: str
    severity: float
    other_track_id: int | None = None


@dataclass(frozen=True)
class DiagnosticsConfig:
    iou_threshold: float = 0.5  # masks at least this similar are taken to be the same object
    max_gap: int = 15  # frames between a track's end and a new track's start still called a fragment
    area_ratio: float = 2.5  # consecutive-frame area change (either way) reported as a jump
    min_area: int = 64  # pixels: smaller masks are too noisy for area jumps
    min_track_frames: int = 3  # tracks present in fewer frames are short
    max_side: int = 320  # masks are compared at most this many pixels on the long side


@dataclass
class _TrackState:
    first: int
    last: int
    frames: int = 1
    area: int = 0
    category: int | None = None


@dataclass
class _Analyzer:
    config: DiagnosticsConfig
    found: list[Diagnostic] = field(default_factory=list)
    tracks: dict[int, _TrackState] = field(default_factory=dict)
    small: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> reduced map, last max_gap + 1 frames
    previous: list[int] = field(default_factory=list)

    def add(self, kind: str, track_id: int, frame: int, detail: str, severity: float, other: int | None = None) -> None:
        self.found.append(Diagnostic(kind, track_id, frame, detail, round(min(max(severity, 0.01), 1.0), 3), other))

    def step(self, index: int, track_map: np.ndarray, classes: Mapping[int, int] | None = None) -> None:
        ids, areas = np.unique(track_map, return_counts=True)
        area_of = {int(i): int(a) for i, a in zip(ids, areas) if i}
        current = sorted(area_of)
        stride = max(1, math.ceil(max(track_map.shape) / self.config.max_side))
        small = np.ascontiguousarray(track_map[::stride, ::stride])
        self.small[index] = small
        for old in [k for k in self.small if k < index - self.config.max_gap - 1]:
            del self.small[old]

        previous_set, current_set = set(self.previous), set(current)
        if self.previous and index - 1 in self.small:
            iou = pair_iou(small, self.small[index - 1], current, self.previous)
            self._switches(index, current, iou, previous_set, current_set)
        self._fragments(index, current, small)
        for track_id in current:
            self._update(index, track_id, area_of[track_id], track_id in previous_set, classes)
        self.previous = current

    def _switches(self, index: int, current: list[int], iou: np.ndarray, previous_set: set, current_set: set) -> None:
        threshold = self.config.iou_threshold
        column = {t: j for j, t in enumerate(self.previous)}
        for i, track_id in enumerate(current):
            j = int(np.argmax(iou[i])) if iou.shape[1] else -1
            if j < 0 or iou[i, j] <= threshold:
                continue
            other = self.previous[j]
            if other == track_id:
                continue
            if track_id in previous_set:
                if other in current_set and iou[current.index(other), column[track_id]] > threshold:
                    if track_id < other:  # report a swap once
                        self.add("id_switch", track_id, index, f"tracks {track_id} and {other} swap masks", 1.0, other)
                else:
                    self.add("id_switch", track_id, index,
                             f"track {track_id} jumps onto the mask of track {other} (IoU {iou[i, j]:.2f})",
                             iou[i, j], other)
            elif other not in current_set:
                self.add(
                    "id_switch", track_id, index,
                    f"track {other} ends at frame {index - 1} and track {track_id} starts here on the same pixels "
                    f"(IoU {iou[i, j]:.2f})",
                    iou[i, j], other,
                )

    def _fragments(self, index: int, current: list[int], small: np.ndarray) -> None:
        for track_id in current:
            state = self.tracks.get(track_id)
            if state is not None and state.last < index - 1:
                gap = index - 1 - state.last
                self.add("fragment", track_id, index,
                         f"track {track_id} is missing in frames {state.last + 1}..{index - 1} ({gap} frames)",
                         0.5 + 0.5 * min(1.0, gap / self.config.max_gap))
        new = [t for t in current if t not in self.tracks]
        ended = [
            (t, s) for t, s in self.tracks.items()
            if index - 1 - self.config.max_gap <= s.last < index - 1 and t not in current and s.last in self.small
        ]
        for track_id in new:
            best = max(
                ((_iou(small == track_id, self.small[s.last] == t), t, s.last) for t, s in ended), default=None
            )
            if best is not None and best[0] > self.config.iou_threshold:
                score, other, last = best
                self.add("fragment", track_id, index,
                         f"new track {track_id} starts where track {other} was last seen at frame {last} "
                         f"(IoU {score:.2f}); likely the same object",
                         score, other)

    def _update(self, index: int, track_id: int, area: int, continuing: bool,
                classes: Mapping[int, int] | None) -> None:
        state = self.tracks.get(track_id)
        if state is None:
            state = self.tracks[track_id] = _TrackState(index, index, 0, area)
        elif continuing and max(area, state.area) >= self.config.min_area:
            ratio = max(area, state.area) / max(1, min(area, state.area))
            if ratio >= self.config.area_ratio:
                self.add("area_jump", track_id, index,
                         f"area changes from {state.area} to {area} pixels (x{ratio:.1f})",
                         math.log(ratio) / math.log(self.config.area_ratio * 4))
        state.last, state.area = index, area
        state.frames += 1
        if classes is not None:
            category = classes.get(track_id)
            if category is not None:
                if state.category is not None and category != state.category:
                    self.add("class_flicker", track_id, index,
                             f"class changes from {state.category} to {category}", 0.8)
                state.category = category

    def finish(self, num_frames: int) -> list[Diagnostic]:
        limit = self.config.min_track_frames
        for track_id, state in self.tracks.items():
            if state.frames < limit and num_frames >= limit:
                self.add("short_track", track_id, state.first, f"track {track_id} lives only {state.frames} frame(s)",
                         0.3 + 0.4 * (limit - state.frames) / limit)
        return sorted(self.found, key=lambda d: (d.frame, d.track_id, d.kind))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def diagnose(
    track_maps: Iterable[np.ndarray],
    frame_classes: Mapping[int, Mapping[int, int]] | None = None,
    config: DiagnosticsConfig | None = None,
) -> list[Diagnostic]:
    """Diagnostics over per-frame int track maps (0 void). ``frame_classes``: frame -> {track: class} as the
    model predicted it per frame (before a track is forced to one category), for class-flicker markers."""
    frames = ((index, track_map, frame_classes.get(index) if frame_classes is not None else None)
              for index, track_map in enumerate(track_maps))
    return _analyze(frames, config)


def _analyze(frames: Iterable[tuple[int, np.ndarray, Mapping[int, int] | None]],
             config: DiagnosticsConfig | None) -> list[Diagnostic]:
    """Feed (index, track map, classes or None) in frame order to one analyzer."""
    return run_job(_analysis(frames, config))


def _analysis(frames: Iterable[tuple[int, np.ndarray, Mapping[int, int] | None]], config: DiagnosticsConfig | None,
              total: int | None = None) -> Job[list[Diagnostic]]:
    """``_analyze`` as a job: yields ``Progress`` after each frame (of ``total`` when known)."""
    analyzer = _Analyzer(config or DiagnosticsConfig())
    count = 0
    for index, track_map, classes in frames:
        analyzer.step(index, np.asarray(track_map), classes)
        count += 1
        yield Progress(count, total)
    return analyzer.finish(count)


def stability_diagnostics(annotation, frame_classes: Mapping[int, Mapping[int, int]] | None = None,
                          config: DiagnosticsConfig | None = None) -> list[Diagnostic]:
    """Diagnostics of an ``Annotation`` (its track maps, frame by frame)."""
    return diagnose((annotation.track_map(i) for i in range(annotation.num_frames)), frame_classes, config)


def annotation_diagnosis(annotation, config: DiagnosticsConfig | None = None) -> Job[list[Diagnostic]]:
    """``stability_diagnostics`` of an annotation as a job (a long video takes seconds): ``Progress`` per frame."""
    frames = ((i, annotation.track_map(i), None) for i in range(annotation.num_frames))
    return (yield from _analysis(frames, config, annotation.num_frames))
