"""Track colours and overlay rendering."""

from __future__ import annotations

import colorsys
import subprocess
import sys

import numpy as np
import pytest

from app.core.colors import (
    OVERLAY_MODES,
    boundary_mask,
    overlay,
    track_color,
    visible_mask,
)


def test_colors_are_deterministic_across_processes():
    code = "from app.core.colors import track_color; print([track_color(i) for i in (1, 2, 77, 10**6)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert other.strip() == str([track_color(i) for i in (1, 2, 77, 10**6)])


def test_void_is_black_and_tracks_are_bright_and_distinct():
    assert track_color(0) == (0, 0, 0)
    colors = [track_color(i) for i in range(1, 201)]
    assert all(isinstance(c, tuple) and len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colors)
    assert all(max(c) >= 0.72 * 255 - 1 for c in colors)  # never near-black
    rgb = np.array(colors, float)
    # neighbours in id (created one after another, often in the same frame) must differ clearly
    for gap in (1, 2, 3, 5, 8, 13):
        assert np.linalg.norm(rgb[gap:] - rgb[:-gap], axis=1).min() > 40, gap
    # the first 30 ids (a typical video) are pairwise distinguishable
    first = rgb[:30]
    distances = np.linalg.norm(first[:, None] - first[None], axis=2) + np.eye(30) * 1e9
    assert distances.min() > 25


def test_hues_spread_over_the_wheel():
    hues = [colorsys.rgb_to_hsv(*(v / 255 for v in track_color(i)))[0] for i in range(1, 13)]
    assert np.histogram(hues, bins=6, range=(0, 1))[0].min() >= 1


def test_full_fill_paints_the_track_colors_up_to_large_ids():
    track_map = np.array([[0, 5], [300, 5]], np.int32)
    frame = np.full((2, 2, 3), 7, np.uint8)
    picture = overlay(frame, track_map, alpha=1.0, mode="fill")
    assert tuple(picture[1, 0]) == track_color(300) and tuple(picture[0, 1]) == track_color(5)
    assert tuple(picture[0, 0]) == (7, 7, 7)  # void keeps the frame


def test_visible_and_boundary_masks():
    track_map = np.zeros((6, 8), np.int32)
    track_map[1:5, 1:4] = 2
    track_map[1:5, 4:7] = 9
    assert visible_mask(track_map).sum() == 24
    assert visible_mask(track_map, visible=[2, 50]).sum() == 12
    assert visible_mask(track_map, hidden={9}).sum() == 12
    edge = boundary_mask(track_map, width=1)
    assert edge[2, 1] and edge[2, 3] and edge[2, 4] and not edge[2, 2] and not edge[0, 0]


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    track_map = np.zeros((40, 60), np.int32)
    track_map[5:25, 5:25] = 4
    track_map[20:35, 30:55] = 11
    return frame, track_map


def test_fill_blends_track_colors_on_shown_tracks_only(scene):
    frame, track_map = scene
    out = overlay(frame, track_map, alpha=0.5, mode="fill", hidden={11})
    inside = track_map == 4
    expected = frame[inside] * 0.5 + np.array(track_color(4)) * 0.5
    assert np.abs(out[inside] - expected).max() <= 1
    np.testing.assert_array_equal(out[~inside], frame[~inside])  # void and the hidden track untouched
    assert out is not frame and np.shares_memory(out, frame) is False


def test_alpha_zero_and_one(scene):
    frame, track_map = scene
    np.testing.assert_array_equal(overlay(frame, track_map, alpha=0.0, mode="fill"), frame)
    solid = overlay(frame, track_map, alpha=1.0, mode="fill")
    assert tuple(solid[10, 10]) == track_color(4)


def test_contour_draws_only_boundaries(scene):
    frame, track_map = scene
    out = overlay(frame, track_map, alpha=1.0, mode="contour", contour_width=1)
    assert tuple(out[5, 10]) == track_color(4)  # top edge of track 4
    np.testing.assert_array_equal(out[12, 12], frame[12, 12])  # interior
    np.testing.assert_array_equal(out[0, 0], frame[0, 0])  # void


def test_fade_and_cutout_touch_only_the_background(scene):
    frame, track_map = scene
    objects = track_map > 0
    faded = overlay(frame, track_map, alpha=0.5, mode="fade", background=(0, 0, 0))
    np.testing.assert_array_equal(faded[objects], frame[objects])
    assert np.abs(faded[~objects] - frame[~objects] * 0.5).max() <= 1
    cut = overlay(frame, track_map, mode="cutout", visible=[11], background=(0, 255, 0))
    assert (cut[track_map != 11] == (0, 255, 0)).all()
    np.testing.assert_array_equal(cut[track_map == 11], frame[track_map == 11])


def test_every_mode_renders_and_bad_input_is_refused(scene):
    frame, track_map = scene
    for mode in OVERLAY_MODES:
        assert overlay(frame, track_map, mode=mode).shape == frame.shape
    with pytest.raises(ValueError, match="mode"):
        overlay(frame, track_map, mode="sparkle")
    with pytest.raises(ValueError, match="size"):
        overlay(frame, track_map[:10])
    with pytest.raises(ValueError, match="negative"):
        overlay(frame, track_map - 1)
