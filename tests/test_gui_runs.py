"""Runs and diagnostics as a user meets them: cancel, resume, pause, re-run over edits, undo a run,
stability diagnostics after all of these (real window, real encoded videos, real pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.gui.inference import CANCELLED, RunRequest
from tests.gui_helpers import PERSON, errors, video_path, window  # noqa: F401

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
    window.runner.frame_ready.connect(lambda result, offset: received.append(result.index + offset))
    window.start_inference(run)
    qtbot.waitUntil(lambda: len(received) >= frames, timeout=120_000)
    with qtbot.waitSignal(window.runner.finished, timeout=60_000) as finished:
        window.actions["cancel"].trigger()
    assert finished.args == [CANCELLED]
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
    point = window.view.scene_point(201, 121)  # odd row and column: not sampled at stride 2
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
    window.controller.save_project(tmp_path / "project")
    report_exception(window, "Boom", RuntimeError("x"))
    assert errors[-1][1].endswith("The project has no unsaved changes.")
    window.controller.new_track(PERSON)
    report_exception(window, "Boom", RuntimeError("x"))
    assert errors[-1][1].endswith("save the project (Ctrl+S) to keep them.")
