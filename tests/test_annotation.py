"""Annotation store: ingest, queries, presence, VIPSeg rules, mask store, table round trip."""

import numpy as np
import pytest

from app.core.annotation import Annotation, Provenance, Track
from app.core.errors import AnnotationError
from app.core.mask_store import MaskStore, encode_slots
from dvis_models.categories import vipseg_categories
from dvis_models.types import FrameResult, Segment

PERSON, CAR, SKY, WALL = 60, 48, 28, 0
H, W = 12, 16


def blank() -> np.ndarray:
    return np.zeros((H, W), np.int32)


@pytest.fixture
def annotation() -> Annotation:
    return Annotation(5, H, W, vipseg_categories())


def test_set_frame_round_trip_and_queries(annotation):
    person = annotation.add_track(PERSON)
    car = annotation.add_track(CAR)
    frame = blank()
    frame[:4, :5] = person.id
    frame[6:, 8:] = car.id
    annotation.set_frame(2, frame)
    np.testing.assert_array_equal(annotation.track_map(2), frame)
    assert annotation.track_map(2).dtype == np.int32
    assert annotation.frame_track_ids(2) == {person.id, car.id}
    assert annotation.area(2, person.id) == 20 and annotation.area(2, car.id) == 48
    assert annotation.track_at(2, 0, 0) == person.id
    assert annotation.track_at(2, 15, 11) == car.id
    assert annotation.track_at(2, 6, 0) is None  # void
    assert annotation.track_at(2, 99, 0) is None  # outside the picture
    assert annotation.frame_track_ids(0) == set()  # never set: all void
    np.testing.assert_array_equal(annotation.track_map(0), blank())


def test_presence_and_spans_follow_set_frame(annotation):
    person = annotation.add_track(PERSON)
    for index in (0, 1, 3, 4):
        frame = blank()
        frame[0, 0] = person.id
        annotation.set_frame(index, frame)
    assert annotation.track_frames(person.id) == [0, 1, 3, 4]
    assert annotation.track_spans(person.id) == [(0, 1), (3, 4)]
    annotation.set_frame(3, blank())  # the track leaves frame 3
    assert annotation.track_frames(person.id) == [0, 1, 4]
    assert annotation.track_spans(person.id) == [(0, 1), (4, 4)]


def test_set_frame_rejects_bad_input_with_clear_messages(annotation):
    annotation.add_track(PERSON, track_id=3)
    frame = blank()
    frame[0, 0] = 9
    with pytest.raises(AnnotationError, match=r"ids \[9\] are not tracks"):
        annotation.set_frame(0, frame)
    with pytest.raises(AnnotationError, match="mask is"):
        annotation.set_frame(0, np.zeros((H + 1, W), np.int32))
    with pytest.raises(AnnotationError, match="outside this video"):
        annotation.set_frame(5, blank())
    with pytest.raises(AnnotationError, match="negative"):
        annotation.set_frame(0, blank() - 1)


def test_one_track_per_stuff_category(annotation):
    sky = annotation.add_track(SKY)
    with pytest.raises(AnnotationError, match=rf"'sky' is a stuff category and already has track {sky.id}"):
        annotation.add_track(SKY)
    annotation.add_track(PERSON)
    annotation.add_track(PERSON)  # things may have many tracks
    with pytest.raises(AnnotationError, match="Category id 500"):
        annotation.add_track(500)
    with pytest.raises(AnnotationError, match="already used"):
        annotation.add_track(CAR, track_id=sky.id)


def test_ingest_applies_vipseg_rules(annotation):
    """Producer ids: a category change makes a new track; all stuff of one category shares one track."""
    frame0 = blank()
    frame0[:2] = 7  # producer id 7: person
    frame0[5:, :3] = 30  # sky, producer id 30
    frame0[5:, 10:] = 31  # sky again, another producer id
    annotation.ingest(0, frame0, [Segment(7, PERSON, True, 0.9, 0), Segment(30, SKY, False, 0.8, 0),
                                  Segment(31, SKY, False, 0.7, 0)])
    frame1 = blank()
    frame1[:2] = 7  # producer id 7 is now a car: a new track
    annotation.ingest(1, frame1, [Segment(7, CAR, True, 0.6, 0)])
    sky_track = annotation.stuff_track(SKY)
    assert annotation.frame_track_ids(0) == {7, sky_track}
    assert annotation.area(0, sky_track) == 7 * 3 + 7 * 6
    car_tracks = [t for t in annotation.tracks.values() if t.category_id == CAR]
    assert len(car_tracks) == 1 and car_tracks[0].id != 7
    assert annotation.frame_track_ids(1) == {car_tracks[0].id}
    assert annotation.tracks[7] == Track(7, PERSON, True, 0.9, Provenance.MODEL, False)
    with pytest.raises(AnnotationError, match=r"ids \[7\] appear in the mask but have no segment entry"):
        annotation.ingest(2, frame1, [])


def test_ingest_takes_pipeline_frame_results():
    results = []
    for index in range(3):
        frame = blank()
        frame[index : index + 3, 2:6] = 4
        results.append(FrameResult(index, frame, [Segment(4, PERSON, True, 0.95, 12)]))
    annotation = Annotation(3, H, W, vipseg_categories())
    for result in results:
        annotation.ingest(result.index, result.track_map, result.segments, Provenance.IMPORTED)
    assert annotation.tracks[4].provenance is Provenance.IMPORTED
    assert annotation.track_frames(4) == [0, 1, 2]
    np.testing.assert_array_equal(annotation.track_map(1), results[1].track_map)


def test_frames_with_more_than_255_segments_use_uint16_slots():
    annotation = Annotation(1, 20, 20, vipseg_categories())
    for track_id in range(1, 301):
        annotation.add_track(PERSON, track_id=track_id)
    frame = np.arange(400, dtype=np.int32).reshape(20, 20) % 301
    annotation.set_frame(0, frame)
    annotation.mask_store.clear_cache()  # force a decode of the stored PNG
    assert annotation.mask_store.get(0).dtype == np.uint16
    np.testing.assert_array_equal(annotation.track_map(0), frame)


def test_listeners_hear_changed_frames_and_tracks(annotation):
    heard = []
    annotation.listeners.append(lambda frames, tracks: heard.append((set(frames), set(tracks))))
    person = annotation.add_track(PERSON)
    frame = blank()
    frame[0, 0] = person.id
    annotation.set_frame(3, frame)
    assert heard == [(set(), {person.id}), ({3}, {person.id})]


def test_mask_store_compresses_caches_and_protects_frames():
    store = MaskStore(100, 180, 320, cache_frames=4)
    slots = np.zeros((180, 320), np.uint8)
    slots[40:120, 50:200] = 3
    slots[100:, 250:] = 1
    for index in range(10):
        store.put(index, slots)
    assert len(store._cache) == 4
    assert len(store.blob(0)) < slots.nbytes / 20  # PNG: a label map compresses well
    restored = store.get(0)  # evicted from the LRU: decoded from PNG
    np.testing.assert_array_equal(restored, slots)
    with pytest.raises(ValueError):
        restored[0, 0] = 1  # cached maps are read-only
    assert store.dirty == set(range(10))
    assert store.get(50).max() == 0 and store.blob(50) is None


def test_damaged_stored_mask_marks_its_frame_damaged():
    store = MaskStore(3, 8, 8, loader=lambda index: (b"" if index == 2 else b"not a png", f"/somewhere/{index}.png"))
    assert not store.get(1).any() and not store.get(2).any()  # shown void, no raw OpenCV error for 0 bytes
    assert store.damaged == {1, 2}
    store.put(1, np.ones((8, 8), np.uint8))
    assert store.damaged == {2}  # written again: whole
    wrong_size = MaskStore(1, 8, 8, loader=lambda index: (encode_slots(np.zeros((4, 4), np.uint8)), "x.png"))
    wrong_size.get(0)
    assert wrong_size.damaged == {0}
    beyond = MaskStore(1, 8, 8, loader=lambda index: (encode_slots(np.full((8, 8), 9, np.uint8)), "x.png"),
                       slot_limit=lambda: 4)
    beyond.get(0)
    assert beyond.damaged == {0}


def test_tables_round_trip_through_restore(annotation):
    person, sky = annotation.add_track(PERSON, score=0.5), annotation.add_track(SKY, provenance=Provenance.IMPORTED)
    for index in range(5):
        frame = blank()
        frame[: index + 1] = person.id
        frame[-2:] = sky.id
        annotation.set_frame(index, frame)
    blobs = {i: annotation.mask_store.blob(i) for i in range(5)}
    restored = Annotation.restore(5, H, W, annotation.categories, annotation.tracks_json(),
                                  {k: v.copy() for k, v in annotation.table_arrays().items()},
                                  loader=lambda i: (blobs[i], f"frame {i}"))
    assert restored.tracks == annotation.tracks
    assert restored.next_track_id == annotation.next_track_id
    for index in range(5):
        np.testing.assert_array_equal(restored.track_map(index), annotation.track_map(index))
    assert restored.track_frames(person.id) == [0, 1, 2, 3, 4]
    bad = dict(annotation.table_arrays(), owner=np.zeros(1, np.int32))
    with pytest.raises(ValueError, match="outside the key table"):
        Annotation.restore(5, H, W, annotation.categories, annotation.tracks_json(), bad, loader=None)


def test_track_json_round_trip():
    track = Track(12, CAR, True, 0.25, Provenance.EDITED, True)
    assert Track.from_json(track.to_json()) == track
