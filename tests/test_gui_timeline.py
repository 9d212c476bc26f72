"""The timeline's presence image: lanes, gaps between lanes, and long videos folded into columns."""

import numpy as np

from app.gui.timeline import MAX_IMAGE_COLUMNS, presence_image


def test_lanes_are_coloured_where_tracks_are_present():
    image, sub, per_column = presence_image([(np.array([0, 1, 5]), (10, 20, 30)), (np.array([2]), (200, 0, 0))], 8)
    assert sub == 4 and per_column == 1 and image.shape == (8, 8, 4)
    assert (image[0:3, [0, 1, 5], 3] == 255).all() and (image[0:3, [2, 3, 4, 6, 7], 3] == 0).all()
    assert tuple(image[1, 5, :3]) == (10, 20, 30)
    assert (image[3, :, 3] == 0).all()  # the gap row between lanes
    assert (image[4:7, 2, :3] == (200, 0, 0)).all()


def test_long_videos_fold_frames_into_columns():
    frames = 10 * MAX_IMAGE_COLUMNS
    image, _, per_column = presence_image([(np.array([frames - 1]), (1, 2, 3))], frames)
    assert image.shape[1] == MAX_IMAGE_COLUMNS and per_column == 10
    assert image[0, -1, 3] == 255 and image[0, :-1, 3].max() == 0
