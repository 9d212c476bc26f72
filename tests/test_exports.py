"""Editor exports on a real encoded video and a real Annotation; outputs are read back with cv2 / PyAV."""

from __future__ import annotations

import errno
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from job_helpers import cancel_after, run_reporting

from app.core.annotation import Annotation
from app.core.colors import overlay
from app.core.edits import DeleteTrack
from app.core.errors import Cancelled
from app.core.exports import (
    ExportError,
    class_names,
    export_alpha_video,
    export_cutouts,
    export_overlay_video,
    export_track_masks,
)
from app.core.progress import run_job
from app.core.video import VideoSource
from dvis_models import atomic
from dvis_models.categories import vipseg_categories
from tests.videos import make_video

CAR, PERSON = 7, 3  # two track ids


def make_annotation(num_frames: int, height: int, width: int) -> Annotation:
    """Two thing tracks: a rectangle moving right, a fixed disc (touching it in late frames)."""
    categories = vipseg_categories()
    annotation = Annotation(num_frames, height, width, categories)
    thing = categories.things[0].id
    annotation.add_track(thing, track_id=CAR)
    annotation.add_track(thing, track_id=PERSON)
    for index in range(num_frames):
        track_map = np.zeros((height, width), np.int32)
        cv2.circle(track_map, (width * 3 // 4, height // 2), height // 5, PERSON, -1)
        track_map[height // 3:height * 2 // 3, 2 + 4 * index:12 + 4 * index] = CAR
        annotation.set_frame(index, track_map)
    return annotation


@pytest.fixture
def clip(tmp_path):
    source = VideoSource.open(make_video(tmp_path / "clip.mp4", num_frames=10, size=(96, 64)))
    yield source, make_annotation(10, 64, 96)
    source.close()


def read_video(path) -> tuple[list[np.ndarray], list[float], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        rate = float(stream.average_rate)
    return [f for _, f in frames], [t for t, _ in frames], rate


def test_track_masks_are_exact_binary_pngs(clip, tmp_path):
    _, annotation = clip
    result, calls = run_reporting(export_track_masks(annotation, [CAR, PERSON], range(2, 6), tmp_path / "masks"))
    assert (result.frames, len(result.paths)) == (4, 8)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert sorted(p.name for p in (tmp_path / "masks" / "track_0007").iterdir()) == [
        f"{i:08d}.png" for i in range(2, 6)]
    for index in range(2, 6):
        for track_id in (CAR, PERSON):
            png = cv2.imread(str(tmp_path / "masks" / f"track_{track_id:04d}" / f"{index:08d}.png"),
                             cv2.IMREAD_UNCHANGED)
            assert png.dtype == np.uint8 and png.ndim == 2
            np.testing.assert_array_equal(png, (annotation.track_map(index) == track_id) * 255)


def test_per_track_folders_name_the_class_and_hold_only_frames_where_the_track_is(clip, tmp_path):
    _, annotation = clip
    annotation.apply(DeleteTrack(CAR, 3, 6))  # the car is absent in frames 3-5
    names = class_names(annotation) | {PERSON: "traffic light/sign"}  # made safe for a folder name
    result = run_job(export_track_masks(annotation, [CAR, PERSON], range(10), tmp_path / "masks", class_names=names))
    car_class = annotation.categories.name(annotation.tracks[CAR].category_id)
    car, person = tmp_path / "masks" / f"track_0007_{car_class}", tmp_path / "masks" / "track_0003_traffic_light_sign"
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == sorted([car.name, person.name])
    assert sorted(p.name for p in car.iterdir()) == [f"{i:08d}.png" for i in (0, 1, 2, 6, 7, 8, 9)]
    assert len(list(person.iterdir())) == 10 and result.frames == 10 and len(result.paths) == 17

    every = run_job(export_track_masks(annotation, [CAR], range(10), tmp_path / "all", all_frames=True))
    assert len(every.paths) == 10
    assert not cv2.imread(str(tmp_path / "all" / "track_0007" / "00000004.png"), cv2.IMREAD_UNCHANGED).any()


def test_cutouts_skip_frames_where_the_track_is_absent(clip, tmp_path):
    source, annotation = clip
    annotation.apply(DeleteTrack(PERSON, 0, 8))
    run_job(export_cutouts(annotation, source, [PERSON], range(10), tmp_path / "cut"))
    assert sorted(p.name for p in (tmp_path / "cut" / "track_0003").iterdir()) == ["00000008.png", "00000009.png"]


def test_combined_masks_hold_the_union_and_use_given_stems(clip, tmp_path):
    _, annotation = clip
    stems = [f"frame_{i}" for i in range(10)]
    run_job(export_track_masks(annotation, {CAR, PERSON}, [9], tmp_path / "union", stems=stems, combine=True))
    png = cv2.imread(str(tmp_path / "union" / "frame_9.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png, (annotation.track_map(9) > 0) * 255)


def test_cutouts_are_rgba_with_source_pixels(clip, tmp_path):
    source, annotation = clip
    run_job(export_cutouts(annotation, source, [PERSON], [0, 1, 9], tmp_path / "cut"))  # 1 -> 9: a second decode run
    for index in (0, 1, 9):
        bgra = cv2.imread(str(tmp_path / "cut" / "track_0003" / f"{index:08d}.png"), cv2.IMREAD_UNCHANGED)
        rgba = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGBA)
        np.testing.assert_array_equal(rgba[..., :3], source.frame(index))
        np.testing.assert_array_equal(rgba[..., 3], (annotation.track_map(index) == PERSON) * 255)


def test_cutouts_scale_masks_made_at_another_resolution(clip, tmp_path):
    source, _ = clip
    small = make_annotation(10, 32, 48)
    run_job(export_cutouts(small, source, [CAR], [1], tmp_path / "cut", combine=True))
    alpha = cv2.imread(str(tmp_path / "cut" / "00000001.png"), cv2.IMREAD_UNCHANGED)[..., 3]
    expected = cv2.resize(small.track_map(1), (96, 64), interpolation=cv2.INTER_NEAREST) == CAR
    np.testing.assert_array_equal(alpha, expected * 255)


def test_alpha_video_matches_masks_and_source_rate(clip, tmp_path):
    source, annotation = clip
    result = run_job(export_alpha_video(annotation, source, [CAR], range(10), tmp_path / "out" / "matte.mp4"))
    assert result.paths == [tmp_path / "out" / "matte.mp4"]
    frames, times, rate = read_video(result.paths[0])
    assert len(frames) == 10 and rate == pytest.approx(source.fps)
    assert times == pytest.approx(source.timestamps)
    for index, frame in enumerate(frames):
        expected = annotation.track_map(index) == CAR
        white = frame.mean(axis=2) > 127
        assert (white == expected).mean() > 0.99
        assert frame[expected].mean() > 245 and frame[~expected].mean() < 10  # full swing after range mapping
    assert list((tmp_path / "out").iterdir()) == [result.paths[0]]  # no temporary file left


def test_overlay_video_matches_overlay_rendering(clip, tmp_path):
    source, annotation = clip
    frames_out = [1, 2, 3, 7]  # a gap: timing must keep it
    result = run_job(export_overlay_video(annotation, source, None, frames_out, tmp_path / "overlay.mov", mode="fill"))
    frames, times, _ = read_video(result.paths[0])
    assert len(frames) == 4
    assert times == pytest.approx([source.timestamps[i] - source.timestamps[1] for i in frames_out])
    for got, index in zip(frames, frames_out):
        expected = overlay(source.frame(index), annotation.track_map(index), 0.5, "fill")
        assert np.abs(got.astype(int) - expected).mean() < 6


def test_odd_sized_variable_rate_source(tmp_path):
    pts = [0, 30, 100, 130, 260, 270]
    path = make_video(tmp_path / "odd.mkv", num_frames=6, size=(95, 63), codec="mjpeg",
                      pts=pts, time_base=Fraction(1, 1000))
    with VideoSource.open(path) as source:
        assert (source.width, source.height) == (95, 63)
        annotation = make_annotation(6, 63, 95)
        result = run_job(export_overlay_video(annotation, source, [CAR], range(6), tmp_path / "odd.mp4"))
    frames, times, _ = read_video(result.paths[0])
    assert frames[0].shape == (64, 96, 3)  # padded to even for 4:2:0
    assert times == pytest.approx([p / 1000 for p in pts], abs=1e-4)


def test_cancel_stops_and_leaves_no_partial_video(clip, tmp_path):
    source, annotation = clip
    with pytest.raises(Cancelled):
        cancel_after(export_alpha_video(annotation, source, [CAR], range(10), tmp_path / "exp" / "matte.mp4"), 3)
    assert list((tmp_path / "exp").iterdir()) == []  # neither the video nor its temporary file

    with pytest.raises(Cancelled):
        cancel_after(export_track_masks(annotation, [CAR], range(10), tmp_path / "m"), 3)
    written = sorted((tmp_path / "m" / "track_0007").iterdir())
    assert [p.name for p in written] == [f"{i:08d}.png" for i in range(len(written))] and len(written) <= 3
    for png in written:  # the frames written before the cancel are complete
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).shape == (annotation.height, annotation.width)


def test_unwritable_destination_is_a_clear_export_error(clip, tmp_path):
    source, annotation = clip
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        run_job(export_track_masks(annotation, [CAR], [0], blocker / "masks"))
    with pytest.raises(ExportError, match="not a folder"):
        run_job(export_overlay_video(annotation, source, [CAR], [0], blocker / "out.mp4"))


def test_full_disk_is_a_clear_export_error(clip, tmp_path, monkeypatch):
    """ENOSPC comes from the OS at fsync time; simulate exactly that OS answer."""
    _, annotation = clip

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", no_space)
    with pytest.raises(ExportError, match="disk is full"):
        run_job(export_track_masks(annotation, [CAR], [0], tmp_path / "masks"))
    assert list((tmp_path / "masks" / "track_0007").iterdir()) == []  # no temp file, no partial PNG


@pytest.mark.parametrize(("tracks", "frames", "name", "message"), [
    ([], [0], "a.mp4", "No tracks"),
    ([CAR], [], "a.mp4", "No frames"),
    ([CAR], [3, 12], "a.mp4", "outside"),
    ([CAR], [4, 2], "a.mp4", "increasing"),
    ([CAR], [0], "a.gif", "H.264"),
])
def test_bad_choices_are_rejected(clip, tmp_path, tracks, frames, name, message):
    source, annotation = clip
    with pytest.raises(ExportError, match=message):
        run_job(export_alpha_video(annotation, source, tracks, frames, tmp_path / name))


def test_frames_beyond_the_annotation_are_rejected(clip, tmp_path):
    source, _ = clip
    shorter = make_annotation(6, 64, 96)
    with pytest.raises(ExportError, match="outside"):
        run_job(export_cutouts(shorter, source, [CAR], range(4, 8), tmp_path / "cut"))
    with pytest.raises(ExportError, match="outside"):
        run_job(export_track_masks(shorter, [CAR], [6], tmp_path / "masks"))
