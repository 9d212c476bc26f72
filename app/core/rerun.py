"""Write a model run's per-frame results into an annotation without losing the user's work.

Used for the first run and for re-running a frame range alike:
- pixels of *locked* (user-corrected) tracks are never touched;
- a new model track that overlaps a locked track (mask IoU >= threshold, Hungarian matching) is that
  track: its pixels are dropped, the locked mask stays;
- a new model track that overlaps an unlocked track of the same category keeps that track's id, so
  IDs stay continuous across the re-run range;
- everything else becomes a new track.
The decision for a model track is made in the first frame it appears in, so finished frames can be
shown while later ones are still being computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

if TYPE_CHECKING:  # app/core imports dvis_models only where inference runs; results arrive duck-typed
    from dvis_models.types import FrameResult


def pair_iou(new_map: np.ndarray, old_map: np.ndarray, new_ids: list[int], old_ids: list[int]) -> np.ndarray:
    """IoU matrix (len(new_ids), len(old_ids)) between the id masks of two (H, W) maps.

    An id need not occur in its map (e.g. a small track lost when the maps were subsampled): its IoU is 0.
    """
    iou = np.zeros((len(new_ids), len(old_ids)))
    if not new_ids or not old_ids:
        return iou
    rows, cols = _row_of(new_map, new_ids), _row_of(old_map, old_ids)
    joint = np.bincount((rows * (len(old_ids) + 1) + cols).ravel(), minlength=(len(new_ids) + 1) * (len(old_ids) + 1))
    joint = joint.reshape(len(new_ids) + 1, len(old_ids) + 1)
    new_area = joint.sum(axis=1)[1:, None]
    old_area = joint.sum(axis=0)[None, 1:]
    inter = joint[1:, 1:]
    return inter / np.maximum(new_area + old_area - inter, 1)


def _row_of(id_map: np.ndarray, ids: list[int]) -> np.ndarray:
    """Per pixel: 1 + the position of its id in ``ids``, 0 for ids not asked for."""
    index = np.zeros(max(int(id_map.max(initial=0)), max(ids)) + 1, dtype=np.int64)
    index[ids] = np.arange(1, len(ids) + 1)
    return index[id_map]


class ResultMerger:
    """Feeds `FrameResult`s into an `Annotation`, keeping locked tracks and matching ids by IoU."""

    def __init__(self, annotation, iou_threshold: float = 0.5, provenance="model"):
        self.annotation = annotation
        self.iou_threshold = iou_threshold
        self.provenance = provenance
        self.mapping: dict[int, int] = {}  # model track id -> annotation track id
        self._dropped: set[int] = set()  # model ids matched to a locked track: pixels not written
        self._claimed: set[int] = set()  # annotation ids already taken by a model id in this run

    def add(self, result: FrameResult, offset: int = 0) -> None:
        """Write `result` (frame `result.index + offset` of the annotation)."""
        index = result.index + offset
        old = self.annotation.track_map(index)
        tracks = self.annotation.tracks
        locked = [t for t in tracks if tracks[t].locked]
        self._map_new_ids(result, old)

        lookup = np.zeros(max(self.mapping, default=0) + 1, dtype=np.int32)
        for model_id, track_id in self.mapping.items():
            if model_id not in self._dropped:
                lookup[model_id] = track_id
        new = lookup[result.track_map]
        keep = np.isin(old, locked) if locked else np.zeros(old.shape, dtype=bool)
        merged = np.where(keep, old, new).astype(np.int32)
        self.annotation.set_frame(index, merged)

    def finish(self) -> list[int]:
        """Drop model tracks the run left without any frame (replaced in the re-run range); returns their ids.

        Locked and user-made tracks stay even when empty.
        """
        annotation = self.annotation
        empty = [t.id for t in annotation.tracks.values()
                 if not t.locked and t.provenance == "model" and len(annotation.presence(t.id)) == 0]
        if empty:
            annotation.put_tracks(remove=empty)
        return empty

    def _map_new_ids(self, result: FrameResult, old: np.ndarray) -> None:
        """Decide, for model ids first seen in this frame, which annotation track they are."""
        tracks = self.annotation.tracks
        fresh = [s for s in result.segments if s.track_id not in self.mapping]
        if not fresh:
            return
        candidates = [int(t) for t in np.unique(old) if t != 0 and t in tracks and t not in self._claimed]
        iou = pair_iou(result.track_map, old, [s.track_id for s in fresh], candidates)
        for row, segment in enumerate(fresh):  # an unlocked track only continues with the same category
            for col, track_id in enumerate(candidates):
                track = tracks[track_id]
                if not track.locked and track.category_id != segment.category_id:
                    iou[row, col] = 0.0
        matched: set[int] = set()
        for row, col in zip(*linear_sum_assignment(-iou)):
            if iou[row, col] >= self.iou_threshold:
                segment, track_id = fresh[row], candidates[col]
                self.mapping[segment.track_id] = track_id
                self._claimed.add(track_id)
                if tracks[track_id].locked:
                    self._dropped.add(segment.track_id)
                matched.add(row)
        for row, segment in enumerate(fresh):
            if row not in matched:
                self._map_unmatched(segment)

    def _map_unmatched(self, segment) -> None:
        """A new track, except for stuff: VIPSeg allows one track per stuff category, so reuse it."""
        tracks = self.annotation.tracks
        isthing = self.annotation.categories[segment.category_id].isthing
        track_id = None if isthing else self.annotation.stuff_track(segment.category_id)
        if track_id is None:
            track_id = self.annotation.add_track(segment.category_id, score=segment.score, provenance=self.provenance).id
        elif tracks[track_id].locked:
            self._dropped.add(segment.track_id)
        self.mapping[segment.track_id] = track_id
        self._claimed.add(track_id)
