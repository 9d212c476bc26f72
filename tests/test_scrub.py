"""Scrubbing: the JPEG proxy store (LRU across videos, size limit) and the never-waiting Scrubber."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from app.core.proxy import FrameProxy, ProxyStore, proxy_size
from app.core.scrub import ProxyProgress, Scrubber
from app.core.video import VideoSource
from tests.videos import make_damaged_mjpeg, make_video, read_index

SIZE = (96, 64)


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "clip.mp4", num_frames=30, size=SIZE, gop=10)


def wait_until(condition, timeout=20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_proxy_size_keeps_aspect_and_never_upscales():
    assert proxy_size(1920, 1080) == (960, 540)
    assert proxy_size(1080, 1920) == (540, 960)
    assert proxy_size(96, 64) == (96, 64)


def test_nearest_ready_frame(tmp_path):
    proxy = FrameProxy(tmp_path, num_frames=10, full_size=SIZE)
    assert proxy.nearest_ready(5) is None and proxy.get(5) is None
    frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    for index in (2, 7):
        proxy.put(index, frame)
    assert [proxy.nearest_ready(i) for i in range(10)] == [2, 2, 2, 2, 2, 7, 7, 7, 7, 7]  # 4.5 ties go earlier
    assert proxy.missing()[0] == 0 and proxy.num_ready == 2 and not proxy.complete
    proxy.close()


def test_pass_fills_the_proxy_and_the_source_stays_exact(tmp_path, clip):
    reference = VideoSource.open(clip)
    exact = [reference.frame(i).copy() for i in range(30)]
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"))
        assert scrubber.wait_for_proxy(timeout=30)
        for index in (29, 3, 17):
            assert read_index(scrubber.proxy.get(index)) == index  # the proxy holds every frame
        for index in (29, 3, 17):  # the source's frames are the exact decode, never the proxy's JPEGs
            np.testing.assert_array_equal(source.frame(index), exact[index])
        scrubber.close()
    reference.close()


def test_show_never_waits_and_the_exact_frame_follows(tmp_path, clip):
    exact_ready = []
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"), on_exact=exact_ready.append)
        assert scrubber.wait_for_proxy(timeout=30)
        shown = scrubber.show(0)
        assert shown.exact and shown.index == 0  # the first frame is decoded when the video opens
        with source._lock:  # a long decode in progress holds the source: show() must not wait for it
            start = time.perf_counter()
            shown = scrubber.show(21)
            assert time.perf_counter() - start < 1.0
        assert not shown.exact and shown.index == 21 and shown.frame.shape == (SIZE[1], SIZE[0], 3)
        assert read_index(shown.frame) == 21
        wait_until(lambda: 21 in exact_ready)
        shown = scrubber.show(21)
        assert shown.exact
        np.testing.assert_array_equal(shown.frame, source.frame(21))
        scrubber.close()


def test_before_the_pass_reaches_a_frame_the_nearest_ready_one_is_shown(tmp_path, clip):
    store = ProxyStore(tmp_path / "proxies")
    with VideoSource.open(clip) as source:
        proxy = store.open(source)
        for index in range(8):  # as if an earlier session's pass had stopped at frame 8
            proxy.put(index, source.frame(index))
        proxy.close()
    store.max_bytes = 1  # this session's pass stores one more frame (8), then finds the store full
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, store)
        assert not scrubber.wait_for_proxy(timeout=30) and scrubber.proxy.num_ready == 9
        with source._lock:  # the exact decoder is busy
            shown = scrubber.show(20)
        assert (shown.index, shown.exact) == (8, False) and read_index(shown.frame) == 8
        scrubber.close()


def test_a_second_session_reuses_the_proxy(tmp_path, clip):
    store, _ = built_proxy(tmp_path, clip)
    with VideoSource.open(clip) as source:
        spy = PassSpy(source)
        spy.go.set()
        second = Scrubber(source, store)
        assert second.wait_for_proxy(timeout=5) and spy.decoded == []  # complete; nothing is decoded again
        assert read_index(second.proxy.get(12)) == 12
        second.close()
    os.utime(clip, ns=(0, 0))  # the file changed: its old proxy no longer applies
    with VideoSource.open(clip) as source:
        third = Scrubber(source, store)
        assert third.proxy.folder != second.proxy.folder
        third.close()


def test_least_recently_used_proxies_are_evicted(tmp_path):
    clips = [make_video(tmp_path / f"clip{i}.mp4", num_frames=20, size=SIZE, gop=10) for i in range(3)]
    store = ProxyStore(tmp_path / "proxies", max_bytes=10**9)
    folders = []
    for number, path in enumerate(clips):
        with VideoSource.open(path) as source:
            scrubber = Scrubber(source, store)
            assert scrubber.wait_for_proxy(timeout=30)
            scrubber.close()
            folders.append(scrubber.proxy.folder)
            os.utime(folders[-1] / "index.npy", (1000 + number, 1000 + number))  # distinct last-used times
    one = sum(f.stat().st_size for f in folders[0].iterdir())
    store.max_bytes = 2 * one + one // 2  # room for two
    with VideoSource.open(clips[0]) as source:  # using clip 0 again makes clip 1 the least recently used
        store.open(source).close()
    assert [f.exists() for f in folders] == [True, False, True]


def test_a_full_store_stops_the_pass_and_scrubbing_still_works(tmp_path, clip):
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies", max_bytes=1))
        assert not scrubber.wait_for_proxy(timeout=30)
        done = threading.Event()
        scrubber.on_exact = lambda index: done.set()
        scrubber.show(25)
        assert done.wait(20)
        assert scrubber.show(25).exact and read_index(scrubber.show(25).frame) == 25
        scrubber.close()


# ------------------------------------------------------------------ a model run shares its decode with the pass
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def assert_proxy_is_the_video(proxy, source) -> None:
    """Frame i's JPEG is frame i: its index pixels, and close to the exact decode everywhere."""
    assert proxy.complete
    for index, frame in source.iter_frames():
        stored = proxy.get(index)
        assert read_index(stored) == index
        assert psnr(stored, frame) > 30, index


class PassSpy:
    """Records the frames the proxy pass decodes (the scrubber's own source), held before its first one until
    ``go`` is set: the test decides when the pass may start decoding."""

    def __init__(self, source: VideoSource) -> None:
        self.decoded: list[int] = []
        self.go = threading.Event()
        real = source.iter_frames

        def iter_frames(start=0, stop=None):
            assert self.go.wait(30)
            for index, frame in real(start, stop):
                self.decoded.append(index)
                yield index, frame

        source.iter_frames = iter_frames


class Clock:
    """The clock a scrubber measures a sharing job's pace with, moved by the test: the job's pace is exactly
    what the test says, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pull(job, count: int, clock: Clock, seconds_each: float) -> list[int]:
    """The indices of the next ``count`` frames of ``job``, as a model taking ``seconds_each`` a frame."""
    indices = []
    for _ in range(count):
        indices.append(next(job)[0])
        clock.now += seconds_each
    return indices


def test_a_fast_job_decoding_a_range_fills_the_proxy_and_the_pass_decodes_only_the_rest(tmp_path):
    path = make_video(tmp_path / "long.mp4", num_frames=120, size=SIZE, gop=10)
    clock = Clock()
    with VideoSource.open(path) as source, VideoSource.open(path) as runs_video:
        spy = PassSpy(source)
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"), clock=clock)
        job = scrubber.iter_frames(runs_video, 20, 80)  # a run over frames 20-79 at 20 frames/s (a GPU)...
        assert pull(job, 40, clock, seconds_each=0.05) == list(range(20, 60))  # ...is at frame 60...
        spy.go.set()  # ...when the pass starts: frames 0-19 and 80-119, never the run's frames
        wait_until(lambda: spy.decoded[-1:] == [119])
        time.sleep(0.3)
        assert not scrubber.proxy.complete and scrubber._pass.is_alive()  # waiting for frames 60-79
        assert spy.decoded == list(range(0, 20)) + list(range(80, 120))
        job.close()  # the run is cancelled at frame 60: the pass does the rest
        assert scrubber.wait_for_proxy(timeout=30)
        assert spy.decoded == list(range(0, 20)) + list(range(80, 120)) + list(range(60, 80))
        assert_proxy_is_the_video(scrubber.proxy, runs_video)
        scrubber.close()


def test_the_pass_waits_for_a_job_covering_the_rest_and_ends_with_it(tmp_path):
    path = make_video(tmp_path / "clip.mp4", num_frames=40, size=SIZE, gop=10)
    reports = []
    clock = Clock()
    with VideoSource.open(path) as source, VideoSource.open(path) as runs_video:
        spy = PassSpy(source)
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"), on_progress=reports.append, clock=clock)
        job = scrubber.iter_frames(runs_video)  # a run over the whole video at 20 frames/s: it claims the rest
        assert pull(job, 16, clock, seconds_each=0.05) == list(range(16))
        spy.go.set()
        time.sleep(0.3)
        assert spy.decoded in ([], [0])  # at most the frame it was already decoding when the run began
        assert reports[-1] == ProxyProgress(16, 40, running=True, with_job=True)  # the rest comes from the run
        assert pull(job, 24, clock, seconds_each=0.05) == list(range(16, 40))
        assert scrubber.wait_for_proxy(timeout=30)
        assert spy.decoded in ([], [0])
        assert_proxy_is_the_video(scrubber.proxy, runs_video)
        scrubber.close()
    assert reports[0].running and reports[-1] == ProxyProgress(40, 40, running=False)


def test_a_slow_job_leaves_the_frames_beyond_its_horizon_to_the_pass(tmp_path):
    """A run on the CPU (10 s a frame) claims only the frames it reaches within a minute: the pass prepares
    the rest at its own speed and the proxy is complete long before the run ends."""
    path = make_video(tmp_path / "long.mp4", num_frames=120, size=SIZE, gop=10)
    reports = []
    clock = Clock()
    with VideoSource.open(path) as source, VideoSource.open(path) as runs_video:
        spy = PassSpy(source)
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"), on_progress=reports.append, clock=clock)
        job = scrubber.iter_frames(runs_video)
        assert pull(job, 20, clock, seconds_each=10.0) == list(range(20))  # 0.1 frames/s: 6 frames a minute
        spy.go.set()
        wait_until(lambda: spy.decoded[-1:] == [119])
        time.sleep(0.3)  # the pass leaves frames 20-25 to the run and waits for it
        assert spy.decoded in (list(range(26, 120)), [0] + list(range(26, 120)))
        assert scrubber._pass.is_alive() and reports[-1] == ProxyProgress(114, 120, running=True, with_job=True)
        assert pull(job, 6, clock, seconds_each=10.0) == list(range(20, 26))  # the run stores its 6 frames...
        assert scrubber.wait_for_proxy(timeout=30)  # ...and the proxy is complete, the run at frame 26 of 120
        decoded_by_the_pass = list(spy.decoded)
        assert [index for index, _ in job] == list(range(26, 120))  # the run goes on with its own decode
        assert spy.decoded == decoded_by_the_pass  # the pass decoded nothing more
        assert_proxy_is_the_video(scrubber.proxy, runs_video)
        scrubber.close()


def test_another_video_is_decoded_without_sharing(tmp_path, clip):
    other = make_video(tmp_path / "other.mp4", num_frames=30, size=SIZE, gop=10)
    with VideoSource.open(clip) as source, VideoSource.open(other) as other_video:
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"))
        assert scrubber.wait_for_proxy(timeout=30)
        before = {i: scrubber.proxy.get(i) for i in (0, 29)}
        assert [index for index, _ in scrubber.iter_frames(other_video, 0, 30)] == list(range(30))
        for index, picture in before.items():  # the proxy still holds the open video's frames
            np.testing.assert_array_equal(scrubber.proxy.get(index), picture)
        scrubber.close()


# ------------------------------------------------------------------ a damaged proxy is rebuilt, never shown
def built_proxy(tmp_path, clip):
    """A complete proxy of ``clip`` from an earlier session: (store, its folder)."""
    store = ProxyStore(tmp_path / "proxies")
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, store)
        assert scrubber.wait_for_proxy(timeout=30)
        scrubber.close()
    return store, scrubber.proxy.folder


def test_a_truncated_pack_is_completed_again(tmp_path, clip):
    store, folder = built_proxy(tmp_path, clip)
    pack = folder / "frames.bin"
    entries = np.load(folder / "index.npy")
    with open(pack, "r+b") as file:  # a crash lost the end of the file
        file.truncate(int(entries[20, 0]) + 5)
    with VideoSource.open(clip) as source:
        spy = PassSpy(source)
        scrubber = Scrubber(source, store)
        assert scrubber.proxy.num_ready == 20 and scrubber.proxy.missing()[0] == 20
        spy.go.set()
        assert scrubber.wait_for_proxy(timeout=30)
        assert spy.decoded == list(range(20, 30))  # only the lost frames are decoded again
        scrubber.close()
    with VideoSource.open(clip) as source:
        assert_proxy_is_the_video(store.open(source), source)


@pytest.mark.parametrize("damage", [b"", b"garbage \x00\x01" * 50, b"\x93NUMPY\x01\x00garbage"])
def test_an_unreadable_index_starts_the_proxy_over(tmp_path, clip, damage):
    store, folder = built_proxy(tmp_path, clip)
    (folder / "index.npy").write_bytes(damage)
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, store)
        assert scrubber.wait_for_proxy(timeout=30)
        assert_proxy_is_the_video(scrubber.proxy, source)
        scrubber.close()


def test_a_damaged_jpeg_is_never_shown_and_is_stored_again(tmp_path, clip):
    store, folder = built_proxy(tmp_path, clip)
    offset, length = np.load(folder / "index.npy")[12]
    with open(folder / "frames.bin", "r+b") as file:  # frame 12's bytes overwritten (same size)
        file.seek(int(offset))
        file.write(b"\x00" * int(length))
    with VideoSource.open(clip) as source:
        scrubber = Scrubber(source, store)
        assert scrubber.proxy_done  # the damage is not known until the frame is read
        with source._lock:  # the exact decoder is busy: the proxy answers
            shown = scrubber.show(12)
        assert shown is not None and shown.index != 12 and read_index(shown.frame) == shown.index  # a neighbour
        assert scrubber.wait_for_proxy(timeout=30)  # frame 12 was stored again
        stored = scrubber.proxy.get(12)
        assert read_index(stored) == 12 and psnr(stored, source.frame(12)) > 30
        scrubber.close()


@pytest.mark.parametrize("with_proxy", [True, False])
def test_frames_a_job_finds_undecodable_are_marked_on_the_shown_video(tmp_path, with_proxy):
    """A run decodes with its own source: what it finds damaged must reach the video the window shows, also
    when a complete proxy from an earlier session means no pass of this session decodes the file."""
    clip = make_damaged_mjpeg(tmp_path / "clip.avi", 12, bad=5, size=SIZE)
    store = built_proxy(tmp_path, clip)[0] if with_proxy else None
    with VideoSource.open(clip) as shown, VideoSource.open(clip) as the_jobs:
        scrubber = Scrubber(shown, store)
        assert scrubber.proxy_done is with_proxy and shown.damaged_frames == []
        assert [index for index, _ in scrubber.iter_frames(the_jobs)] == list(range(12))
        scrubber.close()
        assert shown.damaged_frames == [5]
