"""Scrubbing in the window: a frame not decoded yet shows from the proxy at once, the exact one follows."""

from __future__ import annotations

import numpy as np

from tests.gui_helpers import errors, shown_picture, video_path, window  # noqa: F401
from tests.videos import make_video, read_index


def test_scrubbing_shows_the_proxy_at_once_and_then_the_exact_frame(window, tmp_path, qtbot):
    path = make_video(tmp_path / "longgop.mp4", num_frames=40, size=(96, 64), gop=40)
    window.open_path(path)
    c = window.controller
    assert read_index(shown_picture(window.view)) == 0  # the first frame is there as soon as the video opens
    assert c.scrubber.wait_for_proxy(timeout=30)
    c.set_display(opacity=0.0)
    with c.video._lock:  # the exact decoder is busy (as with a long keyframe interval): the UI must not wait
        c.seek(33)
        assert c.video.cached(33) is None  # not decoded exactly yet...
        assert read_index(shown_picture(window.view)) == 33  # ...but shown: the proxy's picture of frame 33
    qtbot.waitUntil(lambda: c.video.cached(33) is not None, timeout=20000)
    qtbot.waitUntil(lambda: np.array_equal(shown_picture(window.view), c.video.cached(33)), timeout=20000)
    np.testing.assert_array_equal(c.frame(), c.video.cached(33))  # painting / exports read the exact frame


def test_a_large_video_opens_in_the_background_showing_its_first_frame(window, tmp_path, qtbot, monkeypatch):
    """The frame index of a long video takes seconds to build: the window stays responsive meanwhile."""
    import threading

    from PySide6.QtCore import QTimer

    from app.core.video import VideoSource

    monkeypatch.setattr("app.core.opening.BACKGROUND_OPEN_BYTES", 0)  # this small clip stands for a long one
    indexing = threading.Event()
    real_open = VideoSource.open

    def slow_open(*args, **kwargs):  # a slow disk: the index is ready when the test says so
        assert indexing.wait(20)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(VideoSource, "open", staticmethod(slow_open))
    path = make_video(tmp_path / "long.mp4", num_frames=20, size=(96, 64), gop=10)
    window.open_path(path)  # returns while the index is still being built
    assert window.controller.video is None and window.progress.isVisible()
    ticked = []
    QTimer.singleShot(10, lambda: ticked.append(True))
    qtbot.waitUntil(lambda: ticked == [True], timeout=5000)  # the event loop runs: the UI is not blocked
    qtbot.waitUntil(lambda: window.view.pixmap_item.pixmap().width() == 96, timeout=5000)
    assert read_index(shown_picture(window.view)) == 0  # the first frame is shown before the index is ready
    assert window.controller.video is None
    indexing.set()
    qtbot.waitUntil(lambda: window.controller.video is not None, timeout=20000)
    assert window.controller.num_frames == 20 and not window.progress.isVisible()
    assert read_index(shown_picture(window.view)) == 0


def test_an_exact_frame_announced_after_closing_is_ignored(window, video_path, qtbot):
    window.open_path(video_path)
    window.controller.stop_background()  # as when the window closes
    window.controller.exact_frame_ready.emit(0)  # a signal still queued from the stopped loader
    assert read_index(shown_picture(window.view)) == 0


def gate_the_proxy_pass(monkeypatch, per_frame_s: float = 0.0):
    """The proxy pass's decode (on its own thread) waits for the returned event, then takes ``per_frame_s`` a
    frame (a slow decoder); other decodes (exact frames, a model run) are untouched. Returns (event, decoded)."""
    import threading
    import time

    from app.core.video import VideoSource

    go, decoded = threading.Event(), []
    real = VideoSource.iter_frames

    def iter_frames(self, start=0, stop=None):
        if threading.current_thread().name != "proxy-pass":
            yield from real(self, start, stop)
            return
        assert go.wait(60)
        for index, frame in real(self, start, stop):
            decoded.append(index)
            time.sleep(per_frame_s)
            yield index, frame

    monkeypatch.setattr(VideoSource, "iter_frames", iter_frames)
    return go, decoded


def test_the_status_bar_shows_how_far_scrubbing_is_prepared_until_it_is(window, tmp_path, qtbot, monkeypatch):
    import re

    from app.core.scrub import ProxyProgress

    go, _ = gate_the_proxy_pass(monkeypatch, per_frame_s=0.03)
    path = make_video(tmp_path / "long.mp4", num_frames=60, size=(96, 64), gop=60)
    window.open_path(path)
    label = window.scrub_status
    qtbot.waitUntil(lambda: label.isVisible() and label.text() == "Preparing scrubbing 0 %", timeout=10000)
    assert label in window.statusBar().findChildren(type(label))
    go.set()
    percents = []

    def partly_prepared() -> bool:
        match = re.fullmatch(r"Preparing scrubbing (\d+) %", label.text())
        percents.append(int(match[1]))
        return label.isVisible() and 0 < percents[-1] < 100

    qtbot.waitUntil(partly_prepared, timeout=20000)
    qtbot.waitUntil(lambda: not label.isVisible(), timeout=30000)  # gone once every frame is ready
    assert window.controller.scrubber.proxy_done
    assert percents == sorted(percents)
    window.open_path(path)  # opened again: the proxy is complete, nothing to show
    qtbot.wait(200)
    assert not label.isVisible()
    label.show_progress(ProxyProgress(450, 900, running=True, with_job=True))  # a run decodes the frames left
    assert label.isVisible() and label.text() == "Preparing scrubbing 50 % as DVIS runs"


def test_a_run_in_the_window_fills_the_proxy_instead_of_a_second_decode(window, tmp_path, qtbot, monkeypatch):
    from app.core.inference import RunRequest

    go, decoded = gate_the_proxy_pass(monkeypatch)  # the pass waits at its first frame until the run has ended
    path = make_video(tmp_path / "clip.mp4", num_frames=16, size=(96, 64), gop=16)
    window.open_path(path)
    c = window.controller
    with qtbot.waitSignal(window.runner.returned, timeout=120_000):
        window.start_inference(RunRequest(path, model="preset:bundled_small", torch_threads=1, chunk_size=4))
    assert c.scrubber.proxy.complete  # filled by the run's decode
    go.set()
    assert c.scrubber.wait_for_proxy(timeout=30) and decoded in ([], [0])
    qtbot.waitUntil(lambda: not window.scrub_status.isVisible(), timeout=5000)
    for index in (3, 15):
        assert read_index(c.scrubber.proxy.get(index)) == index
