"""Write a model run's per-frame results into an annotation without losing the user's work.

Used for the first run, for re-running a frame range and for resuming a cancelled run alike:
- *kept* tracks are the locked ones and, unless the user lets the run replace them, the edited ones
  (provenance "edited"); their pixels are never touched;
- a new model track that overlaps a kept track (mask IoU >= threshold, Hungarian matching) is that
  track: where the frame already has masks its pixels are dropped and the kept mask stays; in a frame
  without any mask (not run yet) there is nothing to keep, and the model's object continues the track;
- a new model track that overlaps an unkept track of the same category keeps that track's id, so
  IDs stay continuous across the re-run range;
- a run resumed after a cancel (``resume_start``) starts one frame early, on the last finished frame:
  results before ``write_from`` only match ids (in that same frame, so motion does not matter) and are not
  written, so objects continuing across the boundary keep their ids;
- everything else becomes a new track.
The decision for a model track is made in the first frame it appears in, so finished frames can be
shown while later ones are still being computed. ``undo_edit`` returns the edit that puts back what the
run changed, so a GUI can make a whole run one undo step.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.core.annotation import Provenance
from app.core.edits import Edit, EditGroup, PixelPatch, TrackTablePatch
from app.core.mask_store import encode_slots

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


def resume_start(annotation, start: int) -> int:
    """Where a run asked to start at ``start`` should start computing: one frame early when ``start`` has no
    masks yet and the frame before has (a cancelled run's end), so that frame can carry the ids over
    (``ResultMerger(write_from=start)``); else ``start``."""
    if start > 0 and not annotation.frame_track_ids(start) and annotation.frame_track_ids(start - 1):
        return start - 1
    return start


class ResultMerger:
    """Feeds `FrameResult`s into an `Annotation`, keeping locked (and edited) tracks and matching ids by IoU."""

    def __init__(self, annotation, iou_threshold: float = 0.5, provenance="model", keep_edited: bool = True,
                 write_from: int = 0):
        self.annotation = annotation
        self.iou_threshold = iou_threshold
        self.provenance = provenance
        self.mapping: dict[int, int] = {}  # model track id -> annotation track id
        self.kept = {t.id for t in annotation.tracks.values()
                     if t.locked or (keep_edited and t.provenance == Provenance.EDITED)}
        self._claimed: set[int] = set()  # annotation ids already taken by a model id in this run
        self._tracks_before = dict(annotation.tracks)
        self._frames_before: dict[int, tuple[bytes | None, np.ndarray]] = {}  # frame -> (slot PNG, key row)
        self.write_from = write_from  # results of earlier frames only match ids

    @property
    def frames(self) -> list[int]:
        """Frames this run has written so far, ascending."""
        return sorted(self._frames_before)

    def add(self, result: FrameResult, offset: int = 0) -> None:
        """Write `result` (frame `result.index + offset` of the annotation; before `write_from`: match ids only)."""
        annotation = self.annotation
        index = result.index + offset
        old = annotation.track_map(index)
        self._map_new_ids(result, old)
        if index < self.write_from:
            return
        filled = bool(old.any())
        lookup = np.zeros(max(self.mapping, default=0) + 1, dtype=np.int32)
        for model_id, track_id in self.mapping.items():
            if not (filled and track_id in self.kept):  # a filled frame keeps its kept masks as they are
                lookup[model_id] = track_id
        new = lookup[result.track_map]
        merged = np.where(np.isin(old, list(self.kept)), old, new).astype(np.int32) if filled else new
        if index not in self._frames_before:
            self._frames_before[index] = (annotation.mask_store.blob(index), annotation.slot_row(index))
        annotation.set_frame(index, merged)

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

    def undo_edit(self) -> Edit | None:
        """The edit that restores every frame and track record this run changed (None if it changed nothing).

        Applying it returns the edit that redoes the run. Frames get back their exact slot maps and key
        rows, so the inverses of edits made before the run stay valid after it is undone.
        """
        if not self._frames_before:
            return None
        annotation = self.annotation
        empty_png = None
        patches: list[dict] = []
        for index, (blob, row) in sorted(self._frames_before.items()):
            if blob is None:
                empty_png = empty_png or encode_slots(np.zeros((annotation.height, annotation.width), np.uint8))
                blob = empty_png
            patches.append(PixelPatch(index, 0, 0, annotation.height, annotation.width,
                                      base64.b64encode(blob).decode("ascii"), row.tolist()).to_json())
        added = [t for t in annotation.tracks if t not in self._tracks_before]
        removed = [track.to_json() for t, track in self._tracks_before.items() if t not in annotation.tracks]
        tracks = TrackTablePatch(put=removed, remove=added).to_json()
        return EditGroup(patches + [tracks], "model run")

    def _map_new_ids(self, result: FrameResult, old: np.ndarray) -> None:
        """Decide, for model ids first seen in this frame, which annotation track they are."""
        tracks = self.annotation.tracks
        fresh = [s for s in result.segments if s.track_id not in self.mapping]
        if not fresh:
            return
        candidates = [int(t) for t in np.unique(old) if t != 0 and t in tracks and t not in self._claimed]
        iou = pair_iou(result.track_map, old, [s.track_id for s in fresh], candidates)
        for row, segment in enumerate(fresh):  # an unkept track only continues with the same category
            for col, track_id in enumerate(candidates):
                if track_id not in self.kept and tracks[track_id].category_id != segment.category_id:
                    iou[row, col] = 0.0
        matched: set[int] = set()
        for row, col in zip(*linear_sum_assignment(-iou)):
            if iou[row, col] >= self.iou_threshold:
                self.mapping[fresh[row].track_id] = candidates[col]
                self._claimed.add(candidates[col])
                matched.add(row)
        for row, segment in enumerate(fresh):
            if row not in matched:
                self._map_unmatched(segment)

    def _map_unmatched(self, segment) -> None:
        """A new track, except for stuff: VIPSeg allows one track per stuff category, so reuse it."""
        isthing = self.annotation.categories[segment.category_id].isthing
        track_id = None if isthing else self.annotation.stuff_track(segment.category_id)
        if track_id is None:
            track_id = self.annotation.add_track(segment.category_id, score=segment.score,
                                                 provenance=self.provenance).id
        self.mapping[segment.track_id] = track_id
        self._claimed.add(track_id)
