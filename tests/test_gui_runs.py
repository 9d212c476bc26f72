"""Runs and diagnostics as a user meets them: cancel, resume, pause, re-run over edits, undo a run,
stability diagnostics after all of these (real window, real encoded videos, real pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.core.inference import RunRequest
from tests.gui_helpers import PERSON, LoopGaps, errors, video_path, view_point, window  # noqa: F401

WIDE = (400, 240)  # wider than DiagnosticsConfig.max_side (320): diagnostics compare masks subsampled by 2


@pytest.fixture
def wide_video(tmp_path):
    from tests.videos import make_video

    path = tmp_path / "wide.mp4"
    make_video(path, num_frames=8, size=WIDE)
    return path


def request(path, **changes) -> RunRequest:
    options = dict(model="preset:bundled_small", torch_threads=1, chunk_size=2, score_threshold=0.0)
    return RunRequest(path, **{**options, **changes})


def run_and_cancel(window, qtbot, run: RunRequest, frames: int = 1) -> list[int]:
    """Start `run`, cancel with the Cancel action once `frames` frames arrived; returns the frames received."""
    received: list[int] = []
    window.runner.yielded.connect(lambda result: received.append(result.index))
    window.start_inference(run)
    qtbot.waitUntil(lambda: len(received) >= frames, timeout=120_000)
    with qtbot.waitSignal(window.runner.aborted, timeout=60_000):
        window.actions["cancel"].trigger()
    return received


def test_diagnostics_after_a_cancelled_run_with_a_one_pixel_track(window, wide_video, qtbot, errors):
    """Issue: Ctrl+D after a cancel raised IndexError in pair_iou when the newest track was a speck
    between the pixels the diagnostics sample."""
    window.open_path(wide_video)
    run_and_cancel(window, qtbot, request(wide_video))
    qtbot.waitUntil(lambda: not window.diagnosis.running, timeout=60_000)  # the run's own diagnostics
    speck = window.controller.new_track(PERSON)
    window.actions["tool_brush"].trigger()
    window.view.brush_radius = 0
    point = view_point(window.view, 201, 121)  # odd row and column: not sampled at stride 2
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert window.controller.annotation.track_map(0)[121, 201] == speck
    assert speck == max(window.controller.annotation.frame_track_ids(0))
    assert len(window.controller.annotation.tracks) > 1  # the model's tracks are there too
    qtbot.keyClick(window.view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: errors or any(d.track_id == speck for d in window.controller.diagnostics), timeout=60_000)
    assert not errors


def test_an_unexpected_error_says_where_the_edits_are(window, video_path, tmp_path, errors):
    from app.gui.errors import report_exception

    report_exception(window, "Boom", RuntimeError("x"))  # nothing open: nothing to say about edits
    assert errors[-1][1] == "Unexpected error: RuntimeError('x')"
    window.open_path(video_path)
    window.controller.new_track(PERSON)
    report_exception(window.view, "Boom", RuntimeError("x"))  # any widget of the window knows its document
    assert "not saved anywhere yet" in errors[-1][1] and "Save Project As" in errors[-1][1]
    assert "in the project" not in errors[-1][1]
    window.session.save_project(tmp_path / "project")
    report_exception(window, "Boom", RuntimeError("x"))
    assert errors[-1][1].endswith("The project has no unsaved changes.")
    window.controller.new_track(PERSON)
    report_exception(window, "Boom", RuntimeError("x"))
    assert errors[-1][1].endswith("save the project (Ctrl+S) to keep them.")


@pytest.fixture
def long_video(tmp_path):
    from tests.videos import make_video

    path = tmp_path / "long.mp4"
    make_video(path, num_frames=24, size=(96, 64))
    return path


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.ControlModifier) -> None:
    """A key press on the window, made active first (a closed dialog may have left no window active)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    qtbot.keyClick(window.view, key, modifier)


def test_pause_shows_paused_until_resumed(window, long_video, qtbot, errors):
    window.open_path(long_video)
    received: list[int] = []
    window.runner.yielded.connect(lambda result: received.append(result.index))
    with qtbot.waitSignal(window.runner.finished, timeout=120_000):
        window.start_inference(request(long_video, chunk_size=1))
        qtbot.waitUntil(lambda: len(received) >= 2, timeout=120_000)
        press(qtbot, window, Qt.Key.Key_P)
        assert window.runner.is_paused and window.actions["pause"].isChecked()
        assert window.status_label.text().startswith("Paused at ") and "Resume Inference" in window.status_label.text()
        assert window.actions["pause"].text() == "&Resume Inference"
        assert window.progress.format().startswith("Paused")
        qtbot.wait(600)  # a frame still in flight may arrive: the state stays "Paused"
        assert window.status_label.text().startswith("Paused at ") and len(received) < 24
        press(qtbot, window, Qt.Key.Key_P)
        assert not window.runner.is_paused and not window.actions["pause"].isChecked()
        assert window.actions["pause"].text() == "&Pause Inference"
        qtbot.waitUntil(lambda: "frames/s" in window.status_label.text() or not window.runner.running, timeout=60_000)
        assert not window.progress.format().startswith("Paused")
    assert received == list(range(24)) and not errors


def accept_run_dialog(window, qtbot, seen: dict, model: str = "preset:bundled_small") -> None:
    """Answer the modal Run dialog like a user: note its range, pick `model`, press OK."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QDialogButtonBox

    from app.gui.dialogs import RunDialog

    dialog = next((d for d in window.findChildren(RunDialog) if d.isVisible()), None)
    if dialog is None:  # not open yet
        QTimer.singleShot(50, lambda: accept_run_dialog(window, qtbot, seen, model))
        return
    seen.update(start=dialog.start.value(), stop=dialog.stop.value(), keep=dialog.keep_edited.isChecked())
    dialog.model.setCurrentIndex(dialog.model.findData(model))
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def test_a_run_after_a_cancel_resumes_where_it_stopped(window, tmp_path, qtbot, errors):
    """The bundled (trained) model, so there are real objects whose ids must continue across the boundary."""
    from PySide6.QtCore import QTimer

    from tests.videos import make_video

    video = tmp_path / "shapes.mp4"
    make_video(video, num_frames=12, size=(160, 112))
    window.open_path(video)
    done = run_and_cancel(window, qtbot, request(video, model="bundled", score_threshold=None, chunk_size=2), frames=4)
    resume = done[-1] + 1
    assert f"continues from frame {resume}" in window.status_label.text()
    qtbot.waitUntil(lambda: not window.diagnosis.running, timeout=60_000)  # the run's diagnostics keep the hint
    assert f"continues from frame {resume}" in window.status_label.text()
    annotation = window.controller.annotation
    last_done = annotation.track_map(resume - 1).copy()
    things = {t for t in annotation.frame_track_ids(resume - 1) if annotation.tracks[t].isthing}
    assert len(things) >= 2
    received: list[int] = []
    window.runner.yielded.connect(lambda result: received.append(result.index))
    seen: dict = {}
    with qtbot.waitSignal(window.runner.finished, timeout=120_000):
        QTimer.singleShot(100, lambda: accept_run_dialog(window, qtbot, seen, "bundled"))
        press(qtbot, window, Qt.Key.Key_R)
    assert seen == {"start": resume, "stop": 12, "keep": True}
    assert received == list(range(resume - 1, 12)) and not errors  # the last finished frame carries ids over
    assert np.array_equal(annotation.track_map(resume - 1), last_done)  # and is not rewritten
    continuing = things & annotation.frame_track_ids(resume)
    # Ids continue where the restarted model's mask of the shared frame matches (IoU >= 0.5). Its first-frame
    # masks can differ from the tracked ones (two fragments become one object), so not every object has to;
    # without the shared frame none did. test_result_merger checks the rule exactly.
    assert continuing, f"none of the thing ids {things} at frame {resume - 1} goes on at frame {resume}"
    # After a run that completed, the next one offers the whole video again.
    QTimer.singleShot(100, lambda: accept_run_dialog(window, qtbot, seen))
    with qtbot.waitSignal(window.runner.finished, timeout=120_000):
        press(qtbot, window, Qt.Key.Key_R)
    assert seen["start"] == 0


def test_a_rerun_keeps_edited_tracks_and_is_one_undo_step(window, long_video, qtbot, errors):
    from tests.gui_helpers import load_scripted

    window.open_path(long_video)
    annotation, controller = window.controller.annotation, window.controller
    person = load_scripted(window)[5]
    controller.select(person)
    window.actions["tool_brush"].trigger()
    window.view.brush_radius = 2
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=view_point(window.view, 60, 55))
    assert annotation.track_map(0)[55, 60] == person and annotation.tracks[person].provenance == "edited"
    before = [annotation.track_map(i).copy() for i in range(24)]
    with qtbot.waitSignal(window.runner.finished, timeout=120_000):
        window.start_inference(request(long_video, start=0, stop=6))
    for i in range(6):  # the model replaced the rest, not the edited track
        assert np.array_equal(annotation.track_map(i) == person, before[i] == person)
    assert any(not np.array_equal(annotation.track_map(i), before[i]) for i in range(6))
    assert len(controller.session.history) == 2 and "Run DVIS on frames 0-5" in controller.session.history.undo_text
    press(qtbot, window, Qt.Key.Key_Z)  # undo the run
    assert all(np.array_equal(annotation.track_map(i), before[i]) for i in range(24))
    press(qtbot, window, Qt.Key.Key_Z)  # the edit made before the run is still undoable
    assert annotation.track_map(0)[55, 60] == 0
    press(qtbot, window, Qt.Key.Key_Y)
    press(qtbot, window, Qt.Key.Key_Y)  # redo the run
    assert any(not np.array_equal(annotation.track_map(i), before[i]) for i in range(6))

    # Told to replace edited tracks, the model's output takes their pixels too.
    with qtbot.waitSignal(window.runner.finished, timeout=120_000):
        window.start_inference(request(long_video, start=0, stop=6, keep_edited=False))
    assert any(not np.array_equal(annotation.track_map(i) == person, before[i] == person) for i in range(6))
    assert not errors


def test_cancelling_long_diagnostics_returns_at_once(window, tmp_path, qtbot, errors):
    """Diagnostics run in a worker; Cancel (and closing or opening another video) must not wait for them."""
    import time

    import cv2

    import app.core.metrics  # noqa: F401 - the job's one-time import (about a second) is not what is measured
    folder = tmp_path / "frames"  # a long 640x360 image-folder video: decoding is not what is measured
    folder.mkdir()
    frame = np.full((360, 640, 3), 90, np.uint8)
    for index in range(300):
        cv2.imwrite(str(folder / f"{index:08d}.jpg"), frame)
    window.open_path(folder)
    annotation = window.controller.annotation
    ids = [annotation.add_track(PERSON).id for _ in range(5)]
    track_map = np.zeros((360, 640), np.int32)
    for index in range(300):
        track_map[:] = 0
        for k, track_id in enumerate(ids):
            x = (3 * index + 90 * k) % 540
            track_map[40 + 50 * k : 80 + 50 * k, x : x + 90] = track_id
        annotation.set_frame(index, track_map)
    qtbot.wait(500)  # the panels' debounced refresh after those frames runs now, not during the measurement
    qtbot.waitUntil(lambda: not window.diagnosis.running, timeout=30_000)  # nor the diagnostics that refresh started
    loop = LoopGaps()
    press(qtbot, window, Qt.Key.Key_D)
    loop.start()
    qtbot.wait(300)
    loop.stop()
    gaps = loop.gaps
    assert window.diagnosis.running and window.actions["cancel"].isEnabled()
    assert max(gaps) < 0.25, f"the UI thread stalled {max(gaps) * 1000:.0f} ms while diagnostics ran"
    started = time.monotonic()
    press(qtbot, window, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: not window.diagnosis.running, timeout=10_000)
    assert time.monotonic() - started < 0.5
    assert window.status_label.text() == "Stability diagnostics cancelled." and window.controller.diagnostics == []
    press(qtbot, window, Qt.Key.Key_D)  # again, then replace the document: stopping waits for no full job
    qtbot.wait(200)
    assert window.diagnosis.running
    started = time.monotonic()
    window._stop_work()
    assert time.monotonic() - started < 0.5 and not errors
