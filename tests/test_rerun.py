"""ResultMerger: model results into an annotation, keeping locked tracks and matching ids by IoU."""

import numpy as np

from app.core.annotation import Annotation
from app.core.categories import vipseg_categories
from app.core.rerun import ResultMerger, pair_iou
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
