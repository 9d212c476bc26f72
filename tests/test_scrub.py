"""Scrubbing: the JPEG proxy store (LRU across videos, size limit) and the never-waiting Scrubber."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from app.core.proxy import FrameProxy, ProxyStore, proxy_size
from app.core.scrub import Scrubber
from app.core.video import VideoSource
from tests.videos import make_video, read_index

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
    assert proxy.first_missing() == 0 and proxy.num_ready == 2 and not proxy.complete
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
    store = ProxyStore(tmp_path / "proxies")
    with VideoSource.open(clip) as source:
        first = Scrubber(source, store)
        assert first.wait_for_proxy(timeout=30)
        first.close()
    with VideoSource.open(clip) as source:
        second = Scrubber(source, store)
        assert second.proxy_done and second._pass is None  # nothing to decode again
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
