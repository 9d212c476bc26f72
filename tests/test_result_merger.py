"""ResultMerger: model results into an annotation, keeping locked tracks and matching ids by IoU."""

import numpy as np

from app.core.annotation import Annotation
from app.core.result_merger import ResultMerger, pair_iou
from dvis_models.categories import vipseg_categories
from dvis_models.types import FrameResult, Segment

PERSON, CAR, SKY = 60, 48, 28  # thing, thing, stuff (VIPSeg ids)


def result(index, boxes):
    """FrameResult with one rectangle per (model id, category, x0, x1) on a 20x40 frame."""
    track_map = np.zeros((20, 40), np.int32)
    segments = []
    for model_id, category, x0, x1 in boxes:
        track_map[5:15, x0:x1] = model_id
        isthing = vipseg_categories()[category].isthing
        segments.append(Segment(model_id, category, isthing, 0.9, int((track_map == model_id).sum())))
    return FrameResult(index, track_map, segments)


def annotation():
    return Annotation(6, 20, 40, vipseg_categories())


def test_pair_iou_of_identical_and_disjoint_masks():
    a = np.array([[1, 1, 2, 2]])
    b = np.array([[5, 5, 0, 7]])
    iou = pair_iou(a, b, [1, 2], [5, 7])
    assert np.allclose(iou, [[1.0, 0.0], [0.0, 0.5]])


def test_first_run_creates_one_track_per_model_id():
    ann = annotation()
    merger = ResultMerger(ann)
    for i in range(3):
        merger.add(result(i, [(7, PERSON, 2, 10), (9, CAR, 20, 30)]))
    assert len(ann.tracks) == 2
    person = merger.mapping[7]
    assert ann.tracks[person].category_id == PERSON
    assert ann.track_frames(person) == [0, 1, 2]


def test_rerun_keeps_locked_track_pixels_and_matches_ids():
    ann = annotation()
    first = ResultMerger(ann)
    for i in range(4):
        first.add(result(i, [(1, PERSON, 2, 10), (2, CAR, 20, 30)]))
    person, car = first.mapping[1], first.mapping[2]
    ann.put_tracks([ann.tracks[person].replace(locked=True)])
    locked_before = ann.track_map(2).copy()

    # Re-run frames 2..3 (offset 2): the model now sees a slightly shifted person and the car.
    second = ResultMerger(ann)
    for i in range(2):
        second.add(result(i, [(40, PERSON, 3, 11), (41, CAR, 21, 30)]), offset=2)
    assert second.mapping[40] == person  # matched to the locked track by IoU
    assert second.mapping[41] == car  # unlocked, same category, overlapping: keeps its id
    assert len(ann.tracks) == 2
    after = ann.track_map(2)
    assert np.array_equal(after == person, locked_before == person)  # locked mask untouched
    assert (after[5:15, 21:30] == car).all() and (after[5:15, 20] == 0).all()  # unlocked mask replaced


def test_rerun_new_object_and_stuff_reuse():
    ann = annotation()
    merger = ResultMerger(ann)
    merger.add(result(0, [(1, SKY, 0, 5), (2, PERSON, 10, 15)]))
    again = ResultMerger(ann)
    again.add(result(1, [(8, SKY, 30, 40), (9, CAR, 20, 25)]))
    assert again.mapping[8] == merger.mapping[1]  # one track per stuff category
    assert ann.tracks[again.mapping[9]].category_id == CAR
    assert again.mapping[9] not in merger.mapping.values()


def test_finish_drops_model_tracks_left_empty():
    ann = annotation()
    first = ResultMerger(ann)
    first.add(result(0, [(1, PERSON, 2, 10), (2, CAR, 20, 30)]))
    car = first.mapping[2]
    second = ResultMerger(ann)
    second.add(result(0, [(5, PERSON, 2, 10)]))  # the car is gone from the only frame it had
    assert second.finish() == [car]
    assert car not in ann.tracks and len(ann.tracks) == 1


def state(ann):
    """Everything a run may change: every frame's track map, the track records and the raw tables."""
    tables = {name: array.copy() for name, array in ann.table_arrays().items()}
    return [ann.track_map(i).copy() for i in range(ann.num_frames)], dict(ann.tracks), tables


def same_state(a, b) -> bool:
    maps_a, tracks_a, tables_a = a
    maps_b, tracks_b, tables_b = b
    rows = lambda tables: {n: t for n, t in tables.items() if n != "owner"}  # noqa: E731 - owners of new keys stay
    return (all(np.array_equal(x, y) for x, y in zip(maps_a, maps_b)) and tracks_a == tracks_b
            and all(np.array_equal(rows(tables_a)[n][:, : rows(tables_b)[n].shape[1]], rows(tables_b)[n])
                    for n in rows(tables_b)))


def first_run(ann, frames=range(4)):
    merger = ResultMerger(ann)
    for i in frames:
        merger.add(result(i, [(1, PERSON, 2, 10), (2, CAR, 20, 30)]))
    merger.finish()
    return merger.mapping[1], merger.mapping[2]


def test_rerun_keeps_edited_tracks_unless_told_otherwise():
    from app.core import edits

    for keep_edited in (True, False):
        ann = annotation()
        person, car = first_run(ann)
        ann.apply(edits.Paint(1, person, "brush", [[35, 2]], 1))  # the user corrects the person: provenance "edited"
        assert ann.tracks[person].provenance == "edited" and not ann.tracks[person].locked
        edited = [ann.track_map(i) == person for i in range(4)]
        rerun = ResultMerger(ann, keep_edited=keep_edited)
        for i in range(4):
            rerun.add(result(i, [(7, PERSON, 3, 11), (8, CAR, 21, 30)]))
        rerun.finish()
        assert rerun.mapping[7] == person and rerun.mapping[8] == car  # ids continue either way
        kept = all(np.array_equal(ann.track_map(i) == person, edited[i]) for i in range(4))
        assert kept == keep_edited
        assert (ann.track_map(1)[5:15, 21:30] == car).all()  # the model track is replaced in both cases


def test_a_run_is_undone_exactly_and_earlier_edits_stay_undoable():
    from app.core import edits

    ann = annotation()
    person, car = first_run(ann)
    before_edit = state(ann)
    undo_merge = ann.apply(edits.MergeTracks(car, person))  # an edit before the run
    before_run = state(ann)
    rerun = ResultMerger(ann, keep_edited=False)
    for i in range(1, 3):
        rerun.add(result(i, [(7, PERSON, 4, 12), (9, CAR, 30, 38)]), offset=0)
    rerun.finish()
    after_run = state(ann)
    assert not same_state(after_run, before_run)
    redo = ann.apply(rerun.undo_edit())
    assert same_state(state(ann), before_run)
    undo_again = ann.apply(redo)
    assert same_state(state(ann), after_run)
    ann.apply(edits.Edit.from_json(undo_again.to_json()))  # through JSON, as a project history would store it
    assert same_state(state(ann), before_run)
    ann.apply(undo_merge)  # the merge made before the run still undoes exactly
    assert same_state(state(ann), before_edit)


def test_a_resumed_run_continues_ids_across_the_boundary():
    from app.core.result_merger import resume_start

    ann = annotation()
    person, car = first_run(ann, frames=range(3))  # cancelled after frame 2
    ann.put_tracks([ann.tracks[car].replace(locked=True)])
    assert resume_start(ann, 3) == 2 and resume_start(ann, 2) == 2 and resume_start(ann, 0) == 0
    frame_2 = ann.track_map(2).copy()
    resumed = ResultMerger(ann, write_from=3)
    # The model starts again on frame 2 (new ids, same masks there), then both objects jump far: across
    # the boundary they no longer overlap, and only the shared frame can tell who is who. A newcomer too.
    resumed.add(result(0, [(31, PERSON, 2, 10), (32, CAR, 20, 30)]), offset=2)
    for i in range(1, 4):
        resumed.add(result(i, [(31, PERSON, 12, 18), (32, CAR, 31, 39), (33, PERSON, 0, 3)]), offset=2)
    resumed.finish()
    assert resumed.mapping[31] == person and resumed.mapping[32] == car
    assert resumed.mapping[33] not in (person, car)
    assert np.array_equal(ann.track_map(2), frame_2) and resumed.frames == [3, 4, 5]  # frame 2 only matched
    assert ann.track_frames(person) == list(range(6))
    assert ann.track_frames(car) == list(range(6))  # a locked track continues into frames not run yet
    assert (ann.track_map(4)[5:15, 31:39] == car).all()
