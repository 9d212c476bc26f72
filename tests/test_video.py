"""VideoSource on real files encoded in the test: exact indices from pixels, seeking, rotation, damage."""

from __future__ import annotations

import random
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from app.core.video import VideoError, VideoSource
from tests.videos import draw_frame, make_image_folder, make_video, read_index

FORMATS = [
    ("mp4", "libx264", {}),
    ("mp4", "libx264", {"open_gop": True}),
    ("mkv", "libx264", {"vfr": True}),
    ("mov", "libx264", {"vfr": True}),
    ("avi", "mpeg4", {}),
    ("mov", "mjpeg", {}),
    ("webm", "libvpx-vp9", {}),
    ("mkv", "libx265", {}),
    ("mp4", "libsvtav1", {}),
    # MPEG-TS seeks by dts and lands a keyframe late when given a pts; MPEG-PS lands past its last keyframe
    ("ts", "libx264", {"open_gop": True}),
    ("m2ts", "libx264", {"open_gop": True}),
    ("mpg", "mpeg2video", {}),
]


def demuxed_pts(path) -> list[int]:
    with av.open(str(path)) as container:
        return [p.pts for p in container.demux(container.streams.video[0]) if p.size]


def plain_decode(path) -> list[np.ndarray]:
    """Every frame as a plain sequential PyAV decode of the whole file gives it: the reference."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.mark.parametrize(("suffix", "codec", "options"), FORMATS,
                         ids=[f"{c}.{s}{'-opengop' if o.get('open_gop') else ''}" for s, c, o in FORMATS])
def test_random_access_equals_sequential_decode(tmp_path, suffix, codec, options):
    path = make_video(tmp_path / f"clip.{suffix}", num_frames=20, codec=codec, gop=5, **options)
    reference = plain_decode(path)
    assert [read_index(f) for f in reference] == list(range(20))  # the file itself is complete
    with VideoSource.open(path) as source:
        assert (source.num_frames, source.width, source.height) == (20, 96, 64)
        assert source.stems[:2] == ["00000000", "00000001"]
        sequential = list(source.iter_frames())
        assert [i for i, _ in sequential] == list(range(20))
        for (_, frame), expected in zip(sequential, reference, strict=True):
            np.testing.assert_array_equal(frame, expected)
        order = list(range(20))
        random.Random(0).shuffle(order)
        for index in order:
            frame = source.frame(index)
            assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
            np.testing.assert_array_equal(frame, reference[index])
        assert source.damaged_frames == []
    with VideoSource.open(path) as source:  # stepping back from the end, from a fresh decoder
        for index in range(19, -1, -1):
            np.testing.assert_array_equal(source.frame(index), reference[index])
        assert source.damaged_frames == []


def test_bframes_really_reorder_packets(tmp_path):
    """The B-frame clips used above do have decode order != display order (else the test proves little)."""
    pts = demuxed_pts(make_video(tmp_path / "b.mp4", num_frames=12, bframes=True))
    assert pts != sorted(pts)


def test_variable_frame_rate_timestamps(tmp_path):
    time_base = Fraction(1, 1000)
    pts = [0, 40, 140, 160, 300, 310, 500, 540]
    path = make_video(tmp_path / "vfr.mkv", num_frames=len(pts), pts=pts, time_base=time_base)
    with VideoSource.open(path) as source:
        assert source.timestamps == pytest.approx([p / 1000 for p in pts])
        assert source.fps == pytest.approx((len(pts) - 1) / 0.54)
        assert [read_index(source.frame(i)) for i in (7, 2, 5, 0, 3)] == [7, 2, 5, 0, 3]


def test_duplicated_pts_get_distinct_indices_in_display_order(tmp_path):
    """Remux an intra-only clip giving pairs of frames the same pts (Matroska accepts it)."""
    source_path = make_video(tmp_path / "src.mkv", num_frames=6, codec="mjpeg")
    path = tmp_path / "dup.mkv"
    new_pts = [0, 40, 40, 80, 120, 120]
    with av.open(str(source_path)) as src, av.open(str(path), "w") as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        packets = [p for p in src.demux(in_stream) if p.size]
        for packet, pts in zip(packets, new_pts):
            packet.stream, packet.time_base = out_stream, Fraction(1, 1000)
            packet.pts = packet.dts = pts
            dst.mux(packet)
    assert demuxed_pts(path) == new_pts
    with VideoSource.open(path, cache_bytes=0) as source:
        assert source.num_frames == 6
        assert source.timestamps == pytest.approx([0, 0.04, 0.04, 0.08, 0.12, 0.12])
        assert [read_index(f) for _, f in source.iter_frames()] == list(range(6))
        assert [read_index(source.frame(i)) for i in (5, 2, 1, 4, 3, 0)] == [5, 2, 1, 4, 3, 0]


def test_stepping_backwards_frame_by_frame_is_exact(tmp_path):
    """The GUI's "previous frame" key: every step lands on the exact frame, cache off."""
    path = make_video(tmp_path / "clip.mp4", num_frames=40, gop=15)
    with VideoSource.open(path, cache_bytes=0) as source:
        assert [read_index(source.frame(i)) for i in range(39, -1, -1)] == list(range(39, -1, -1))
        assert [read_index(source.frame(i)) for i in range(0, 40, 3)] == list(range(0, 40, 3))


def test_raw_elementary_stream_without_timestamps(tmp_path):
    """A raw .h264 stream has no pts/dts at all (and B-frames): decoded from the start, output order = index."""
    path = make_video(tmp_path / "clip.h264", num_frames=16, gop=5)
    assert set(demuxed_pts(path)) == {None}
    with VideoSource.open(path, cache_bytes=0) as source:
        assert source.num_frames == 16 and source.fps == pytest.approx(25)
        assert source.timestamps[:3] == pytest.approx([0, 0.04, 0.08])
        assert [read_index(f) for _, f in source.iter_frames(3, 9)] == list(range(3, 9))
        assert [read_index(source.frame(i)) for i in (12, 2, 15, 0, 7)] == [12, 2, 15, 0, 7]


def test_sub_range_starting_between_keyframes(tmp_path):
    path = make_video(tmp_path / "clip.mp4", num_frames=30, gop=10)
    with VideoSource.open(path) as source:
        got = [(i, read_index(f)) for i, f in source.iter_frames(13, 22)]
        assert got == [(i, i) for i in range(13, 22)]
        assert list(source.iter_frames(25, 100))[-1][0] == 29
        assert list(source.iter_frames(5, 5)) == []


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path, rotation):
    path = make_video(tmp_path / "phone.mp4", num_frames=6, size=(96, 64), rotation=rotation)
    with VideoSource.open(path) as source:
        assert (source.width, source.height) == (96, 64)
        assert source.rotation == rotation
        for index in (4, 1):
            frame = source.frame(index)
            assert frame.shape == (64, 96, 3)
            assert read_index(frame) == index
            assert np.abs(frame.astype(int) - draw_frame(index, (96, 64))).mean() < 8


def test_cache_returns_shared_read_only_frames(tmp_path):
    with VideoSource.open(make_video(tmp_path / "clip.mp4", num_frames=5)) as source:
        first = source.frame(3)
        assert source.frame(3) is first
        with pytest.raises(ValueError):
            first[0, 0, 0] = 1
        with pytest.raises(IndexError):
            source.frame(5)


def test_iterating_in_a_thread_while_seeking(tmp_path):
    """Inference iterates in a worker while the GUI seeks: both must stay exact."""
    path = make_video(tmp_path / "clip.mp4", num_frames=24, gop=6)
    with VideoSource.open(path) as source:
        seen = []
        worker = threading.Thread(target=lambda: seen.extend(read_index(f) for _, f in source.iter_frames()))
        worker.start()
        for index in (20, 3, 17, 9, 0, 23):
            assert read_index(source.frame(index)) == index
        worker.join()
        assert seen == list(range(24))


def test_image_folder_natural_order_and_stems(tmp_path):
    stems = ["frame1", "frame2", "frame10", "frame11"]
    make_image_folder(tmp_path / "images" / "vid", size=(96, 64), stems=stems, ext=".jpg")
    with VideoSource.open(tmp_path / "images" / "vid", fps=10) as source:
        assert source.stems == stems
        assert (source.num_frames, source.width, source.height, source.fps) == (4, 96, 64, 10.0)
        assert source.timestamps == pytest.approx([0.0, 0.1, 0.2, 0.3])
        assert [read_index(source.frame(i)) for i in (3, 0, 2)] == [3, 0, 2]
        assert [read_index(f) for _, f in source.iter_frames()] == [0, 1, 2, 3]


def test_image_folder_damaged_and_odd_sized_images_are_reported(tmp_path):
    folder = tmp_path / "vid"
    paths = make_image_folder(folder, num_frames=5, size=(96, 64))
    paths[2].write_bytes(b"not a png")
    cv2.imwrite(str(paths[3]), np.zeros((10, 10, 3), np.uint8))
    with VideoSource.open(folder) as source:
        got = [(i, read_index(f)) for i, f in source.iter_frames()]
        assert got == [(0, 0), (1, 1), (2, 1), (3, 1), (4, 4)]
        assert source.damaged_frames == [2, 3]
        assert read_index(source.frame(3)) == 1


def test_damaged_middle_frame_is_skipped_and_reported(tmp_path):
    """MJPEG packets are independent: wiping one packet's data damages exactly that frame."""
    path = make_video(tmp_path / "clip.avi", num_frames=10, codec="mjpeg")
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    pos, size = packets[5]
    data = bytearray(path.read_bytes())
    data[pos + size // 4:pos + size] = bytes(size - size // 4)
    path.write_bytes(bytes(data))
    with VideoSource.open(path) as source:
        assert source.num_frames == 10
        got = [(i, read_index(f)) for i, f in source.iter_frames()]
        assert got == [(i, 4 if i == 5 else i) for i in range(10)]
        assert source.damaged_frames == [5]
    with VideoSource.open(path) as fresh:  # random access reports it too
        assert read_index(fresh.frame(5)) == 4 and read_index(fresh.frame(6)) == 6
        assert fresh.damaged_frames == [5]


def test_truncated_matroska_keeps_readable_frames(tmp_path):
    path = make_video(tmp_path / "clip.mkv", num_frames=20, size=(96, 64))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with VideoSource.open(path) as source:
        assert 0 < source.num_frames < 20
        assert [read_index(f) for _, f in source.iter_frames()][: source.num_frames - 1] == list(
            range(source.num_frames - 1))


def _zero_frame_mp4(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    return path


def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("kind", ["missing", "text", "random_bytes", "truncated_mp4", "zero_frames", "audio_only",
                                  "empty_folder"])
def test_unusable_inputs_raise_video_error(tmp_path, kind):
    path = tmp_path / "input.mp4"
    if kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("these are not the frames you are looking for\n" * 50)
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "truncated_mp4":
        make_video(path, num_frames=10)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "zero_frames":
        _zero_frame_mp4(path)
    elif kind == "audio_only":
        path = _audio_only(tmp_path / "sound.wav")
    elif kind == "empty_folder":
        path = tmp_path / "frames"
        path.mkdir()
    with pytest.raises(VideoError) as error:
        VideoSource.open(path)
    assert str(path) in str(error.value)
