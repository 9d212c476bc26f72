"""Opening in the window: a large video or project opens on the opener's worker while the UI stays responsive,
Cancel (Ctrl+.) stops an open, and a newer open replaces an older one (whose video is closed, never shown)."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt

from app.core import opening
from app.core.video import VideoFileSource, VideoSource
from tests.gui_helpers import FRAMES, LoopGaps, errors, load_scripted, shown_picture, video_path, window  # noqa: F401
from tests.videos import make_video, read_index


@pytest.fixture
def in_background(monkeypatch):
    """Every video counts as large: it opens on the worker (as one of BACKGROUND_OPEN_BYTES or more does)."""
    monkeypatch.setattr(opening, "BACKGROUND_OPEN_BYTES", 0)


@pytest.fixture
def closed(monkeypatch) -> list[str]:
    """Names of the video files closed from now on."""
    names: list[str] = []
    real_close = VideoFileSource.close

    def close(self):
        names.append(self.path.name)
        real_close(self)

    monkeypatch.setattr(VideoFileSource, "close", close)
    return names


def gate_open(monkeypatch, name: str) -> threading.Event:
    """Opening the file called `name` stands still (a slow disk) until the returned event is set."""
    gate = threading.Event()
    real_open = VideoSource.open

    def gated(path, *args, **kwargs):
        if path.name == name:
            assert gate.wait(20)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(VideoSource, "open", staticmethod(gated))
    return gate


def test_a_long_video_indexes_in_the_background_with_progress(window, tmp_path, qtbot, monkeypatch, in_background,
                                                              errors):
    path = make_video(tmp_path / "long.mp4", num_frames=2000, size=(64, 48), gop=250)
    monkeypatch.setattr("app.core.video._PROGRESS_EVERY", 50)  # 40 reports
    real_open = VideoSource.open

    def slow_disk(path, *args, progress=None, **kwargs):  # each report waits 30 ms: about 1.2 s of indexing
        return real_open(path, *args, progress=lambda fraction: (time.sleep(0.03), progress(fraction)), **kwargs)

    monkeypatch.setattr(VideoSource, "open", staticmethod(slow_disk))
    reports = []
    window.opener.progress.connect(lambda progress: reports.append(progress.done))
    loop = LoopGaps()
    window.session.loaded.connect(loop.stop)  # the gaps while it opens (showing it afterwards is UI work)
    loop.start()
    started = time.monotonic()
    window.open_path(path)
    assert window.controller.video is None and window.progress.isVisible() and window.actions["cancel"].isEnabled()
    qtbot.waitUntil(lambda: window.view.pixmap_item.pixmap().width() == 64, timeout=10_000)
    assert read_index(shown_picture(window.view)) == 0 and window.controller.video is None  # before the index
    qtbot.waitUntil(lambda: window.controller.video is not None, timeout=30_000)
    took = time.monotonic() - started
    assert window.controller.num_frames == 2000 and not errors
    assert took > 1.0 and len(loop.gaps) > 20
    assert max(loop.gaps) < 0.3, max(loop.gaps)  # on the UI thread the loop would have stood still for `took`
    assert len(reports) > 10 and reports == sorted(reports)
    assert not window.progress.isVisible() and not window.opener.running
    assert window.recent.paths()[0] == str(path.resolve())


def test_a_project_opens_in_the_background(window, video_path, tmp_path, qtbot, monkeypatch, in_background, errors):
    from app.core.project import Project

    window.open_path(video_path)  # in the background too
    qtbot.waitUntil(lambda: window.controller.video is not None, timeout=20_000)
    mapping = load_scripted(window)
    folder = tmp_path / "project"
    window.session.save_project(folder)
    window.open_path(video_path)
    qtbot.waitUntil(lambda: window.controller.project is None, timeout=20_000)
    threads = []
    real_open = Project.open.__func__
    monkeypatch.setattr(Project, "open", classmethod(lambda cls, *a, **k: threads.append(threading.current_thread())
                                                     or real_open(cls, *a, **k)))
    gate = gate_open(monkeypatch, video_path.name)
    window.open_path(folder)
    assert window.controller.project is None and window.opener.running  # the UI thread returned at once
    qtbot.waitUntil(lambda: bool(threads), timeout=10_000)
    assert threads[0] is not threading.main_thread()
    qtbot.waitUntil(lambda: window.view.pixmap_item.pixmap().width() == 96, timeout=10_000)  # its first frame
    gate.set()
    qtbot.waitUntil(lambda: window.controller.project is not None, timeout=20_000)
    assert window.controller.project.folder == folder and mapping[5] in window.controller.annotation.tracks
    assert window.recent.paths()[0] == str(folder.resolve()) and not errors


def test_cancel_stops_an_open_and_closes_its_video(window, video_path, tmp_path, qtbot, monkeypatch, in_background,
                                                   closed, errors):
    window.open_path(video_path)
    qtbot.waitUntil(lambda: window.controller.video is not None, timeout=20_000)
    original = window.controller.annotation
    other = make_video(tmp_path / "other.mp4", num_frames=5, size=(40, 20))
    gate = gate_open(monkeypatch, "other.mp4")
    window.open_path(other)
    qtbot.waitUntil(lambda: window.view.pixmap_item.pixmap().width() == 40, timeout=10_000)  # other's first frame
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    qtbot.keyClick(window.view, Qt.Key.Key_Period, Qt.KeyboardModifier.ControlModifier)  # Cancel
    assert window.status_label.text() == "Opening cancelled." and not window.opener.running
    gate.set()
    qtbot.waitUntil(lambda: not window.opener.worker.running, timeout=20_000)
    qtbot.waitUntil(lambda: "other.mp4" in closed, timeout=20_000)  # opened after the cancel: closed again
    assert window.controller.annotation is original and window.controller.video.path == video_path
    assert window.view.pixmap_item.pixmap().width() == 96  # the open document is shown again
    assert not window.progress.isVisible() and not errors and str(other.resolve()) not in window.recent.paths()


def test_a_newer_open_replaces_an_older_one(window, video_path, tmp_path, qtbot, monkeypatch, in_background, closed,
                                            errors):
    first = make_video(tmp_path / "first.mp4", num_frames=5, size=(40, 20))
    gate = gate_open(monkeypatch, "first.mp4")
    window.open_path(first)
    qtbot.waitUntil(lambda: window.view.pixmap_item.pixmap().width() == 40, timeout=10_000)
    window.open_path(video_path)  # chosen while the first is still indexing: the latest choice wins
    assert window.opener.running and window.controller.video is None
    gate.set()
    qtbot.waitUntil(lambda: window.controller.video is not None, timeout=20_000)
    qtbot.waitUntil(lambda: not window.opener.worker.running, timeout=20_000)
    assert window.controller.video.path == video_path and window.controller.num_frames == FRAMES
    assert "first.mp4" in closed and "clip.mp4" not in closed and not errors
    assert window.recent.paths() == [str(video_path.resolve())]


def test_a_cancelled_first_open_leaves_the_view_empty(window, tmp_path, qtbot, monkeypatch, in_background, errors):
    path = make_video(tmp_path / "first.mp4", num_frames=5, size=(40, 20))
    gate = gate_open(monkeypatch, "first.mp4")
    window.open_path(path)
    qtbot.waitUntil(lambda: window.view.pixmap_item.pixmap().width() == 40, timeout=10_000)  # its first frame
    window.actions["cancel"].trigger()
    gate.set()
    qtbot.waitUntil(lambda: not window.opener.worker.running, timeout=20_000)
    assert window.controller.video is None and window.view.pixmap_item.pixmap().isNull() and not errors
    assert window.status_label.text() == "Opening cancelled."
