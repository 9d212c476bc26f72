"""The window stays responsive with a large document: showing it after it has loaded, and saving it."""

from __future__ import annotations

import errno
import os
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.core import opening
from app.core.annotation import Annotation
from app.core.project import Project
from dvis_models.categories import vipseg_categories
from tests.gui_helpers import LoopGaps, errors, open_focused, video_path, window  # noqa: F401
from tests.videos import make_video

LARGE_FRAMES, LARGE_TRACKS = 1500, 300
CELL = (4, 3)  # width, height of one track's block in the 64x48 frames


def large_annotation(frames: int, tracks: int, seed: int = 0) -> Annotation:
    """`tracks` things, each present in three spans of 20-130 frames (about 30 per frame), on 64x48 frames."""
    rng = np.random.default_rng(seed)
    categories = vipseg_categories()
    things = [c.id for c in categories if c.isthing][:20]
    annotation = Annotation(frames, 48, 64, categories)
    ids = np.array([annotation.add_track(int(rng.choice(things))).id for _ in range(tracks)])
    alive = np.zeros((tracks, frames), bool)
    for track in range(tracks):
        for start in rng.integers(0, frames, 3):
            alive[track, start : start + rng.integers(20, 130)] = True
    cells_x, cells_y = 64 // CELL[0], 48 // CELL[1]
    for index in range(frames):
        cells = np.zeros(cells_x * cells_y, np.int32)
        present = np.flatnonzero(alive[:, index])
        cells[present % len(cells)] = ids[present]
        track_map = np.kron(cells.reshape(cells_y, cells_x), np.ones(CELL[::-1], np.int32))
        annotation.set_frame(index, track_map)
    return annotation


@pytest.fixture(scope="module")
def large_project(tmp_path_factory):
    """A saved project of LARGE_FRAMES frames and LARGE_TRACKS tracks on a real video; copy it before changing it."""
    root = tmp_path_factory.mktemp("large")
    video = make_video(root / "long.mp4", num_frames=LARGE_FRAMES, size=(64, 48), gop=250)
    Project.create(root / "project", video, annotation=large_annotation(LARGE_FRAMES, LARGE_TRACKS)).close()
    return root / "project"


def test_showing_a_large_project_leaves_the_event_loop_running(window, large_project, qtbot, monkeypatch, errors):
    monkeypatch.setattr(opening, "BACKGROUND_OPEN_BYTES", 0)  # read on the opener's worker, as a large one is
    loop = LoopGaps()
    shown: list[int] = []
    window.session.loaded.connect(lambda: shown.append(len(loop.busy)))
    loop.start()
    window.open_path(large_project)
    qtbot.waitUntil(lambda: window.counts_label.text().startswith(f"{LARGE_TRACKS} tracks"), timeout=60_000)
    qtbot.wait(300)  # the panels paint
    loop.stop()
    assert shown and not errors
    assert window.objects.model.rowCount() == len(window.timeline.lanes) == LARGE_TRACKS
    assert window.stability.summary.text().startswith(f"{LARGE_TRACKS} tracks")
    showing = loop.busy[shown[0]:]  # from the turn that showed the document on
    # In one go, filling the panels kept the UI thread busy for 300-500 ms; in steps, no turn takes 100 ms.
    assert max(showing) < 0.1, [round(busy * 1000) for busy in sorted(showing)[-5:]]


# ---------------------------------------------------------------------------------------------- saving
class SlowDisk:
    """Project saves stand still off the UI thread while `hold()` is on (a slow disk), and the threads that wrote
    are recorded. On the UI thread a save never waits: that would hang the test instead of failing it."""

    def __init__(self, monkeypatch):
        self.threads: list[threading.Thread] = []
        self._open = threading.Event()
        self._open.set()
        write_save, create = Project.write_save, Project.create.__func__

        def slow_write_save(project, plan):
            self._wait()
            return write_save(project, plan)

        def slow_create(cls, *args, **kwargs):
            self._wait()
            return create(cls, *args, **kwargs)

        monkeypatch.setattr(Project, "write_save", slow_write_save)
        monkeypatch.setattr(Project, "create", classmethod(slow_create))

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _wait(self) -> None:
        self.threads.append(threading.current_thread())
        if threading.current_thread() is not threading.main_thread():
            assert self._open.wait(20)


def saved_tracks(folder) -> dict:
    """Track id -> locked flag of the project as saved on disk."""
    with Project.open(folder, read_only=True) as project:
        return {track_id: track.locked for track_id, track in project.annotation.tracks.items()}


def press(window, qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window.view, key, modifier)


CTRL = Qt.KeyboardModifier.ControlModifier


def modified(window) -> bool:
    return " *" in window.windowTitle()


@pytest.fixture
def project_window(window, video_path, tmp_path, qtbot):
    """The window with a saved project of the scripted clip, the frame view holding the keyboard."""
    mapping = open_focused(window, video_path, qtbot)
    window.session.save_project(tmp_path / "project")
    return window, mapping, tmp_path / "project"


def test_ctrl_s_writes_off_the_ui_thread_and_edits_during_it_stay_unsaved(project_window, qtbot, monkeypatch,
                                                                          errors):
    window, mapping, folder = project_window
    person, car, sky = mapping[5], mapping[6], mapping[7]
    disk = SlowDisk(monkeypatch)
    window.controller.select(person)
    press(window, qtbot, Qt.Key.Key_L)  # lock the person
    disk.hold()
    loop = LoopGaps()
    loop.start()
    press(window, qtbot, Qt.Key.Key_S, CTRL)
    assert window.status_label.text() == "Saving…"  # the key press returned while the save waits for the disk
    qtbot.waitUntil(lambda: bool(disk.threads))
    window.controller.select(car)
    press(window, qtbot, Qt.Key.Key_L)  # an edit while the save writes
    qtbot.wait(300)
    assert len(loop.busy) > 5 and max(loop.busy) < 0.1  # the event loop ran all along, never blocked
    disk.release()
    qtbot.waitUntil(lambda: window.status_label.text() == f"Saved {folder}", timeout=10_000)
    loop.stop()
    assert threading.main_thread() not in disk.threads and not errors
    assert modified(window)  # the car's lock came after the snapshot: not saved
    assert saved_tracks(folder) == {person: True, car: False, sky: False}

    window.controller.select(sky)
    press(window, qtbot, Qt.Key.Key_L)
    disk.hold()
    press(window, qtbot, Qt.Key.Key_S, CTRL)
    press(window, qtbot, Qt.Key.Key_S, CTRL)  # again while the first writes: it waits for it, then saves again
    disk.release()
    qtbot.waitUntil(lambda: not modified(window) and window.status_label.text().startswith("Saved"), timeout=10_000)
    assert saved_tracks(folder) == {person: True, car: True, sky: True} and not errors


def test_a_failing_save_says_why_and_keeps_the_edits_unsaved(project_window, qtbot, monkeypatch, errors):
    window, mapping, folder = project_window
    threads = []

    def full_disk(fd):
        threads.append(threading.current_thread())
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    window.controller.select(mapping[5])
    press(window, qtbot, Qt.Key.Key_L)
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full_disk)
        press(window, qtbot, Qt.Key.Key_S, CTRL)
        assert window.status_label.text() == "Saving…"
        qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert threads and threading.main_thread() not in threads
    (title, message), = errors
    assert title == "Save Project" and "No space left on device" in message and "Free disk space" in message
    assert modified(window) and "failed" in window.status_label.text()  # (the autosave's recovery notes may fail too)
    assert saved_tracks(folder)[mapping[5]] is False  # the last save on disk is intact
    press(window, qtbot, Qt.Key.Key_S, CTRL)  # space freed: saving again works
    qtbot.waitUntil(lambda: not modified(window), timeout=10_000)
    assert saved_tracks(folder)[mapping[5]] is True and len(errors) == 1


def test_closing_while_a_save_writes_waits_for_it(project_window, qtbot, monkeypatch):
    window, mapping, folder = project_window
    asked = []
    monkeypatch.setattr(window, "confirm_discard", lambda: asked.append(True) or True)
    disk = SlowDisk(monkeypatch)
    window.controller.select(mapping[6])
    press(window, qtbot, Qt.Key.Key_L)
    disk.hold()
    press(window, qtbot, Qt.Key.Key_S, CTRL)
    assert window.status_label.text() == "Saving…"
    qtbot.waitUntil(lambda: bool(disk.threads))
    threading.Timer(0.3, disk.release).start()  # the disk finishes while the window closes
    assert window.close()
    assert not asked  # the save being written saved everything: nothing to ask about
    assert saved_tracks(folder)[mapping[6]] is True


def test_save_as_creates_the_project_off_the_ui_thread_while_edits_wait(window, video_path, tmp_path, qtbot,
                                                                        monkeypatch, errors):
    open_focused(window, video_path, qtbot)
    folder = tmp_path / "new project"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(folder), ""))
    disk = SlowDisk(monkeypatch)
    disk.hold()
    press(window, qtbot, Qt.Key.Key_S, CTRL)  # no project yet: Save As
    assert window.status_label.text() == "Saving…" and window.controller.project is None
    qtbot.waitUntil(lambda: bool(disk.threads))
    assert window.session.busy == "Saving the project is running" and not window.actions["delete"].isEnabled()
    disk.release()
    qtbot.waitUntil(lambda: window.controller.project is not None, timeout=10_000)
    assert window.controller.project.folder == folder and window.status_label.text() == f"Saved {folder}"
    assert threading.main_thread() not in disk.threads and window.session.busy is None and not modified(window)
    assert window.recent.paths()[0] == str(folder.resolve()) and not errors
    assert len(saved_tracks(folder)) == 3
