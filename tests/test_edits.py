"""Reversible edits: each changes what it should, its inverse restores tables and pixels exactly,
redo reproduces the same state (same new track ids), JSON round trips, and VIPSeg rules hold."""

import json

import numpy as np
import pytest

from app.core.annotation import Annotation, Provenance
from app.core.edits import (
    AddTrack,
    DeleteTrack,
    Edit,
    EditGroup,
    FramePatch,
    MarkFrames,
    MergeTracks,
    Paint,
    PaintMask,
    RelabelTrack,
    SetMask,
    SetTrackLocked,
    SplitTrack,
    SwapTracks,
    shared_frames,
)
from app.core.errors import AnnotationError
from app.core.keyframes import KEY, PROPAGATED
from dvis_models.categories import vipseg_categories

PERSON, CAR, DOG, SKY, WALL, GRASS = 60, 48, 62, 28, 0, 15
F, H, W = 8, 24, 32


def make_annotation() -> Annotation:
    """person 1 (all frames, two pieces from frame 4), car 2 (frames 0-5), person 3 (frames 2-7),
    sky 4 (stuff, all frames), wall 5 (stuff, frames 0-3)."""
    annotation = Annotation(F, H, W, vipseg_categories())
    for category in (PERSON, CAR, PERSON, SKY, WALL):
        annotation.add_track(category, provenance=Provenance.MODEL)
    for index in range(F):
        frame = np.zeros((H, W), np.int32)
        frame[:6, :] = 4
        if index <= 3:
            frame[6:10, :] = 5
        frame[12:20, index : index + 6] = 1
        if index >= 4:
            frame[21:, :4] = 1  # a second piece of track 1
        if index <= 5:
            frame[12:18, 20:26] = 2
        if index >= 2:
            frame[19:23, 14:20] = 3
        annotation.set_frame(index, frame)
    return annotation


def snapshot(annotation: Annotation) -> dict:
    return {
        "maps": [annotation.track_map(i).copy() for i in range(annotation.num_frames)],
        "tracks": dict(annotation.tracks),
        "frames": {t: annotation.track_frames(t) for t in annotation.tracks},
        "areas": [{t: annotation.area(i, t) for t in annotation.frame_track_ids(i)}
                  for i in range(annotation.num_frames)],
        "next": annotation.next_track_id,
        "marks": annotation.marks.to_json(),
    }


def assert_same(a: dict, b: dict) -> None:
    for index, (x, y) in enumerate(zip(a["maps"], b["maps"])):
        np.testing.assert_array_equal(x, y, err_msg=f"frame {index}")
    assert a["tracks"] == b["tracks"]
    assert a["frames"] == b["frames"]
    assert a["areas"] == b["areas"]
    assert a["marks"] == b["marks"]


EDITS = {
    "merge": lambda: MergeTracks(source=3, target=1),
    "merge overlapping": lambda: MergeTracks(source=2, target=1),
    "split": lambda: SplitTrack(track_id=1, frame=3),
    "swap from frame": lambda: SwapTracks(1, 2, start=3),
    "swap one frame": lambda: SwapTracks(1, 3, start=4, stop=5),
    "delete all": lambda: DeleteTrack(2),
    "delete range": lambda: DeleteTrack(1, start=2, stop=5),
    "relabel whole": lambda: RelabelTrack(3, DOG),
    "relabel from frame": lambda: RelabelTrack(1, DOG, start=5),
    "relabel into existing stuff": lambda: RelabelTrack(5, SKY),
    "relabel from frame into stuff": lambda: RelabelTrack(1, SKY, start=6),
    "relabel thing to new stuff": lambda: RelabelTrack(2, GRASS),
    "add track": lambda: AddTrack(CAR),
    "lock": lambda: SetTrackLocked(2, True),
    "brush": lambda: Paint(1, 2, "brush", [[2, 2], [10, 20]], 2),
    "brush new frame for track": lambda: Paint(7, 2, "brush", [[28, 2]], 3),
    "eraser": lambda: Paint(3, 0, "eraser", [[5, 14]], 4),
    "fill": lambda: Paint(0, 3, "fill", [[30, 21]]),
    "polygon": lambda: Paint(2, 2, "polygon", [[1, 1], [30, 3], [16, 22]]),
    "paint mask": lambda: PaintMask.of(5, 3, np.pad(np.ones((5, 7), bool), ((3, 16), (20, 5)))),
    "set mask": lambda: SetMask.of(4, 3, np.pad(np.ones((9, 7), bool), ((10, 5), (12, 13)))),
    "set mask void only": lambda: SetMask.of(6, 2, np.pad(np.ones((9, 7), bool), ((10, 5), (12, 13))), void_only=True),
    "group": lambda: EditGroup([AddTrack(DOG).to_json(), Paint(2, 0, "brush", [[16, 8]], 2).to_json()], "new dog"),
}


@pytest.mark.parametrize("name", EDITS)
def test_edit_inverse_restores_exactly_and_redo_repeats(name):
    annotation = make_annotation()
    edit = EDITS[name]()
    if name == "group":  # paint the track the group adds (its id is the next one)
        edit.edits[1]["track_id"] = annotation.next_track_id
    before = snapshot(annotation)
    inverse = annotation.apply(edit)
    after = snapshot(annotation)
    assert (any(not np.array_equal(x, y) for x, y in zip(before["maps"], after["maps"]))
            or before["tracks"] != after["tracks"])
    annotation.apply(Edit.from_json(json.loads(json.dumps(inverse.to_json()))))  # undo through JSON, as from history
    assert_same(before, snapshot(annotation))
    redo = Edit.from_json(json.loads(json.dumps(edit.to_json())))  # ids chosen on first apply are kept
    inverse = annotation.apply(redo)
    assert_same(after, snapshot(annotation))
    annotation.apply(inverse)
    assert_same(before, snapshot(annotation))


@pytest.mark.parametrize("name", ["merge", "split", "swap from frame", "swap one frame", "delete all", "delete range",
                                  "relabel whole", "relabel from frame", "relabel into existing stuff"])
def test_track_edits_touch_no_pixels(name):
    annotation = make_annotation()
    annotation.mask_store.dirty.clear()
    blobs = [annotation.mask_store.blob(i) for i in range(F)]
    annotation.apply(EDITS[name]())
    assert annotation.mask_store.dirty == set()
    assert all(annotation.mask_store.blob(i) is blob for i, blob in enumerate(blobs))


def test_shared_frames_are_where_tracks_to_merge_coexist():
    annotation = make_annotation()
    assert shared_frames(annotation, [2, 3]) == [2, 3, 4, 5]  # car 0-5, person 3 from 2 on
    assert shared_frames(annotation, [5, 3]) == [2, 3]
    assert shared_frames(annotation, [2, 5, 3]) == [0, 1, 2, 3, 4, 5]  # any two of them
    annotation.apply(DeleteTrack(3, 0, 6))
    assert shared_frames(annotation, [2, 3]) == []  # one after the other: a clean merge
    assert shared_frames(annotation, [2, 2]) == []


def test_merge_split_swap_delete_semantics():
    annotation = make_annotation()
    original = snapshot(annotation)
    annotation.apply(MergeTracks(3, 1))
    assert 3 not in annotation.tracks and annotation.track_frames(1) == list(range(F))
    np.testing.assert_array_equal(annotation.track_map(5), np.where(original["maps"][5] == 3, 1, original["maps"][5]))
    assert annotation.tracks[1].provenance is Provenance.EDITED

    annotation = make_annotation()
    split = SplitTrack(1, 3)
    annotation.apply(split)
    new = split.new_track_id
    assert annotation.tracks[new].category_id == PERSON
    assert annotation.track_frames(1) == [0, 1, 2] and annotation.track_frames(new) == list(range(3, F))

    annotation = make_annotation()
    annotation.apply(SwapTracks(1, 2, start=3))
    for index in range(F):
        expected = original["maps"][index].copy()
        if index >= 3:
            expected[original["maps"][index] == 1] = 2
            expected[original["maps"][index] == 2] = 1
        np.testing.assert_array_equal(annotation.track_map(index), expected)

    annotation = make_annotation()
    annotation.apply(DeleteTrack(1, start=2, stop=5))
    assert annotation.track_frames(1) == [0, 1, 5, 6, 7]
    assert annotation.area(3, 1) == 0 and annotation.track_at(3, 3, 14) is None


def marked_annotation() -> Annotation:
    """:func:`make_annotation` with keyframes and propagated frames on tracks 1, 2, 3 (things), 4 and 5 (stuff)."""
    annotation = make_annotation()
    K, P = KEY, PROPAGATED
    for track, marks in {1: {0: K, 1: P, 2: P, 5: K, 6: P}, 2: {1: K, 2: P, 4: K}, 3: {2: K, 3: P, 6: K},
                         4: {0: P, 1: K}, 5: {0: K, 2: P}}.items():
        annotation.apply(MarkFrames(track, [[f, k] for f, k in marks.items()]))
    return annotation


K, P = KEY, PROPAGATED
NEW = -1  # stands for the track id the edit creates
MARKED_EDITS = {  # edit -> the marks of every track afterwards (tracks not named keep theirs)
    # where both tracks mark a frame, a keyframe wins over a propagated mark
    "merge": (lambda: MergeTracks(source=3, target=1), {1: {0: K, 1: P, 2: K, 3: P, 5: K, 6: K}, 3: {}}),
    "split": (lambda: SplitTrack(track_id=1, frame=3), {1: {0: K, 1: P, 2: P}, NEW: {5: K, 6: P}}),
    "swap from frame": (lambda: SwapTracks(1, 2, start=3), {1: {0: K, 1: P, 2: P, 4: K}, 2: {1: K, 2: P, 5: K, 6: P}}),
    "swap one frame": (lambda: SwapTracks(1, 3, start=2, stop=3),
                       {1: {0: K, 1: P, 2: K, 5: K, 6: P}, 3: {2: P, 3: P, 6: K}}),
    "delete all": (lambda: DeleteTrack(2), {2: {}}),
    "delete range": (lambda: DeleteTrack(1, start=1, stop=3), {1: {0: K, 5: K, 6: P}}),
    "delete the range left": (lambda: DeleteTrack(2, start=0, stop=6), {2: {}}),
    "relabel whole": (lambda: RelabelTrack(3, DOG), {}),
    "relabel from frame": (lambda: RelabelTrack(1, DOG, start=5), {1: {0: K, 1: P, 2: P}, NEW: {5: K, 6: P}}),
    "relabel into existing stuff": (lambda: RelabelTrack(5, SKY), {4: {0: K, 1: K, 2: P}, 5: {}}),
    "relabel from frame into stuff": (lambda: RelabelTrack(1, SKY, start=6),
                                      {1: {0: K, 1: P, 2: P, 5: K}, 4: {0: P, 1: K, 6: P}}),
}


@pytest.mark.parametrize("name", MARKED_EDITS)
def test_marks_follow_track_edits_and_undo_restores_them(name):
    annotation = marked_annotation()
    make_edit, expected = MARKED_EDITS[name]
    before = {t: annotation.marks.of(t) for t in range(1, 6)}
    edit = make_edit()
    inverse = annotation.apply(edit)
    new_id = getattr(edit, "new_track_id", None)
    wanted = {**before, **{(new_id if t == NEW else t): marks for t, marks in expected.items()}}
    after = {t: annotation.marks.of(t) for t in wanted}
    assert after == wanted
    assert {int(t) for t in annotation.marks.to_json()} <= set(annotation.tracks), "marks left on a track that is gone"
    annotation.apply(Edit.from_json(json.loads(json.dumps(inverse.to_json()))))  # undo through JSON, as from history
    assert {t: annotation.marks.of(t) for t in range(1, 6)} == before and annotation.marks.of(new_id or 0) == {}
    annotation.apply(Edit.from_json(json.loads(json.dumps(edit.to_json()))))  # redo: the same ids, the same marks
    assert {t: annotation.marks.of(t) for t in wanted} == wanted


def test_marks_need_a_track():
    annotation = make_annotation()
    with pytest.raises(AnnotationError, match="no track 99"):
        annotation.apply(MarkFrames(99, [[0, KEY]]))
    assert annotation.marks.to_json() == {}


def test_parts_split_or_relabelled_off_a_crowd_track_stay_crowd():
    annotation = make_annotation()
    annotation.put_tracks([annotation.tracks[1].replace(crowd=True)])
    split = SplitTrack(1, 3)
    annotation.apply(split)
    relabel = RelabelTrack(1, DOG, start=1)
    annotation.apply(relabel)
    assert annotation.tracks[split.new_track_id].crowd and annotation.tracks[relabel.new_track_id].crowd
    assert annotation.tracks[1].crowd and not annotation.tracks[2].crowd


def test_relabel_keeps_one_category_per_track_and_one_track_per_stuff():
    annotation = make_annotation()
    relabel = RelabelTrack(1, DOG, start=5)
    annotation.apply(relabel)
    assert annotation.tracks[1].category_id == PERSON and annotation.track_frames(1) == [0, 1, 2, 3, 4]
    assert annotation.tracks[relabel.new_track_id].category_id == DOG
    assert annotation.track_frames(relabel.new_track_id) == [5, 6, 7]

    annotation = make_annotation()
    annotation.apply(RelabelTrack(5, SKY))  # wall -> sky: merges into the existing sky track 4
    assert 5 not in annotation.tracks
    assert [t.id for t in annotation.tracks.values() if t.category_id == SKY] == [4]
    assert annotation.area(0, 4) == 6 * W + 4 * W

    annotation.apply(RelabelTrack(2, GRASS))  # no grass track yet: the car becomes the grass track
    assert annotation.tracks[2].category_id == GRASS and not annotation.tracks[2].isthing


@pytest.mark.parametrize(
    "edit, message",
    [
        (SplitTrack(4, 3), "stuff .*'sky'.* cannot be split"),
        (SplitTrack(2, 7), "nothing to split"),
        (MergeTracks(1, 1), "into itself"),
        (MergeTracks(1, 99), "no track 99"),
        (SwapTracks(1, 2, start=5, stop=3), "Frame range"),
        (RelabelTrack(1, PERSON), "already has category"),
        (RelabelTrack(1, 999), "Category id 999"),
        (AddTrack(SKY), "'sky' is a stuff category and already has track 4"),
        (Paint(0, 1, "spray", [[1, 1]]), "Unknown paint tool"),
        (Paint(9, 1, "brush", [[1, 1]]), "outside this video"),
    ],
)
def test_rule_violations_raise_clear_errors_and_change_nothing(edit, message):
    annotation = make_annotation()
    before = snapshot(annotation)
    with pytest.raises(AnnotationError, match=message):
        annotation.apply(edit)
    assert_same(before, snapshot(annotation))


def test_locked_tracks_refuse_edits_and_keep_their_pixels():
    annotation = make_annotation()
    annotation.apply(SetTrackLocked(2, True))
    with pytest.raises(AnnotationError, match="Track 2 is locked"):
        annotation.apply(MergeTracks(2, 1))
    with pytest.raises(AnnotationError, match="Track 2 is locked"):
        annotation.apply(MergeTracks(1, 2))
    car_pixels = annotation.track_map(1) == 2
    annotation.apply(Paint(1, 1, "brush", [[23, 15]], 10))  # a big brush over the car
    np.testing.assert_array_equal(annotation.track_map(1) == 2, car_pixels)
    assert annotation.area(1, 1) > 48


def test_paint_tools():
    annotation = make_annotation()
    before = annotation.track_map(0).copy()
    annotation.apply(Paint(0, 3, "brush", [[16, 8]], 1))  # a plus-shaped disc on the wall
    after = annotation.track_map(0)
    assert after[8, 16] == 3 and after[7, 16] == 3 and after[8, 15] == 3
    assert (after != before).sum() == 5
    assert annotation.track_frames(3) == [0, *range(2, F)]  # track 3 now present on frame 0 too

    annotation.apply(Paint(0, 0, "eraser", [[16, 8]], 0))
    assert annotation.track_at(0, 16, 8) is None

    # fill: only the 4-connected region under the point; the other piece of track 1 stays
    annotation.apply(Paint(4, 2, "fill", [[5, 14]]))
    filled = annotation.track_map(4)
    assert (filled[12:20, 4:10] == 2).all() and (filled[21:, :4] == 1).all()


def test_polygon_fills_its_inside_and_leaves_locked_tracks():
    annotation = make_annotation()
    annotation.apply(SetTrackLocked(2, True))
    before = annotation.track_map(1).copy()
    square = [[8, 4], [28, 4], [28, 22], [8, 22]]
    inverse = annotation.apply(Paint(1, 3, "polygon", square))
    after = annotation.track_map(1)
    inside = np.zeros((H, W), bool)
    inside[4:23, 8:29] = True  # cv2.fillPoly includes the vertices' pixels
    car = before == 2
    np.testing.assert_array_equal(after[inside & ~car], 3)
    np.testing.assert_array_equal(after[~inside], before[~inside])
    np.testing.assert_array_equal(after[car], 2)  # the locked car keeps every pixel
    annotation.apply(inverse)
    np.testing.assert_array_equal(annotation.track_map(1), before)
    with pytest.raises(AnnotationError, match="at least three vertices"):
        annotation.apply(Paint(1, 3, "polygon", [[1, 1], [9, 9]]))


def test_undo_of_a_polygon_and_a_mask_paint_restores_the_store_byte_for_byte():
    annotation = make_annotation()
    blobs = [annotation.mask_store.blob(i) for i in range(F)]
    first = annotation.apply(Paint(3, 2, "polygon", [[0, 0], [31, 0], [31, 23]]))
    second = annotation.apply(PaintMask.of(3, 0, np.ones((H, W), bool)))  # everything void
    assert annotation.track_map(3).max() == 0
    annotation.apply(second)
    annotation.apply(first)
    assert [annotation.mask_store.blob(i) for i in range(F)] == blobs


def test_a_set_mask_is_undone_by_putting_back_the_stored_frame():
    """The inverse of a mask set on a frame is the frame as stored (a FramePatch): undo swaps bytes and table
    rows back (no pixel encoding, which made undoing long propagations slow), giving the same bytes."""
    annotation = make_annotation()
    annotation.apply(AddTrack(DOG))
    blobs = [annotation.mask_store.blob(i) for i in range(F)]
    inverses = [annotation.apply(SetMask.of(i, 6, np.pad(np.ones((8, 8), bool), ((i, H - 8 - i), (i, W - 8 - i)))))
                for i in range(F)]
    assert all(isinstance(inverse, FramePatch) for inverse in inverses)
    assert annotation.track_frames(6) == list(range(F)) and annotation.tracks[6].provenance is Provenance.EDITED
    for inverse in reversed(inverses):
        annotation.apply(Edit.from_json(json.loads(json.dumps(inverse.to_json()))))
    assert [annotation.mask_store.blob(i) for i in range(F)] == blobs
    assert annotation.track_frames(6) == [] and 6 not in annotation.frame_track_ids(3)
    check_invariants(annotation)

    empty = Annotation(2, H, W, vipseg_categories())  # a frame never written is void again after undo
    track = empty.add_track(PERSON)
    undo = empty.apply(SetMask.of(1, track.id, np.ones((H, W), bool)))
    empty.apply(undo)
    assert empty.track_map(1).max() == 0 and empty.track_frames(track.id) == []


def test_track_edit_records_stay_small_on_long_videos():
    annotation = Annotation(3000, 4, 4, vipseg_categories())
    first, second = annotation.add_track(PERSON), annotation.add_track(CAR)
    frame = np.zeros((4, 4), np.int32)
    frame[:2], frame[2:] = first.id, second.id
    for index in range(3000):
        annotation.set_frame(index, frame)
    for edit in (SwapTracks(1, 2, start=1000), DeleteTrack(1, 500, 2500), SplitTrack(2, 1500), MergeTracks(1, 2)):
        inverse = annotation.apply(edit)
        assert len(json.dumps(edit.to_json())) < 200 and len(json.dumps(inverse.to_json())) < 600, edit


def test_paint_undo_record_is_only_the_changed_box():
    annotation = Annotation(1, 480, 640, vipseg_categories())
    track = annotation.add_track(PERSON)
    inverse = annotation.apply(Paint(0, track.id, "brush", [[100, 100], [120, 110]], 5))
    assert (inverse.height, inverse.width) == (21, 31)
    assert len(json.dumps(inverse.to_json())) < 1000


def test_group_rolls_back_when_a_part_fails():
    annotation = make_annotation()
    before = snapshot(annotation)
    group = EditGroup([AddTrack(DOG).to_json(), MergeTracks(1, 1).to_json()])
    with pytest.raises(AnnotationError, match="into itself"):
        annotation.apply(group)
    assert_same(before, snapshot(annotation))


def test_listeners_hear_each_edit_once():
    annotation = make_annotation()
    heard = []
    annotation.listeners.append(lambda frames, tracks: heard.append((frames, tracks)))
    annotation.apply(SwapTracks(1, 2, start=3))
    assert len(heard) == 1
    frames, tracks = heard[0]
    assert tracks == {1, 2} and frames == set(range(3, F))


def naive_apply(maps: np.ndarray, edit, new_id: int | None) -> None:
    """Reference semantics on plain (F, H, W) track maps."""
    if isinstance(edit, MergeTracks):
        maps[maps == edit.source] = edit.target
    elif isinstance(edit, SplitTrack):
        part = maps[edit.frame :]
        part[part == edit.track_id] = new_id
    elif isinstance(edit, SwapTracks):
        part = maps[edit.start : edit.stop]
        first, second = part == edit.first, part == edit.second
        part[first], part[second] = edit.second, edit.first
    elif isinstance(edit, DeleteTrack):
        part = maps[edit.start : edit.stop]
        part[part == edit.track_id] = 0


def test_random_edit_sequences_match_reference_with_interleaved_undo():
    """Random merge/split/swap/delete with random undos against plain-array semantics, then undo to the start."""
    rng = np.random.default_rng(7)
    annotation = make_annotation()
    start = snapshot(annotation)
    maps = np.stack(start["maps"])
    undo_stack: list[tuple[Edit, np.ndarray]] = []
    applied = undone = 0
    for step in range(120):
        if undo_stack and rng.random() < 0.25:
            inverse, maps = undo_stack.pop()
            annotation.apply(inverse)
            undone += 1
        else:
            things = [t.id for t in annotation.tracks.values() if t.isthing]
            if len(things) < 2:
                continue
            a, b = (int(v) for v in rng.choice(things, 2, replace=False))
            frame = int(rng.integers(0, F))
            kind = int(rng.choice(4, p=[0.1, 0.4, 0.3, 0.2]))  # splits add tracks, merges remove them
            edit = [MergeTracks(a, b), SplitTrack(a, frame),
                    SwapTracks(a, b, frame, int(rng.integers(frame + 1, F + 1))),
                    DeleteTrack(a, frame, int(rng.integers(frame + 1, F + 1)))][kind]
            try:
                inverse = annotation.apply(edit)
            except AnnotationError:
                continue  # e.g. a split with nothing before the frame
            undo_stack.append((inverse, maps.copy()))
            naive_apply(maps, edit, getattr(edit, "new_track_id", None))
            applied += 1
        for index in range(F):
            np.testing.assert_array_equal(annotation.track_map(index), maps[index], err_msg=f"step {step}")
            present = {t for t in annotation.tracks if index in annotation.track_frames(t)}
            assert present == set(np.unique(maps[index]).tolist()) - {0}
    assert applied > 40 and undone > 15
    for inverse, _ in reversed(undo_stack):
        annotation.apply(inverse)
    assert_same(start, snapshot(annotation))


def check_invariants(annotation: Annotation) -> Annotation:
    """The tables agree with the pixels: areas, presence, owners of live keys; restore gives the same state
    (returned, so a test can go on editing and undoing on it, as after reopening a project)."""
    tables = annotation.table_arrays()
    for index in range(annotation.num_frames):
        slots = annotation.mask_store.get(index)
        counts = np.bincount(slots.ravel(), minlength=tables["seg"].shape[1])
        counts[0] = 0
        np.testing.assert_array_equal(tables["area"][index], counts, err_msg=f"areas of frame {index}")
        live = tables["seg"][index][counts > 0]
        assert set(tables["owner"][live].tolist()) <= set(annotation.tracks) | {0}
        assert annotation.frame_track_ids(index) == set(np.unique(annotation.track_map(index)).tolist()) - {0}
    assert {int(t) for t in annotation.marks.to_json()} <= set(annotation.tracks), "marks left on a track that is gone"
    for track_id in annotation.tracks:
        expected = [i for i in range(annotation.num_frames) if annotation.area(i, track_id) > 0]
        assert annotation.track_frames(track_id) == expected
    blobs = [annotation.mask_store.blob(i) for i in range(annotation.num_frames)]
    restored = Annotation.restore(annotation.num_frames, annotation.height, annotation.width, annotation.categories,
                                  json.loads(json.dumps(annotation.tracks_json())),
                                  {k: v.copy() for k, v in tables.items()},
                                  loader=lambda i: (blobs[i], "") if blobs[i] else None)
    assert_same(snapshot(annotation), snapshot(restored))
    return restored


def random_edit(rng: np.random.Generator, annotation: Annotation) -> Edit:
    tracks = list(annotation.tracks)
    if len(tracks) < 2:
        return AddTrack(PERSON)
    a, b = (int(v) for v in rng.choice(tracks, 2, replace=False))
    frame = int(rng.integers(0, F))
    stop = int(rng.integers(frame + 1, F + 1))
    point = [[int(rng.integers(0, W)), int(rng.integers(0, H))]]
    category = int(rng.choice([PERSON, CAR, DOG, SKY, WALL, GRASS]))
    choices = [
        lambda: MergeTracks(a, b), lambda: SplitTrack(a, frame), lambda: SwapTracks(a, b, frame, stop),
        lambda: DeleteTrack(a, frame, stop), lambda: RelabelTrack(a, category, start=frame), lambda: AddTrack(category),
        lambda: SetTrackLocked(a, bool(rng.random() < 0.5)),
        lambda: Paint(frame, a, "brush", point, int(rng.integers(0, 4))),
        lambda: Paint(frame, 0, "eraser", point, 2), lambda: Paint(frame, a, "fill", point),
        lambda: MarkFrames(a, [[frame, str(rng.choice([KEY, PROPAGATED, ""]))], [stop - 1, KEY]]),
    ]
    return choices[int(rng.integers(0, len(choices)))]()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mixed_edits_with_undo_redo_keep_invariants(seed):
    """Random edits of every kind; undo applies the inverse, redo applies the inverse's inverse (as the GUI's
    QUndoCommand does); states must match exactly, also after a save/restore in between."""
    rng = np.random.default_rng(seed)
    annotation = make_annotation()
    start = snapshot(annotation)
    undo: list[tuple[Edit, dict, dict]] = []
    redo: list[tuple[Edit, dict, dict]] = []
    applied = 0
    for step in range(150):
        roll = rng.random()
        if undo and roll < 0.25:
            inverse, before, after = undo.pop()
            redo.append((annotation.apply(inverse), before, after))
            assert_same(before, snapshot(annotation))
            continue
        if redo and roll < 0.4:
            again, before, after = redo.pop()
            undo.append((annotation.apply(again), before, after))
            assert_same(after, snapshot(annotation))
            continue
        before = snapshot(annotation)
        try:
            inverse = annotation.apply(random_edit(rng, annotation))
        except AnnotationError:
            assert_same(before, snapshot(annotation))  # a refused edit changes nothing
            continue
        undo.append((inverse, before, snapshot(annotation)))
        redo.clear()
        applied += 1
        if step % 25 == 0:
            annotation = check_invariants(annotation)  # continue on the saved-and-restored copy
    assert applied > 40
    check_invariants(annotation)
    for inverse, before, _ in reversed(undo):
        annotation.apply(inverse)
        assert_same(before, snapshot(annotation))
    assert_same(start, snapshot(annotation))
