"""The annotation of one video: per-frame slot maps, slot -> segment key tables, and the track table.

Three levels keep track-level edits (merge, split, swap, relabel, delete) free of pixel work:

* ``MaskStore``: per frame a small integer **slot** map (uint8, uint16 past 255 slots), PNG-compressed.
* ``_seg[frame, slot]`` -> **segment key**, and ``_owner[key]`` -> **track id** (0 = void / deleted).
  Merging, relabelling or deleting a whole track only rewrites ``_owner`` entries (one per key, not
  one per frame); splitting or swapping at a frame first cuts the track's keys at that frame
  (rewriting the keys in ``_seg`` rows of the frames concerned, a vectorised table operation).
* ``_key_frames[key]``: a bool per frame, so a track's presence (timeline, ``track_frames``) is the
  OR of its keys' bit rows, cached per track and invalidated only for the tracks an edit touches.

Edits live in :mod:`app.core.edits`; each is a small JSON-serialisable object whose ``apply``
returns its inverse. This module enforces the VIPSeg rules every edit relies on: a track has one
category, a stuff category has at most one track per video, and 0 is void.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from app.core.errors import AnnotationError
from app.core.keyframes import FrameMarks, MarkChanges
from app.core.mask_store import Loader, MaskStore, encode_slots
from dvis_models.categories import CategoryTable

log = logging.getLogger(__name__)

#: Called after every change with (frames whose rendering changed, track ids whose row changed).
Listener = Callable[[frozenset, frozenset], None]


def frame_runs(frames: np.ndarray | Sequence[int]) -> list[tuple[int, int]]:
    """Runs of consecutive frames in sorted, distinct `frames` as (first, last) inclusive pairs."""
    frames = np.asarray(frames, dtype=np.int64)
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) > 1)
    starts = np.concatenate([[frames[0]], frames[breaks + 1]])
    ends = np.concatenate([frames[breaks], [frames[-1]]])
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


class Provenance(str, Enum):
    MODEL = "model"
    EDITED = "edited"
    IMPORTED = "imported"


@dataclass(frozen=True)
class Track:
    """One object over time. Immutable: edits put a changed copy into ``Annotation.tracks``.

    ``crowd``: a crowd region (VIPSeg / COCO ``iscrowd``), kept from an import and written on export; as
    ground truth the metrics neither match nor count it.
    """

    id: int
    category_id: int
    isthing: bool
    score: float = 1.0
    provenance: Provenance = Provenance.MODEL
    locked: bool = False
    crowd: bool = False

    def replace(self, **changes) -> Track:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "category_id": self.category_id,
            "isthing": self.isthing,
            "score": self.score,
            "provenance": self.provenance.value,
            "locked": self.locked,
            "crowd": self.crowd,
        }

    @classmethod
    def from_json(cls, entry: dict) -> Track:
        return cls(
            id=int(entry["id"]),
            category_id=int(entry["category_id"]),
            isthing=bool(entry["isthing"]),
            score=float(entry["score"]),
            provenance=Provenance(entry["provenance"]),
            locked=bool(entry["locked"]),
            crowd=bool(entry.get("crowd", False)),  # absent in projects saved before crowd tracks existed
        )


class Annotation:
    """Tracked panoptic masks of ``num_frames`` frames of ``height`` x ``width`` pixels."""

    def __init__(self, num_frames: int, height: int, width: int, categories: CategoryTable,
                 loader: Loader | None = None):
        if num_frames < 1 or height < 1 or width < 1:
            raise AnnotationError(f"An annotation needs at least one frame of at least 1x1 pixels, got {num_frames} x "
                                  f"{height}x{width}.")
        self.num_frames = num_frames
        self.height = height
        self.width = width
        self.categories = categories
        self.tracks: dict[int, Track] = {}
        self.marks = FrameMarks()  # keyframes and propagated frames per track (changed by edits only)
        self.listeners: list[Listener] = []
        self.mask_store = MaskStore(num_frames, height, width, loader=loader, slot_limit=lambda: self._seg.shape[1])
        self.tables_dirty = False  # set by any table change; the project clears it after saving
        self._next_track_id = 1
        self._seg = np.zeros((num_frames, 8), np.int32)
        self._area = np.zeros((num_frames, 8), np.int32)
        self._owner = np.zeros(16, np.int32)
        self._num_keys = 1  # key 0 is the void key
        self._key_frames: dict[int, np.ndarray] = {}
        self._presence: dict[int, np.ndarray] = {}
        self._ingest_ids: dict[tuple[int, int], int] = {}
        self._pending: tuple[set, set] | None = None  # changes collected while an edit runs

    # ------------------------------------------------------------------ ingest

    def ingest(self, index: int, track_map: np.ndarray, segments: Iterable,
               provenance: Provenance = Provenance.MODEL) -> None:
        """Store a model/imported frame whose ids are the producer's, applying the VIPSeg rules on the way.

        A producer id seen with a new category becomes a new track (a track keeps one category);
        every stuff segment of a category goes to that category's single track.
        """
        mapping: dict[int, int] = {}
        for segment in segments:
            category = self._category(segment.category_id)
            key = (int(segment.track_id), category.id)
            track_id = self._ingest_ids.get(key)
            if track_id is None or track_id not in self.tracks:
                stuff_track = None if category.isthing else self.stuff_track(category.id)
                if stuff_track is not None:
                    track_id = stuff_track
                else:
                    wanted = int(segment.track_id) if int(segment.track_id) not in self.tracks else None
                    track_id = self.add_track(category.id, float(segment.score), provenance, track_id=wanted).id
                self._ingest_ids[key] = track_id
            mapping[int(segment.track_id)] = track_id
        slots, ids, _ = _slots_of(np.asarray(track_map))
        missing = [i for i in ids if i not in mapping]
        if missing:
            raise AnnotationError(f"Frame {index}: ids {missing} appear in the mask but have no segment entry.")
        if any(mapping[i] != i for i in ids):
            track_map = np.array([0, *(mapping[i] for i in ids)], np.int32)[slots]
        self.set_frame(index, track_map)

    def set_frame(self, index: int, track_map: np.ndarray) -> None:
        """Replace frame ``index`` with ``track_map`` (int (H, W): 0 void, else an existing track id).

        Not an undoable edit (it is how model or imported output comes in): a model run's merger keeps what
        it replaced and gives one edit that puts it back (``ResultMerger.undo_edit``), so the history stays valid.
        """
        self._check_frame(index)
        track_map = np.asarray(track_map)
        if track_map.shape != (self.height, self.width):
            raise AnnotationError(f"Frame {index}: mask is {track_map.shape[:2]}, the video is "
                                  f"{self.height}x{self.width}.")
        if track_map.size and int(track_map.min()) < 0:
            raise AnnotationError(f"Frame {index}: negative ids in the mask; ids are 0 (void) or a track id.")
        slots, track_ids, areas = _slots_of(track_map)
        unknown = [t for t in track_ids if t not in self.tracks]
        if unknown:
            raise AnnotationError(f"Frame {index}: ids {unknown} are not tracks of this annotation; add_track() them "
                                  "first.")
        if len(track_ids) + 1 > 65535:
            raise AnnotationError(f"Frame {index}: {len(track_ids)} segments in one frame; at most 65534 are "
                                  "supported.")
        row = np.zeros(len(track_ids) + 1, np.int32)
        row[1:] = [self._key_for(t) for t in track_ids]
        old_tracks = self._frame_tracks_array(index)
        self.mask_store.put(index, slots)
        self._set_row(index, row, np.concatenate([[0], areas]).astype(np.int32))
        touched = set(track_ids) | set(old_tracks.tolist())
        self._changed(frozenset([index]), frozenset(touched))

    def add_track(self, category_id: int, score: float = 1.0, provenance: Provenance = Provenance.EDITED,
                  track_id: int | None = None, locked: bool = False) -> Track:
        """Create an empty track (not an undoable edit: use ``edits.AddTrack`` from the GUI)."""
        track = self.make_track(category_id, score, provenance, track_id, locked)
        self.put_tracks([track])
        return track

    def make_track(self, category_id: int, score: float = 1.0, provenance: Provenance = Provenance.EDITED,
                   track_id: int | None = None, locked: bool = False) -> Track:
        """A new track record obeying the rules (not yet in the table); reserves its id."""
        category = self._category(category_id)
        if not category.isthing:
            existing = self.stuff_track(category.id)
            if existing is not None:
                raise AnnotationError(
                    f"'{category.name}' is a stuff category and already has track {existing}; VIPSeg allows one track "
                    f"per stuff category per video, so paint or merge into track {existing} instead."
                )
        if track_id is None:
            track_id = self._next_track_id
        elif track_id < 1:
            raise AnnotationError(f"Track ids start at 1 (0 is void); got {track_id}.")
        elif track_id in self.tracks:
            raise AnnotationError(f"Track id {track_id} is already used by another track.")
        self._next_track_id = max(self._next_track_id, track_id + 1)
        return Track(track_id, category.id, category.isthing, float(score), Provenance(provenance), locked)

    # ------------------------------------------------------------------ queries

    @property
    def damaged_frames(self) -> set[int]:
        """Frames whose stored mask is lost or unreadable: shown void and left out of exports until written again."""
        return self.mask_store.damaged

    def track_map(self, index: int) -> np.ndarray:
        """int32 (H, W): the track id of every pixel, 0 for void."""
        self._check_frame(index)
        lut = self._owner[self._seg[index]]
        return np.take(lut, self.mask_store.get(index))  # faster than lut[slots] for big frames

    def frame_track_ids(self, index: int) -> set[int]:
        self._check_frame(index)
        return set(self._frame_tracks_array(index).tolist())

    def track_frames(self, track_id: int) -> list[int]:
        """Frames where the track has pixels, ascending (table lookup, no pixel work)."""
        return self.presence(track_id).tolist()

    def presence(self, track_id: int) -> np.ndarray:
        """Like :meth:`track_frames` as an int array (cached; cheap for timeline redraws)."""
        self._track(track_id)
        cached = self._presence.get(track_id)
        if cached is None:
            bits = np.zeros(self.num_frames, bool)
            for key in self._keys_of(track_id):
                key_bits = self._key_frames.get(int(key))
                if key_bits is not None:
                    bits |= key_bits
            cached = np.flatnonzero(bits)
            cached.flags.writeable = False
            self._presence[track_id] = cached
        return cached

    def track_spans(self, track_id: int) -> list[tuple[int, int]]:
        """Runs of consecutive frames as (first, last) inclusive pairs."""
        return frame_runs(self.presence(track_id))

    def area(self, index: int, track_id: int) -> int:
        self._check_frame(index)
        return int(self._area[index][self._owner[self._seg[index]] == track_id].sum())

    def track_at(self, index: int, x: int, y: int) -> int | None:
        self._check_frame(index)
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        slot = int(self.mask_store.get(index)[y, x])
        track_id = int(self._owner[self._seg[index, slot]])
        return track_id or None

    def stuff_track(self, category_id: int) -> int | None:
        """The track holding stuff category ``category_id``, if any."""
        for track in self.tracks.values():
            if track.category_id == category_id and not track.isthing:
                return track.id
        return None

    @property
    def next_track_id(self) -> int:
        return self._next_track_id

    # ------------------------------------------------------------------ edits

    def apply(self, edit) -> object:
        """Apply an ``app.core.edits`` operation; returns its inverse (apply that to undo).

        Listeners hear about the whole edit once, after it finished.
        """
        if self._pending is not None:  # an edit made of edits
            return edit.apply(self)
        self._pending = (set(), set())
        try:
            return edit.apply(self)
        finally:
            frames, tracks = self._pending
            self._pending = None
            if frames or tracks:
                self._changed(frozenset(frames), frozenset(tracks))

    # The primitives below are what edits are made of. They keep every invariant but check no rule:
    # the edits check rules before calling them, so a failing edit changes nothing.

    def keys_of(self, track_id: int) -> np.ndarray:
        return self._keys_of(track_id)

    def cut_keys(self, track_id: int, start: int, stop: int) -> tuple[list[int], list[list[int]]]:
        """Keys of ``track_id`` covering exactly its frames in [start, stop), and the cuts made for that.

        A key present both inside and outside the range is cut in two: its rows inside the range get
        a fresh key with the same owner (a table rewrite on those frames only, never pixels). Each cut
        is ``[key, new_key, start, stop]``; undo re-joins them (:meth:`join_key`) so that key lists stored
        in older inverses stay valid.
        """
        inside, cuts = [], []
        for key in self._keys_of(track_id).tolist():
            bits = self._key_frames.get(key)
            if bits is None or not bits[start:stop].any():
                continue
            if bits[:start].any() or bits[stop:].any():
                cut = [key, self._new_key(track_id), start, stop]
                self.split_key(*cut)
                cuts.append(cut)
                key = cut[1]
            inside.append(key)
        return inside, cuts

    def split_key(self, key: int, new_key: int, start: int, stop: int) -> None:
        """Move ``key``'s rows in frames [start, stop) to ``new_key`` (same owner; created if needed)."""
        if new_key >= self._num_keys:
            while new_key >= len(self._owner):
                self._owner = np.concatenate([self._owner, np.zeros(len(self._owner), np.int32)])
            self._num_keys = new_key + 1
        self._owner[new_key] = self._owner[key]
        bits = self._key_frames[key]
        new_bits = np.zeros(self.num_frames, bool)
        new_bits[start:stop] = bits[start:stop]
        bits[start:stop] = False
        self._key_frames[new_key] = new_bits
        self._rekey(key, new_key, np.flatnonzero(new_bits))

    def join_key(self, key: int, new_key: int) -> None:
        """Undo :meth:`split_key`: ``new_key``'s rows go back to ``key``; ``new_key`` is retired."""
        new_bits = self._key_frames.pop(new_key, None)
        if new_bits is not None:
            self._rekey(new_key, key, np.flatnonzero(new_bits))
            self._key_frames.setdefault(key, np.zeros(self.num_frames, bool))[:] |= new_bits
        self._owner[new_key] = 0

    def _rekey(self, key: int, new_key: int, rows: np.ndarray) -> None:
        block = self._seg[rows]
        block[block == key] = new_key
        self._seg[rows] = block
        self.tables_dirty = True

    def owners_of(self, keys: Iterable[int]) -> list[int]:
        """Track ids owning ``keys``; AnnotationError for keys this annotation does not have."""
        keys = np.asarray(list(keys), np.int64)
        if len(keys) and (int(keys.max()) >= self._num_keys or int(keys.min()) < 0):
            raise AnnotationError("This edit refers to segment keys the annotation does not have; it was made for "
                                  "another state.")
        return self._owner[keys].tolist()

    def set_owners(self, keys: Iterable[int], owners: Iterable[int]) -> None:
        keys = np.asarray(list(keys), np.int64)
        owners = np.asarray(list(owners), np.int32)
        self.owners_of(keys)
        if len(keys) == 0:
            return
        touched = set(self._owner[keys].tolist()) | set(owners.tolist())
        self._owner[keys] = owners
        frames = np.zeros(self.num_frames, bool)
        for key in keys.tolist():
            bits = self._key_frames.get(key)
            if bits is not None:
                frames |= bits
        touched.discard(0)
        for track_id in touched:
            self._presence.pop(track_id, None)
        self.tables_dirty = True
        self._changed(frozenset(np.flatnonzero(frames).tolist()), frozenset(touched))

    def put_tracks(self, tracks: Iterable[Track] = (), remove: Iterable[int] = ()) -> None:
        """Insert/replace track records and remove others (records only; keys are moved with ``set_owners``)."""
        changed = set()
        for track_id in remove:
            self.tracks.pop(track_id, None)
            self._presence.pop(track_id, None)
            changed.add(track_id)
        for track in tracks:
            self.tracks[track.id] = track
            self._next_track_id = max(self._next_track_id, track.id + 1)
            changed.add(track.id)
        self.tables_dirty = True
        self._changed(frozenset(), frozenset(changed))

    def set_marks(self, changes: MarkChanges) -> MarkChanges:
        """Mark ``(track id, frame)`` pairs as keyframes / propagated (None unmarks); returns the marks before."""
        if not changes:
            return {}
        before = self.marks.set(changes)
        self.tables_dirty = True
        self._changed(frozenset(), frozenset(track for track, _ in changes))
        return before

    def slot_row(self, index: int) -> np.ndarray:
        """Segment keys of the slots of frame ``index`` (a copy)."""
        return self._seg[index].copy()

    def slot_for(self, index: int, track_id: int) -> tuple[int, np.ndarray]:
        """A slot for painting ``track_id`` on frame ``index`` and the key row that gives it that track.

        Reuses the track's slot in that frame, else a free slot (no pixels) or a new column. The row is
        returned, not stored: the paint patch stores it with the pixels so undo restores both.
        """
        row = self._seg[index].copy()
        owners = self._owner[row]
        used = np.flatnonzero((owners == track_id) & (self._area[index] > 0))
        if len(used):
            return int(used[0]), row
        free = np.flatnonzero(self._area[index][1:] == 0)
        slot = int(free[0]) + 1 if len(free) else len(row)
        if slot >= 65535:
            raise AnnotationError(f"Frame {index} has 65534 segments; merge some before painting a new one.")
        if slot >= len(row):
            row = np.concatenate([row, np.zeros(slot + 1 - len(row), np.int32)])
        row[slot] = self._key_for(track_id)
        return slot, row

    def write_pixels(self, index: int, y0: int, x0: int, pixels: np.ndarray,
                     row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write a slot patch at (y0, x0) and the frame's key row; returns the previous (pixels, row)."""
        slots = self.mask_store.get(index)
        y1, x1 = y0 + pixels.shape[0], x0 + pixels.shape[1]
        old_pixels = slots[y0:y1, x0:x1].copy()
        old_row = self._seg[index].copy()
        old_tracks = set(self._frame_tracks_array(index).tolist())
        width = max(len(row), self._seg.shape[1], int(pixels.max(initial=0)) + 1)
        new_slots = slots.astype(np.uint16 if width > 256 else slots.dtype, copy=True)
        new_slots[y0:y1, x0:x1] = pixels
        areas = np.pad(self._area[index].astype(np.int64), (0, width - self._seg.shape[1]))
        areas -= np.bincount(old_pixels.ravel(), minlength=width)
        areas += np.bincount(pixels.ravel(), minlength=width)
        row = np.pad(np.asarray(row, np.int32), (0, width - len(row)))
        self.mask_store.put(index, new_slots)
        self._set_row(index, row, areas.astype(np.int32))
        touched = (old_tracks | set(self._frame_tracks_array(index).tolist()))
        self._changed(frozenset([index]), frozenset(touched))
        return old_pixels, old_row

    def frame_record(self, index: int) -> tuple[bytes, np.ndarray, np.ndarray]:
        """Frame ``index`` as it is stored: its encoded slot map, key row and slot areas (copies), for
        :meth:`restore_frame`. A frame never written gives the encoding of an all-void map."""
        self._check_frame(index)
        blob = self.mask_store.blob(index)
        if blob is None:
            blob = encode_slots(np.zeros((self.height, self.width), np.uint8))
        return blob, self._seg[index].copy(), self._area[index].copy()

    def restore_frame(self, index: int, blob: bytes, row: np.ndarray, areas: np.ndarray) -> None:
        """Put back a :meth:`frame_record` (undo): no pixel is decoded or encoded."""
        self._check_frame(index)
        row, areas = np.asarray(row, np.int32), np.asarray(areas, np.int32)
        if row.shape != areas.shape or row.ndim != 1:
            raise AnnotationError(f"Frame {index}: a restored frame needs one area per slot of its key row.")
        self.owners_of(row)
        old_tracks = set(self._frame_tracks_array(index).tolist())
        self.mask_store.put_blob(index, blob)
        self._set_row(index, row, areas)
        self._changed(frozenset([index]), frozenset(old_tracks | set(self._frame_tracks_array(index).tolist())))

    # ------------------------------------------------------------------ persistence (used by project.py)

    def table_arrays(self) -> dict[str, np.ndarray]:
        """The tables as plain arrays: ``seg`` (F, K) keys, ``area`` (F, K) pixels, ``owner`` (keys,) tracks."""
        return {"seg": self._seg, "area": self._area, "owner": self._owner[: self._num_keys]}

    def tracks_json(self) -> dict:
        tracks = [t.to_json() for t in sorted(self.tracks.values(), key=lambda t: t.id)]
        return {"next_track_id": self._next_track_id, "tracks": tracks, "marks": self.marks.to_json()}

    @classmethod
    def restore(cls, num_frames: int, height: int, width: int, categories: CategoryTable, tracks: dict,
                arrays: dict[str, np.ndarray], loader: Loader | None) -> Annotation:
        """Rebuild from :meth:`tracks_json` + :meth:`table_arrays` output; raises ValueError on inconsistent data."""
        annotation = cls(num_frames, height, width, categories, loader=loader)
        seg, area, owner = arrays["seg"], arrays["area"], arrays["owner"]
        if seg.shape != area.shape or seg.ndim != 2 or seg.shape[0] != num_frames or owner.ndim != 1:
            raise ValueError(f"table shapes do not match: seg {seg.shape}, area {area.shape}, owner {owner.shape}, "
                             f"{num_frames} frames")
        if len(owner) == 0 or (seg.size and (int(seg.min()) < 0 or int(seg.max()) >= len(owner))):
            raise ValueError("segment keys in the slot table point outside the key table")
        for entry in tracks["tracks"]:
            track = Track.from_json(entry)
            annotation.tracks[track.id] = track
        live_keys = np.unique(seg[area > 0])
        stray = set(np.unique(owner[live_keys]).tolist()) - set(annotation.tracks) - {0}
        if stray:
            raise ValueError(f"pixels belong to tracks {sorted(stray)} that the track table does not list")
        # Keys without pixels may name removed tracks (left by undone paints): undoing further re-uses them.
        annotation.marks = FrameMarks.from_json(tracks.get("marks", {}))  # absent in projects saved before marks
        orphans = annotation.marks.drop_orphans(annotation.tracks, num_frames)
        if orphans:  # the tables differ from the files now: the next save writes them without these marks
            log.warning("dropped %d frame mark(s) of tracks that no longer exist or of frames outside the video "
                        "(track, frame): %s", len(orphans), orphans[:10])
            annotation.tables_dirty = True
        annotation._next_track_id = max(int(tracks["next_track_id"]), max(annotation.tracks, default=0) + 1)
        annotation._seg = seg.astype(np.int32, copy=True)
        annotation._area = area.astype(np.int32, copy=True)
        annotation._owner = owner.astype(np.int32, copy=True)
        annotation._num_keys = len(owner)
        rows, cols = np.nonzero((annotation._area > 0) & (annotation._seg > 0))
        keys = annotation._seg[rows, cols]
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
        unique, starts = np.unique(keys, return_index=True)
        for key, key_rows in zip(unique.tolist(), np.split(rows, starts[1:])):
            bits = annotation._key_frames[key] = np.zeros(num_frames, bool)
            bits[key_rows] = True
        return annotation

    # ------------------------------------------------------------------ internals

    def _category(self, category_id: int):
        if category_id not in self.categories:
            raise AnnotationError(f"Category id {category_id} is not in this annotation's category table.")
        return self.categories[category_id]

    def _check_frame(self, index: int) -> None:
        if not 0 <= index < self.num_frames:
            raise AnnotationError(f"Frame {index} is outside this video (frames 0..{self.num_frames - 1}).")

    def _track(self, track_id: int) -> Track:
        track = self.tracks.get(track_id)
        if track is None:
            raise AnnotationError(f"There is no track {track_id} in this annotation.")
        return track

    def _keys_of(self, track_id: int) -> np.ndarray:
        if not track_id:
            return np.zeros(0, np.int32)
        return np.flatnonzero(self._owner[: self._num_keys] == track_id).astype(np.int32)

    def _new_key(self, track_id: int) -> int:
        if self._num_keys == len(self._owner):
            self._owner = np.concatenate([self._owner, np.zeros(len(self._owner), np.int32)])
        key = self._num_keys
        self._owner[key] = track_id
        self._num_keys += 1
        return key

    def _key_for(self, track_id: int) -> int:
        """The key new pixels of ``track_id`` go to: its newest key, or a new one."""
        keys = self._keys_of(track_id)
        return int(keys[-1]) if len(keys) else self._new_key(track_id)

    def _frame_tracks_array(self, index: int) -> np.ndarray:
        owners = self._owner[self._seg[index]][self._area[index] > 0]
        return np.unique(owners[owners > 0])

    def _set_row(self, index: int, row: np.ndarray, areas: np.ndarray) -> None:
        """Store frame ``index``'s key row and slot areas; keeps key presence and the free-slot invariant."""
        areas = np.asarray(areas, np.int32).copy()
        areas[0] = 0  # void pixels are not counted
        row = np.where(areas > 0, row, 0).astype(np.int32)
        width = len(row)
        if width > self._seg.shape[1]:
            grow = max(width, 2 * self._seg.shape[1]) - self._seg.shape[1]
            self._seg = np.pad(self._seg, ((0, 0), (0, grow)))
            self._area = np.pad(self._area, ((0, 0), (0, grow)))
        old_keys = set(self._seg[index][self._area[index] > 0].tolist())
        self._seg[index] = 0
        self._area[index] = 0
        self._seg[index, :width] = row
        self._area[index, :width] = areas
        new_keys = set(row[areas > 0].tolist())
        touched_tracks = set()
        for key in (old_keys - new_keys) - {0}:
            self._key_frames[key][index] = False
            touched_tracks.add(int(self._owner[key]))
        for key in (new_keys - old_keys) - {0}:
            bits = self._key_frames.get(key)
            if bits is None:
                bits = self._key_frames[key] = np.zeros(self.num_frames, bool)
            bits[index] = True
            touched_tracks.add(int(self._owner[key]))
        for track_id in touched_tracks:
            self._presence.pop(track_id, None)
        self.tables_dirty = True

    def _changed(self, frames: frozenset, tracks: frozenset) -> None:
        if self._pending is not None:
            self._pending[0].update(frames)
            self._pending[1].update(tracks)
            return
        for listener in list(self.listeners):
            listener(frames, tracks)


def _slots_of(track_map: np.ndarray) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Slot map (slot i = i-th non-zero id; uint8 unless a frame has 255+ segments), the ids, their pixel counts."""
    flat = track_map.ravel()
    top = int(flat.max(initial=0))
    if top < (1 << 22):  # small ids (the usual case): a lookup table is several times faster than np.unique
        counts = np.bincount(flat, minlength=top + 1)
        ids = np.flatnonzero(counts[1:]) + 1
        lut = np.zeros(top + 1, np.uint8 if len(ids) < 256 else np.uint16)
        lut[ids] = np.arange(1, len(ids) + 1)
        return lut[track_map], [int(i) for i in ids], counts[ids].astype(np.int64)
    unique, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    offset = 0 if unique[0] == 0 else 1  # id 0 (void) must be slot 0
    dtype = np.uint8 if len(unique) + offset <= 256 else np.uint16
    slots = (inverse + offset).astype(dtype).reshape(track_map.shape)
    return slots, [int(i) for i in unique[unique > 0]], counts[unique > 0].astype(np.int64)


__all__ = ["Annotation", "AnnotationError", "Listener", "Provenance", "Track"]
