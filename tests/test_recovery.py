"""Autosave and crash recovery: the schedule, saves written off the editing thread, and a real app killed
with SIGKILL whose work the next start offers back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from app.core.edits import MergeTracks, Paint
from app.core.paths import data_dir
from app.core.project import Project
from app.core.recovery import AutosaveSchedule, crashed_sessions, recovery_root
from tests.gui_helpers import PERSON, errors, video_path, window  # noqa: F401 - fixtures
from tests.test_project import edit, kill_at_marker, logged, project_dir, video  # noqa: F401 - fixtures


def test_data_dir_follows_the_environment(tmp_path):
    assert data_dir() == tmp_path / "data"  # conftest points DVIS_STUDIO_DATA_DIR here
    assert recovery_root() == tmp_path / "data" / "recovery"


def test_schedule_waits_for_a_quiet_pause_but_not_forever():
    schedule = AutosaveSchedule(quiet_s=3, longest_s=60)
    assert not schedule.due(100)
    schedule.changed(100)
    assert not schedule.due(102) and schedule.due(103)
    for now in range(100, 160, 2):  # edits keep coming every 2 s
        schedule.changed(now)
        assert schedule.due(now) == (now >= 160)
    schedule.changed(160)
    assert schedule.due(160)
    schedule.started()
    assert not schedule.due(500)
    schedule.failed(500)
    assert not schedule.due(501) and schedule.due(503)


def test_edits_made_while_a_save_is_written_stay_unsaved(project_dir):
    with Project.open(project_dir) as project:
        edit(project, Paint(1, 1, "brush", [[2, 2]], 1))
        plan = project.prepare_save()
        edit(project, Paint(1, 2, "brush", [[15, 10]], 1))  # the same frame again, and its tables
        edit(project, MergeTracks(3, 1))
        thread = threading.Thread(target=project.write_save, args=(plan,))
        thread.start()
        thread.join()
        project.finish_save(plan)
        assert project.dirty and 1 in project.annotation.mask_store.dirty
        expected = [project.annotation.track_map(i) for i in range(project.annotation.num_frames)]
        project.save()
    with Project.open(project_dir) as project:
        for index, track_map in enumerate(expected):
            np.testing.assert_array_equal(project.annotation.track_map(index), track_map)
        assert 3 not in project.annotation.tracks and len(logged(project)) == 3


def test_autosave_fsyncs_off_the_ui_thread_and_clean_exit_leaves_nothing(window, video_path, monkeypatch, errors):
    window.open_path(video_path)
    track = window.controller.new_track(PERSON)
    window.controller.paint("brush", [(10, 10)], 4)
    threads = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (threads.append(threading.current_thread()), real(fd))[1])
    window.autosave()
    assert threads and threading.main_thread() not in threads
    session = window.autosaver.session.folder
    assert json.loads((session / "session.json").read_text())["autosaved"] is not None
    with Project.open(session / "project", read_only=True) as copy:  # the recovery copy has the edit
        assert copy.annotation.track_at(0, 10, 10) == track
    assert window.session.modified  # a recovery copy is not the user's save
    window.close()
    assert not session.exists() and not errors


REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, sys, time
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

app = QApplication([])
from app.gui.main_window import MainWindow

path, marker = Path(sys.argv[1]), Path(sys.argv[2])
window = MainWindow(settings=QSettings(str(marker.with_suffix(".ini")), QSettings.Format.IniFormat),
                    cache_dir=marker.parent / "cache")
window.show()
window.open_path(path)
controller = window.controller
if controller.project is None:
    controller.new_track(60)
    controller.paint("brush", [(10, 10)], 4)
else:
    controller.select(sorted(controller.annotation.tracks)[:2])
    controller.merge_selected()
session = window.autosaver.session.folder / "session.json"
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # no explicit save: the debounced autosave must do it
    app.processEvents()
    time.sleep(0.05)
    if session.is_file() and json.loads(session.read_text())["autosaved"]:
        break
marker.write_text("autosaved")
time.sleep(120)
"""


def run_and_kill(path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(marker)], cwd=REPO_ROOT, env=env)
    kill_at_marker(child, marker, 120, "its autosave")
    assert child.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_unsaved_work_of_a_killed_app_is_offered_back(video_path, tmp_path, window, errors):
    run_and_kill(video_path, tmp_path)
    crashed, = crashed_sessions()
    assert crashed.video == video_path and crashed.project is None and crashed.autosaved is not None
    assert "unsaved work on clip.mp4" in crashed.describe()
    asked = []

    def recover(parent, session):
        asked.append(session.describe())
        return QMessageBox.StandardButton.Yes

    from app.gui.autosave import offer_recovery

    assert offer_recovery(window, ask=recover) is True and len(asked) == 1
    annotation = window.controller.annotation
    track, = annotation.tracks
    assert annotation.tracks[track].category_id == PERSON and annotation.track_at(0, 10, 10) == track
    assert window.session.modified and window.controller.project is None
    assert not crashed.folder.exists()  # recovered: the old copy is gone ...
    with Project.open(window.autosaver.session.folder / "project", read_only=True) as copy:  # ... after this one exists
        assert copy.annotation.track_at(0, 10, 10) == track
    assert crashed_sessions() == [] and not errors


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_saved_project_of_a_killed_app_is_autosaved_and_reopened(video_path, tmp_path, window, errors):
    from app.core.annotation import Annotation
    from app.core.categories import vipseg_categories
    from tests.gui_helpers import FRAMES, SIZE

    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    for x, category in ((5, PERSON), (50, PERSON), (80, 48)):
        track = annotation.add_track(category)
        frame = np.zeros((SIZE[1], SIZE[0]), np.int32)
        frame[20:30, x : x + 8] = track.id
        annotation.set_frame(0, np.maximum(annotation.track_map(0), frame))
    project_dir = tmp_path / "project"
    Project.create(project_dir, video_path, annotation=annotation).close()
    run_and_kill(project_dir, tmp_path)
    crashed, = crashed_sessions()
    assert crashed.project == project_dir
    with Project.open(project_dir, read_only=True) as project:  # the edit was autosaved into the project itself
        assert len(project.annotation.tracks) == 2
    from app.gui.autosave import offer_recovery

    assert offer_recovery(window, ask=lambda parent, session: QMessageBox.StandardButton.Yes) is True
    assert window.controller.project.folder == project_dir and len(window.controller.annotation.tracks) == 2
    assert crashed_sessions() == [] and not errors


def test_discarded_crash_is_not_offered_again(tmp_path):
    from app.core.recovery import RecoverySession, discard

    session = RecoverySession()
    session.track(tmp_path / "v.mp4", tmp_path / "p")
    session.autosaved(tmp_path / "p")
    info = json.loads((session.folder / "session.json").read_text())
    info["pid"] = 2 ** 22 + 12345  # a process that does not run
    (session.folder / "session.json").write_text(json.dumps(info))
    crashed, = crashed_sessions()
    discard(crashed)
    assert crashed_sessions() == []


def test_saving_unsaved_work_as_a_project_drops_the_recovery_copy(window, video_path, tmp_path, errors):
    window.open_path(video_path)
    track = window.controller.new_track(PERSON)
    window.controller.paint("brush", [(10, 10)], 4)
    window.autosave()
    session = window.autosaver.session.folder
    assert (session / "project" / "project.json").is_file()
    window.session.save_project(tmp_path / "mine")
    window.controller.paint("brush", [(30, 30)], 4)
    window.autosave()  # into the user's project now; the recovery copy goes
    assert not (session / "project").exists()
    assert json.loads((session / "session.json").read_text())["project"] == str(tmp_path / "mine")
    assert window.controller.annotation.track_at(0, 10, 10) == track  # frames read from the new project
    assert not window.session.modified
    with Project.open(tmp_path / "mine", read_only=True) as saved:
        assert saved.annotation.track_at(0, 30, 30) == track
    assert not errors
