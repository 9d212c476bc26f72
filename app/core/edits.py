"""Reversible edits of an :class:`~app.core.annotation.Annotation`.

Every edit is a small dataclass of JSON values: ``annotation.apply(edit)`` (or ``edit.apply``)
changes the annotation and returns the inverse edit, which restores tables and pixels exactly.
``app.core.history.EditHistory`` keeps the pairs (edit, inverse) for undo and redo; the project logs
them as its history (``to_json`` / ``Edit.from_json``).

Track-level edits (merge, split, swap, delete, relabel) become a :class:`TrackTablePatch` after
their rules are checked: they move segment keys between tracks and never touch pixels; the track's
keyframe / propagated marks move with its frames (``app.core.keyframes``), so undo restores both. Painting
becomes a :class:`PixelPatch`: the changed pixels' bounding box plus that frame's key row.

Edits that create a track (split, relabel from a frame on, add) choose its id on first apply and
keep it (``new_track_id`` / ``track_id``), so redo after undo recreates the same id and later edits
in the history that refer to it stay valid.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np

from app.core.annotation import Annotation, Provenance, Track
from app.core.errors import AnnotationError
from app.core.keyframes import KEY, KINDS, MarkChanges
from app.core.mask_store import decode_slots, encode_slots

__all__ = [
    "Edit", "TrackTablePatch", "PixelPatch", "FramePatch", "EditGroup", "AddTrack", "SetTrackLocked", "MergeTracks",
    "SplitTrack", "SwapTracks", "DeleteTrack", "RelabelTrack", "Paint", "PaintMask", "SetMask", "MarkFrames",
    "with_keyframe", "PAINT_TOOLS", "shared_frames",
]

PAINT_TOOLS = ("brush", "eraser", "fill", "polygon")

_REGISTRY: dict[str, type[Edit]] = {}


class Edit:
    """Base of all edits: ``apply`` returns the inverse; ``to_json``/``from_json`` round-trip."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:  # shared bases (no kind of their own) are not edits one can record
            _REGISTRY[cls.kind] = cls

    def apply(self, annotation: Annotation) -> Edit:
        raise NotImplementedError

    def describe(self) -> str:
        """A short label for undo menus and history views."""
        return self.kind.replace("_", " ")

    def to_json(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @staticmethod
    def from_json(data: dict) -> Edit:
        try:
            cls = _REGISTRY[data["kind"]]
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (KeyError, TypeError) as error:
            raise AnnotationError(f"Malformed edit record {str(data)[:80]!r} ({error}).") from None


def _edited(track: Track) -> dict:
    return track.replace(provenance=Provenance.EDITED).to_json()


def _editable(annotation: Annotation, track_id: int) -> Track:
    track = annotation.tracks.get(track_id)
    if track is None:
        raise AnnotationError(f"There is no track {track_id} in this annotation.")
    if track.locked:
        raise AnnotationError(f"Track {track_id} is locked; unlock it before editing it.")
    return track


def _range(annotation: Annotation, start: int, stop: int | None) -> tuple[int, int]:
    stop = annotation.num_frames if stop is None else stop
    if not 0 <= start < stop <= annotation.num_frames:
        raise AnnotationError(f"Frame range {start}..{stop - 1} is not inside the video (frames "
                              f"0..{annotation.num_frames - 1}).")
    return start, stop


def _stuff_target(annotation: Annotation, category_id: int, except_track: int) -> Track | None:
    """The existing track a relabel to stuff ``category_id`` must merge into (VIPSeg: one per category)."""
    if category_id not in annotation.categories:
        raise AnnotationError(f"Category id {category_id} is not in this annotation's category table.")
    if annotation.categories[category_id].isthing:
        return None
    target = annotation.stuff_track(category_id)
    if target is None or target == except_track:
        return None
    return _editable(annotation, target)


# ---------------------------------------------------------------------------------- patches


@dataclass
class TrackTablePatch(Edit):
    """What every track-level edit reduces to: cut keys at frames, set key owners, put/remove track
    records, re-join keys, set frame marks. Applying it returns the patch that does the opposite."""

    kind: ClassVar[str] = "track_table_patch"
    owners: list[list[int]] = field(default_factory=list)  # [[key, track id or 0], ...]
    put: list[dict] = field(default_factory=list)  # track records (Track.to_json) to insert or replace
    remove: list[int] = field(default_factory=list)  # track ids to drop
    cuts: list[list[int]] = field(default_factory=list)  # [[key, new_key, start, stop]], applied first
    joins: list[list[int]] = field(default_factory=list)  # the same form, re-joined after the owners (undo of cuts)
    marks: list[list] = field(default_factory=list)  # [[track id, frame, "key" | "propagated" | ""]], set last

    def apply(self, annotation: Annotation) -> TrackTablePatch:
        for key, new_key, start, stop in self.cuts:
            annotation.split_key(key, new_key, start, stop)
        keys = [int(k) for k, _ in self.owners]
        before_owners = annotation.owners_of(keys)
        put = [Track.from_json(entry) for entry in self.put]
        before_put = [annotation.tracks[i].to_json() for i in dict.fromkeys([*self.remove, *(t.id for t in put)])
                      if i in annotation.tracks]
        before_remove = [t.id for t in put if t.id not in annotation.tracks]
        annotation.set_owners(keys, [int(o) for _, o in self.owners])
        annotation.put_tracks(put, self.remove)
        for key, new_key, _, _ in reversed(self.joins):
            annotation.join_key(key, new_key)
        before_marks = annotation.set_marks({(int(t), int(f)): k or None for t, f, k in self.marks})
        return TrackTablePatch([[k, o] for k, o in zip(keys, before_owners)], before_put, before_remove,
                               cuts=self.joins, joins=self.cuts, marks=_mark_rows(before_marks))


def _mark_rows(changes: MarkChanges) -> list[list]:
    """Mark changes as JSON rows of :attr:`TrackTablePatch.marks`."""
    return [[track, frame, kind or ""] for (track, frame), kind in sorted(changes.items())]


def _apply_cut_patch(annotation: Annotation, cuts: list[list[int]], patch: TrackTablePatch) -> TrackTablePatch:
    """Apply ``patch`` after the edit cut keys itself (``cuts``): the inverse also re-joins those keys."""
    inverse = annotation.apply(patch)
    inverse.joins = cuts
    return inverse


@dataclass
class PixelPatch(Edit):
    """Pixels of one frame's bounding box (PNG, base64) plus the frame's key row and track records."""

    kind: ClassVar[str] = "pixel_patch"
    frame: int = 0
    y0: int = 0
    x0: int = 0
    height: int = 0
    width: int = 0
    pixels: str = ""  # base64 PNG of the slot values inside the box
    row: list[int] = field(default_factory=list)  # slot -> segment key for the whole frame
    tracks: list[dict] = field(default_factory=list)  # track records to put (provenance changes)

    @classmethod
    def of(cls, frame: int, y0: int, x0: int, pixels: np.ndarray, row, tracks: list[dict]) -> PixelPatch:
        data = base64.b64encode(encode_slots(pixels.astype(np.uint16))).decode("ascii")
        return cls(frame, y0, x0, pixels.shape[0], pixels.shape[1], data, [int(k) for k in row], tracks)

    def decoded(self) -> np.ndarray:
        return decode_slots(base64.b64decode(self.pixels), self.height, self.width, source="paint patch")

    def apply(self, annotation: Annotation) -> PixelPatch:
        before_tracks = [annotation.tracks[int(t["id"])].to_json() for t in self.tracks
                         if int(t["id"]) in annotation.tracks]
        old_pixels, old_row = annotation.write_pixels(self.frame, self.y0, self.x0, self.decoded(),
                                                      np.asarray(self.row, np.int32))
        annotation.put_tracks([Track.from_json(t) for t in self.tracks])
        return PixelPatch.of(self.frame, self.y0, self.x0, old_pixels, old_row, before_tracks)


@dataclass
class FramePatch(Edit):
    """A whole frame as stored (its encoded slot map, base64), its key row and slot areas, plus track records.

    Applying it swaps stored bytes and table rows without decoding or encoding pixels: it is the inverse of
    a mask set on a frame, so undoing (and redoing) a propagation over hundreds of frames stays quick.
    """

    kind: ClassVar[str] = "frame_patch"
    frame: int = 0
    pixels: str = ""  # base64 of the frame's encoded slot map (PNG)
    row: list[int] = field(default_factory=list)  # slot -> segment key
    areas: list[int] = field(default_factory=list)  # slot -> pixels
    tracks: list[dict] = field(default_factory=list)  # track records to put (provenance changes)

    @classmethod
    def of(cls, annotation: Annotation, frame: int, track_ids: list[int]) -> FramePatch:
        """Frame ``frame`` and the records of ``track_ids`` as they are now."""
        blob, row, areas = annotation.frame_record(frame)
        tracks = [annotation.tracks[t].to_json() for t in track_ids if t in annotation.tracks]
        return cls(frame, base64.b64encode(blob).decode("ascii"), row.tolist(), areas.tolist(), tracks)

    def apply(self, annotation: Annotation) -> FramePatch:
        before = FramePatch.of(annotation, self.frame, [int(t["id"]) for t in self.tracks])
        blob = base64.b64decode(self.pixels)
        annotation.restore_frame(self.frame, blob, np.asarray(self.row), np.asarray(self.areas))
        annotation.put_tracks([Track.from_json(t) for t in self.tracks])
        return before


@dataclass
class EditGroup(Edit):
    """Several edits as one undo step (e.g. add a track, then paint it)."""

    kind: ClassVar[str] = "group"
    edits: list[dict] = field(default_factory=list)
    label: str = ""

    def apply(self, annotation: Annotation) -> EditGroup:
        inverses: list[Edit] = []
        try:
            for position, entry in enumerate(self.edits):
                edit = Edit.from_json(entry)
                inverses.append(annotation.apply(edit))
                self.edits[position] = edit.to_json()  # keeps ids chosen on first apply for redo
        except AnnotationError:
            for inverse in reversed(inverses):  # leave the annotation as it was
                annotation.apply(inverse)
            raise
        return EditGroup([e.to_json() for e in reversed(inverses)], self.label)

    def describe(self) -> str:
        return self.label or "edits"


# ---------------------------------------------------------------------------------- track edits


@dataclass
class AddTrack(Edit):
    kind: ClassVar[str] = "add_track"
    category_id: int = 0
    score: float = 1.0
    provenance: str = Provenance.EDITED.value
    locked: bool = False
    track_id: int | None = None

    def apply(self, annotation: Annotation) -> Edit:
        track = annotation.make_track(self.category_id, self.score, Provenance(self.provenance), self.track_id,
                                      self.locked)
        self.track_id = track.id
        return annotation.apply(TrackTablePatch(put=[track.to_json()]))


@dataclass
class SetTrackLocked(Edit):
    """Lock a track (edits and brushes leave it alone) or unlock it."""

    kind: ClassVar[str] = "set_track_locked"
    track_id: int = 0
    locked: bool = True

    def apply(self, annotation: Annotation) -> Edit:
        track = annotation.tracks.get(self.track_id)
        if track is None:
            raise AnnotationError(f"There is no track {self.track_id} in this annotation.")
        return annotation.apply(TrackTablePatch(put=[track.replace(locked=self.locked).to_json()]))


@dataclass
class MergeTracks(Edit):
    """``source`` becomes part of ``target`` in every frame (target keeps its id and category)."""

    kind: ClassVar[str] = "merge_tracks"
    source: int = 0
    target: int = 0

    def apply(self, annotation: Annotation) -> Edit:
        if self.source == self.target:
            raise AnnotationError(f"Cannot merge track {self.source} into itself; pick two different tracks.")
        _editable(annotation, self.source)
        target = _editable(annotation, self.target)
        keys = annotation.keys_of(self.source).tolist()
        marks = _mark_rows(annotation.marks.moved(self.source, self.target))
        owners = [[k, self.target] for k in keys]
        return annotation.apply(TrackTablePatch(owners, [_edited(target)], [self.source], marks=marks))


def shared_frames(annotation: Annotation, track_ids: list[int]) -> list[int]:
    """Frames where two or more of ``track_ids`` are present: merging them would give one id two objects there."""
    counts = np.zeros(annotation.num_frames, np.int32)
    for track_id in set(track_ids):
        counts[annotation.presence(track_id)] += 1
    return np.flatnonzero(counts > 1).tolist()


@dataclass
class SplitTrack(Edit):
    """From ``frame`` on, ``track_id``'s pixels belong to a new track of the same category."""

    kind: ClassVar[str] = "split_track"
    track_id: int = 0
    frame: int = 0
    new_track_id: int | None = None

    def apply(self, annotation: Annotation) -> Edit:
        track = _editable(annotation, self.track_id)
        if not track.isthing:
            raise AnnotationError(
                f"Track {track.id} is stuff ('{annotation.categories[track.category_id].name}'); VIPSeg allows one "
                "track per stuff category, so it cannot be split. Relabel it from this frame on instead."
            )
        frames = annotation.presence(track.id)
        if not (len(frames) and frames[0] < self.frame <= frames[-1]):
            raise AnnotationError(f"Track {track.id} has no frames both before and from frame {self.frame}; there is "
                                  "nothing to split.")
        new = annotation.make_track(track.category_id, track.score, Provenance.EDITED,
                                    self.new_track_id).replace(crowd=track.crowd)
        self.new_track_id = new.id
        keys, cuts = annotation.cut_keys(track.id, self.frame, annotation.num_frames)
        marks = _mark_rows(annotation.marks.moved(track.id, new.id, self.frame))
        patch = TrackTablePatch([[k, new.id] for k in keys], [new.to_json(), _edited(track)], marks=marks)
        return _apply_cut_patch(annotation, cuts, patch)


@dataclass
class SwapTracks(Edit):
    """Exchange two tracks' identities on frames [start, stop) (stop None: to the end; start+1: one frame)."""

    kind: ClassVar[str] = "swap_tracks"
    first: int = 0
    second: int = 0
    start: int = 0
    stop: int | None = None

    def apply(self, annotation: Annotation) -> Edit:
        if self.first == self.second:
            raise AnnotationError(f"Cannot swap track {self.first} with itself; pick two different tracks.")
        first, second = _editable(annotation, self.first), _editable(annotation, self.second)
        start, stop = _range(annotation, self.start, self.stop)
        first_keys, first_cuts = annotation.cut_keys(first.id, start, stop)
        second_keys, second_cuts = annotation.cut_keys(second.id, start, stop)
        owners = [[k, second.id] for k in first_keys] + [[k, first.id] for k in second_keys]
        marks = _mark_rows(annotation.marks.swapped(first.id, second.id, start, stop))
        patch = TrackTablePatch(owners, [_edited(first), _edited(second)], marks=marks)
        return _apply_cut_patch(annotation, first_cuts + second_cuts, patch)


@dataclass
class DeleteTrack(Edit):
    """Make a track void on frames [start, stop) (default: everywhere). A track left empty is removed."""

    kind: ClassVar[str] = "delete_track"
    track_id: int = 0
    start: int = 0
    stop: int | None = None

    def apply(self, annotation: Annotation) -> Edit:
        track = _editable(annotation, self.track_id)
        start, stop = _range(annotation, self.start, self.stop)
        frames = annotation.presence(track.id)
        keys, cuts = annotation.cut_keys(track.id, start, stop)
        emptied = not np.any((frames < start) | (frames >= stop))
        owners = [[k, 0] for k in keys]
        if emptied:  # the track goes, and all its marks with it
            patch = TrackTablePatch(owners, [], [track.id], marks=_mark_rows(annotation.marks.cleared(track.id)))
        else:
            marks = _mark_rows(annotation.marks.cleared(track.id, start, stop))
            patch = TrackTablePatch(owners, [_edited(track)], marks=marks)
        return _apply_cut_patch(annotation, cuts, patch)


@dataclass
class RelabelTrack(Edit):
    """Give a track another category, on all its frames or from ``start`` on.

    From a frame on, the relabelled part becomes a new track (a track keeps one category). Relabelling
    to a stuff category that already has a track merges into that track (one track per stuff category).
    """

    kind: ClassVar[str] = "relabel_track"
    track_id: int = 0
    category_id: int = 0
    start: int = 0
    new_track_id: int | None = None

    def apply(self, annotation: Annotation) -> Edit:
        track = _editable(annotation, self.track_id)
        if self.category_id == track.category_id:
            raise AnnotationError(f"Track {track.id} already has category {self.category_id}.")
        start, stop = _range(annotation, self.start, None)
        merge_into = _stuff_target(annotation, self.category_id, track.id)
        frames = annotation.presence(track.id)
        whole = not np.any(frames < start)
        keys, cuts = ((annotation.keys_of(track.id).tolist(), []) if whole
                      else annotation.cut_keys(track.id, start, stop))
        if merge_into is not None:
            remove = [track.id] if whole else []
            put = [_edited(merge_into)] + ([] if whole else [_edited(track)])
            marks = _mark_rows(annotation.marks.moved(track.id, merge_into.id, 0 if whole else start))
            patch = TrackTablePatch([[k, merge_into.id] for k in keys], put, remove, marks=marks)
            return _apply_cut_patch(annotation, cuts, patch)
        category = annotation.categories[self.category_id]
        if whole:
            relabelled = track.replace(category_id=category.id, isthing=category.isthing, provenance=Provenance.EDITED)
            return annotation.apply(TrackTablePatch(put=[relabelled.to_json()]))
        new = annotation.make_track(category.id, track.score, Provenance.EDITED,
                                    self.new_track_id).replace(crowd=track.crowd)
        self.new_track_id = new.id
        marks = _mark_rows(annotation.marks.moved(track.id, new.id, start))
        patch = TrackTablePatch([[k, new.id] for k in keys], [new.to_json(), _edited(track)], marks=marks)
        return _apply_cut_patch(annotation, cuts, patch)


# ---------------------------------------------------------------------------------- painting


def _check_frame(annotation: Annotation, frame: int) -> None:
    if not 0 <= frame < annotation.num_frames:
        raise AnnotationError(f"Frame {frame} is outside this video (frames 0..{annotation.num_frames - 1}).")


def _paint(annotation: Annotation, frame: int, target: int, mask: np.ndarray) -> Edit:
    """Give ``mask``'s pixels of ``frame`` to track ``target`` (0: void), except pixels of locked tracks.

    The inverse is a :class:`PixelPatch` of the changed box; an empty change is a no-op patch.
    """
    track = _editable(annotation, target) if target else None
    track_map = annotation.track_map(frame)
    locked = [t.id for t in annotation.tracks.values() if t.locked]
    if locked:
        mask = mask & ~np.isin(track_map, locked)
    if not mask.any():
        return TrackTablePatch()  # nothing changes; its inverse is itself a no-op
    x0, y0, w, h = cv2.boundingRect(mask.view(np.uint8))
    slot, row = annotation.slot_for(frame, target) if target else (0, annotation.slot_row(frame))
    before = annotation.mask_store.get(frame)[y0 : y0 + h, x0 : x0 + w]
    after = np.where(mask[y0 : y0 + h, x0 : x0 + w], slot, before)
    tracks = [_edited(track)] if track is not None else []
    return annotation.apply(PixelPatch.of(frame, y0, x0, after, row, tracks))


@dataclass
class Paint(Edit):
    """Brush (discs along ``points``), eraser (the same, to void), fill (the 4-connected region of one
    track under ``points[0]``) or polygon (the filled polygon with vertices ``points``).

    Pixels of locked tracks are never painted over. The inverse is a :class:`PixelPatch` of the changed box.
    """

    kind: ClassVar[str] = "paint"
    frame: int = 0
    track_id: int = 0  # 0 with "fill" or "polygon" paints void; ignored by "eraser"
    tool: str = "brush"
    points: list[list[int]] = field(default_factory=list)  # [[x, y], ...] in pixels
    radius: int = 5

    def apply(self, annotation: Annotation) -> Edit:
        if self.tool not in PAINT_TOOLS:
            raise AnnotationError(f"Unknown paint tool {self.tool!r}; use one of {', '.join(PAINT_TOOLS)}.")
        if not self.points:
            raise AnnotationError("A paint edit needs at least one point.")
        if self.tool == "polygon" and len(self.points) < 3:
            raise AnnotationError("A polygon needs at least three vertices; click more points before closing it.")
        _check_frame(annotation, self.frame)
        target = 0 if self.tool == "eraser" else self.track_id
        return _paint(annotation, self.frame, target, self._mask(annotation.track_map(self.frame), target))

    def _mask(self, track_map: np.ndarray, target: int) -> np.ndarray:
        height, width = track_map.shape
        points = [(int(x), int(y)) for x, y in self.points]
        canvas = np.zeros((height, width), np.uint8)
        if self.tool == "fill":
            x, y = points[0]
            if not (0 <= x < width and 0 <= y < height) or track_map[y, x] == target:
                return canvas.astype(bool)
            _, labels = cv2.connectedComponents((track_map == track_map[y, x]).view(np.uint8), connectivity=4)
            return labels == labels[y, x]
        if self.tool == "polygon":
            cv2.fillPoly(canvas, [np.array(points, np.int32)], 1)
            return canvas.astype(bool)
        radius = max(int(self.radius), 0)
        for point in points:
            cv2.circle(canvas, point, radius, 1, thickness=-1)
        for a, b in zip(points, points[1:]):
            cv2.line(canvas, a, b, 1, thickness=max(2 * radius, 1))  # within the discs' envelope
        return canvas.astype(bool)


@dataclass
class _BoxedMaskEdit(Edit):
    """An edit that carries a full-frame boolean mask of one frame as a PNG of its bounding box.

    The mask is stored, not recomputed, so the edit replays without the video's pixels.
    """

    frame: int = 0
    track_id: int = 0
    y0: int = 0
    x0: int = 0
    height: int = 0
    width: int = 0
    pixels: str = ""  # base64 PNG of the mask inside its bounding box (1 = in the mask); "" when empty

    @staticmethod
    def boxed(mask: np.ndarray) -> tuple[int, int, int, int, str]:
        """(y0, x0, height, width, pixels) of a full-frame boolean ``mask``: only its bounding box is kept."""
        x0, y0, width, height = cv2.boundingRect(mask.astype(np.uint8))
        box = mask[y0 : y0 + height, x0 : x0 + width].astype(np.uint16)
        return y0, x0, height, width, base64.b64encode(encode_slots(box)).decode("ascii") if box.size else ""

    def mask(self, annotation: Annotation) -> np.ndarray:
        """The stored mask on a frame of ``annotation`` (checked to lie inside it)."""
        _check_frame(annotation, self.frame)
        if (self.y0 < 0 or self.x0 < 0 or self.y0 + self.height > annotation.height
                or self.x0 + self.width > annotation.width):
            raise AnnotationError(f"The mask's box ({self.x0}, {self.y0}, {self.width}x{self.height}) is not inside "
                                  f"the {annotation.width}x{annotation.height} frame.")
        mask = np.zeros((annotation.height, annotation.width), bool)
        if self.pixels and self.height and self.width:
            box = decode_slots(base64.b64decode(self.pixels), self.height, self.width, source="mask edit")
            mask[self.y0 : self.y0 + self.height, self.x0 : self.x0 + self.width] = box > 0
        return mask


@dataclass
class PaintMask(_BoxedMaskEdit):
    """A given mask (e.g. an image-colour fill) painted into ``track_id`` (0: void) on one frame.
    Pixels of locked tracks are never painted over."""

    kind: ClassVar[str] = "paint_mask"
    label: str = "paint mask"

    @classmethod
    def of(cls, frame: int, track_id: int, mask: np.ndarray, label: str = "paint mask") -> PaintMask:
        return cls(frame, track_id, *cls.boxed(mask), label)

    def apply(self, annotation: Annotation) -> Edit:
        return _paint(annotation, self.frame, self.track_id, self.mask(annotation))

    def describe(self) -> str:
        return self.label


@dataclass
class SetMask(_BoxedMaskEdit):
    """On one frame, ``track_id``'s pixels become exactly a given mask (propagated or prompted masks).

    The track's old pixels outside the mask become void. Inside it the track takes pixels from other
    unlocked tracks, or with ``void_only`` only fills void. Locked tracks' pixels never change. The inverse
    is a :class:`FramePatch` of the frame before (cheap to make and to apply: no pixel encoding).
    """

    kind: ClassVar[str] = "set_mask"
    void_only: bool = False

    @classmethod
    def of(cls, frame: int, track_id: int, mask: np.ndarray, void_only: bool = False) -> SetMask:
        return cls(frame, track_id, *cls.boxed(mask), void_only)

    def apply(self, annotation: Annotation) -> Edit:
        wanted = self.mask(annotation)
        track = _editable(annotation, self.track_id)
        track_map = annotation.track_map(self.frame)
        protected = np.isin(track_map, [t.id for t in annotation.tracks.values() if t.locked])
        if self.void_only:
            protected |= (track_map != 0) & (track_map != track.id)
        wanted &= ~protected
        changed = wanted != (track_map == track.id)
        if not changed.any():
            return TrackTablePatch()
        x0, y0, w, h = cv2.boundingRect(changed.view(np.uint8))
        slot, row = annotation.slot_for(self.frame, track.id)
        before = annotation.mask_store.get(self.frame)[y0 : y0 + h, x0 : x0 + w]
        box_changed = changed[y0 : y0 + h, x0 : x0 + w]
        after = np.where(box_changed, np.where(wanted[y0 : y0 + h, x0 : x0 + w], slot, 0), before)
        inverse = FramePatch.of(annotation, self.frame, [track.id])
        annotation.write_pixels(self.frame, y0, x0, after, row)
        annotation.put_tracks([Track.from_json(_edited(track))])
        return inverse


@dataclass
class MarkFrames(Edit):
    """Mark frames of a track as keyframes or propagated ("" unmarks); pixels stay as they are."""

    kind: ClassVar[str] = "mark_frames"
    track_id: int = 0
    marks: list[list] = field(default_factory=list)  # [[frame, "key" | "propagated" | ""], ...]

    def apply(self, annotation: Annotation) -> Edit:
        if self.track_id not in annotation.tracks:
            raise AnnotationError(f"There is no track {self.track_id} in this annotation.")
        for frame, kind in self.marks:
            _check_frame(annotation, int(frame))
            if kind and kind not in KINDS:
                raise AnnotationError(f"Unknown frame mark {kind!r}; use one of {', '.join(KINDS)}.")
        before = annotation.set_marks({(self.track_id, int(f)): k or None for f, k in self.marks})
        return MarkFrames(self.track_id, [[f, k or ""] for (_, f), k in before.items()])


def with_keyframe(edit: Edit, track_id: int, frame: int, label: str) -> Edit:
    """``edit`` of ``track_id``'s mask on ``frame`` plus marking that frame a keyframe, as one undo step
    (a frame a person drew or corrected is one propagation may start from and must not overwrite)."""
    if not track_id:
        return edit
    return EditGroup([edit.to_json(), MarkFrames(track_id, [[frame, KEY]]).to_json()], label)
