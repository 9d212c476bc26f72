"""Image-aware fill: flood fill on the frame's colours within a tolerance, painted as one reversible edit."""

import json

import numpy as np
import pytest

from app.core.annotation import Annotation, Provenance
from app.core.edits import Edit, SetTrackLocked
from app.core.errors import AnnotationError
from app.core.image_fill import colour_region, image_fill
from dvis_models.categories import vipseg_categories

PERSON, CAR = 60, 48
H, W = 48, 64


def noisy_image(seed: int = 0) -> np.ndarray:
    """Blue background, an orange box at rows 12-35, columns 20-47; Gaussian noise (sigma 5) on every channel."""
    image = np.zeros((H, W, 3), np.float64)
    image[:] = (40, 110, 200)
    image[12:36, 20:48] = (210, 120, 30)
    noise = np.random.default_rng(seed).normal(0, 5, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def box() -> np.ndarray:
    inside = np.zeros((H, W), bool)
    inside[12:36, 20:48] = True
    return inside


def test_colour_region_follows_the_colours_not_the_noise():
    image = noisy_image()
    image.flags.writeable = False  # as video frames are
    np.testing.assert_array_equal(colour_region(image, 30, 20, tolerance=40), box())
    np.testing.assert_array_equal(colour_region(image, 2, 2, tolerance=40), ~box())
    tight = colour_region(image, 30, 20, tolerance=3)  # below the noise: only a speckled part of the box
    assert 0 < tight.sum() < 0.5 * box().sum()
    assert not (tight & ~box()).any()
    assert colour_region(image, 30, 20, tolerance=255).all()  # every colour is within 255


def test_bad_fill_points_and_tolerances_say_what_to_do():
    with pytest.raises(AnnotationError, match="outside the 64x48 frame"):
        colour_region(noisy_image(), 64, 3, 10)
    with pytest.raises(AnnotationError, match="use 0 to 255"):
        colour_region(noisy_image(), 3, 3, 300)


def annotation_with_locked_car() -> Annotation:
    """Track 1 a person (unlocked) on the box's left part, track 2 a locked car on its right part, on frame 1."""
    annotation = Annotation(3, H, W, vipseg_categories())
    annotation.add_track(PERSON, provenance=Provenance.MODEL)
    annotation.add_track(CAR, provenance=Provenance.MODEL)
    frame = np.zeros((H, W), np.int32)
    frame[12:20, 20:30] = 1
    frame[12:36, 40:48] = 2
    annotation.set_frame(1, frame)
    annotation.apply(SetTrackLocked(2, True))
    return annotation


def test_image_fill_paints_the_region_skips_locked_tracks_and_undoes_byte_for_byte():
    annotation = annotation_with_locked_car()
    new = annotation.add_track(PERSON).id
    blobs = [annotation.mask_store.blob(i) for i in range(annotation.num_frames)]
    before = annotation.track_map(1).copy()
    edit = image_fill(noisy_image(), 1, new, 30, 30, tolerance=40)
    stored = Edit.from_json(json.loads(json.dumps(edit.to_json())))  # as replayed from the project history
    inverse = annotation.apply(stored)
    after = annotation.track_map(1)
    locked = before == 2
    np.testing.assert_array_equal(after[box() & ~locked], new)  # the person's pixels there are taken too
    np.testing.assert_array_equal(after[locked], 2)
    np.testing.assert_array_equal(after[~box()], before[~box()])
    assert annotation.tracks[new].provenance == Provenance.EDITED
    annotation.apply(Edit.from_json(json.loads(json.dumps(inverse.to_json()))))
    assert [annotation.mask_store.blob(i) for i in range(annotation.num_frames)] == blobs
    np.testing.assert_array_equal(annotation.track_map(1), before)


def test_image_fill_into_a_locked_track_is_refused():
    annotation = annotation_with_locked_car()
    with pytest.raises(AnnotationError, match="Track 2 is locked"):
        annotation.apply(image_fill(noisy_image(), 1, 2, 30, 30, tolerance=40))
