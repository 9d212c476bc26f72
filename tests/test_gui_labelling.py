"""The prompted-mask tool and Propagate on the shown window, driven by real clicks and keys over a real
PyAV-encoded clip: a click and Enter add the missed object as one undo step; Propagate runs in the background
worker, Cancel keeps the frames done, one undo removes all; keyframes and propagated spans are marked on the
timeline and survive saving and reopening the project."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from app.core.keyframes import KEY, PROPAGATED
from app.core.propagation.scores import jaccard
from app.gui.dialogs import CategoryDialog
from app.gui.propagate_dialog import PropagateDialog
from tests.gui_helpers import PERSON, errors, view_point, window  # noqa: F401
from tests.labelling_media import SQUARE, make_square_video, square_mask, square_origin


def maps(annotation) -> np.ndarray:
    return np.stack([annotation.track_map(i) for i in range(annotation.num_frames)])


def open_clip(window, qtbot, path) -> None:
    window.open_path(path)
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)


def click(qtbot, view, x: int, y: int, button=Qt.MouseButton.LeftButton) -> None:
    qtbot.mouseClick(view.viewport(), button, pos=view_point(view, x, y))


def prompt_square(window, qtbot, frame: int = 0) -> int:
    """Click the square with the prompt tool, accept with Enter and choose "person": returns the new track."""
    view, tool = window.view, window.prompt
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert view.tool == "prompt" and window.actions["tool_prompt"].isChecked()
    x, y = square_origin(frame)
    click(qtbot, view, x + SQUARE // 2, y + SQUARE // 2)
    qtbot.waitUntil(lambda: tool.proposal is not None, timeout=10_000)
    assert tool.proposal.source == "grabcut"  # no model ran in this session
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), CategoryDialog))
    dialog = QApplication.activeModalWidget()
    qtbot.keyClicks(dialog.search, "person")
    qtbot.keyClick(dialog.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.controller.selected is not None)
    return window.controller.selected


def test_a_click_tab_and_enter_add_the_missed_object_as_one_undo_step(window, qtbot, tmp_path, errors):
    open_clip(window, qtbot, make_square_video(tmp_path / "clip.mp4", 6))
    controller, view, tool = window.controller, window.view, window.prompt
    before = maps(controller.annotation)
    qtbot.keyClick(view, Qt.Key.Key_A)
    x, y = square_origin(0)
    click(qtbot, view, x + SQUARE // 2, y + SQUARE // 2)
    click(qtbot, view, 5, 110, Qt.MouseButton.RightButton)  # a negative point; no context menu
    assert tool.prompt.positives == [(x + SQUARE // 2, y + SQUARE // 2)] and tool.prompt.negatives == [(5, 110)]
    qtbot.waitUntil(lambda: tool.proposal is not None, timeout=10_000)
    assert not tool.mask_item.pixmap().isNull() and len(tool._points) == 2  # shown live, with both points
    qtbot.keyClick(view, Qt.Key.Key_Tab)  # cycles (GrabCut has one proposal); the focus stays on the frame
    assert view.hasFocus() and tool.shown == 0
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), CategoryDialog))
    dialog = QApplication.activeModalWidget()
    qtbot.keyClicks(dialog.search, "person")
    qtbot.keyClick(dialog.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.selected is not None)
    track_id = controller.selected
    track = controller.annotation.tracks[track_id]
    assert track.category_id == PERSON
    assert jaccard(controller.annotation.track_map(0) == track_id, square_mask(0)) > 0.9
    assert controller.annotation.marks.of(track_id) == {0: KEY}
    assert tool.proposal is None and tool.mask_item.pixmap().isNull()  # the prompt is cleared
    qtbot.waitUntil(lambda: len(window.timeline.keyframes.data) == 1)
    lane = window.timeline.lanes.index(track_id)
    assert (window.timeline.keyframes.data[0]["x"], window.timeline.keyframes.data[0]["y"]) == (0, lane)
    assert len(controller.session.history) == 1
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert track_id not in controller.annotation.tracks and np.array_equal(maps(controller.annotation), before)
    assert not errors


def test_escape_clears_the_prompt_and_a_click_outside_the_picture_says_so(window, qtbot, tmp_path, errors):
    open_clip(window, qtbot, make_square_video(tmp_path / "clip.mp4", 3))
    view, tool = window.view, window.prompt
    qtbot.keyClick(view, Qt.Key.Key_A)
    click(qtbot, view, 40, 40)
    assert tool.prompt.positives
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not tool.prompt.positives and tool.proposal is None
    click(qtbot, view, 200, 40)  # right of the 160 px wide picture
    assert not tool.prompt.positives and "inside the picture" in window.status_label.text()
    assert not errors


def undo(window, qtbot) -> None:
    """Ctrl+Z on the frame view."""
    window.activateWindow()  # what a window manager does once a dialog closed
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    count = window.controller.session.history.index
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.session.history.index == count - 1


def run_propagate_dialog(window, qtbot, stop_at: str) -> None:
    qtbot.keyClick(window.view, Qt.Key.Key_P, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), PropagateDialog))
    dialog = QApplication.activeModalWidget()
    assert dialog.engine.count() == 1  # flow only: no model ran in this session
    dialog.stop_at.setCurrentIndex(dialog.stop_at.findData(stop_at))
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def prompt_and_propagate(window, qtbot, clip) -> tuple[int, np.ndarray]:
    """Open the clip, add the square with the prompt tool and start propagating it to the end: (track, maps before)."""
    open_clip(window, qtbot, clip)
    track_id = prompt_square(window, qtbot)
    before = maps(window.controller.annotation)
    window.view.setFocus()
    run_propagate_dialog(window, qtbot, "range_end")
    return track_id, before


@pytest.mark.timeout(120)
def test_propagate_runs_in_the_worker_marks_the_timeline_undoes_at_once_and_survives_the_project(
        window, qtbot, tmp_path, errors):
    frames = 16
    track_id, before = prompt_and_propagate(window, qtbot, make_square_video(tmp_path / "clip.mp4", frames))
    controller = window.controller
    qtbot.waitUntil(lambda: len(controller.session.history) == 2, timeout=60_000)
    annotation = controller.annotation
    ious = [jaccard(annotation.track_map(i) == track_id, square_mask(i)) for i in range(frames)]
    assert min(ious) > 0.9, ious
    assert annotation.marks.frames(track_id, PROPAGATED) == list(range(1, frames))
    qtbot.waitUntil(lambda: window.timeline.propagated.spans == [(0, 1, frames - 1)])
    assert list(window.timeline.keyframes.data["x"]) == [0]
    undo(window, qtbot)
    assert np.array_equal(maps(annotation), before) and annotation.marks.of(track_id) == {0: KEY}
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert annotation.marks.frames(track_id, PROPAGATED) == list(range(1, frames))
    folder = tmp_path / "project"
    window.session.save_project(folder)
    window.open_path(folder)
    assert controller.annotation.marks.of(track_id) == {0: KEY, **{i: PROPAGATED for i in range(1, frames)}}
    qtbot.waitUntil(lambda: window.timeline.propagated.spans == [(0, 1, frames - 1)])
    assert not errors


@pytest.mark.timeout(120)
def test_cancel_keeps_the_frames_done_and_one_undo_removes_them(window, qtbot, tmp_path, errors):
    frames = 60
    window.tasks.progress.connect(lambda progress: progress.done >= 5 and window.actions["cancel"].trigger())
    track_id, before = prompt_and_propagate(window, qtbot, make_square_video(tmp_path / "clip.mp4", frames))
    controller = window.controller
    qtbot.waitUntil(lambda: len(controller.session.history) == 2, timeout=60_000)
    done = controller.annotation.marks.frames(track_id, PROPAGATED)
    assert 5 <= len(done) < frames - 1 and done == list(range(1, len(done) + 1))
    assert "Cancelled" in window.status_label.text()
    assert all((controller.annotation.track_map(i) == track_id).any() for i in done)
    assert not (controller.annotation.track_map(done[-1] + 1) == track_id).any()
    undo(window, qtbot)
    assert np.array_equal(maps(controller.annotation), before)
    assert not errors


@pytest.mark.timeout(180)
def test_with_the_projects_model_a_box_shows_its_proposals_tab_cycles_and_enter_uses_the_proposals_class(
        window, qtbot, tmp_path, errors):
    pytest.importorskip("torch")
    import cv2

    from app.core.project import Project
    from dvis_models.categories import vipseg_categories
    from dvis_models.data.synthetic import render_video, video_rng

    categories = vipseg_categories().to_json()
    video = render_video("v", video_rng(0, "val", 1), categories, num_frames=1)
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, frame in enumerate(video.frames):
        cv2.imwrite(str(frames / f"{index:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    Project.create(tmp_path / "project", frames, model={"model": "bundled"}).close()  # made with the bundled model
    open_clip(window, qtbot, tmp_path / "project")
    controller, view, tool = window.controller, window.view, window.prompt
    things = {int(c["id"]) for c in categories if c["isthing"]}
    largest = max((s for s in video.segments[0] if s["category_id"] in things), key=lambda s: s["area"])
    x, y, w, h = largest["bbox"]
    qtbot.keyClick(view, Qt.Key.Key_A)
    viewport = view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=view_point(view, x, y))
    qtbot.mouseMove(viewport, view_point(view, x + w // 2, y + h // 2))
    qtbot.mouseMove(viewport, view_point(view, x + w - 1, y + h - 1))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=view_point(view, x + w - 1, y + h - 1))
    assert tool.prompt.box == (x, y, x + w, y + h) and not tool.prompt.positives
    assert tool.box_item.isVisible()
    qtbot.waitUntil(lambda: tool.proposal is not None, timeout=120_000)  # loads the model, segments the frame
    assert tool.proposal.source == "model" and tool.proposal.category_id == largest["category_id"]
    assert len(tool.proposals) > 1
    best = tool.proposal
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert tool.proposal is tool.proposals[1] and view.hasFocus()
    for _ in range(len(tool.proposals) - 1):
        qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert tool.proposal is best  # Tab cycles back round
    qtbot.keyClick(view, Qt.Key.Key_Return)  # the proposal's class: no question asked
    track_id = controller.selected
    assert controller.annotation.tracks[track_id].category_id == largest["category_id"]
    assert jaccard(controller.annotation.track_map(0) == track_id, video.id_masks[0] == largest["id"]) > 0.6
    undo(window, qtbot)
    assert track_id not in controller.annotation.tracks
    assert not errors
