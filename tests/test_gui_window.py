"""The main window driven like a user: open, look, select, correct, undo, export, re-import, errors."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from app.gui.object_list import COLUMNS
from tests.gui_helpers import (  # noqa: F401
    CAR,
    FRAMES,
    PERSON,
    SIZE,
    answer_message_box,
    errors,
    load_scripted,
    refresh_panels,
    shown_picture,
    video_path,
    view_point,
    window,
)


def click_pixel(qtbot, window, x, y, modifier=Qt.KeyboardModifier.NoModifier):
    point = view_point(window.view, x, y)
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, modifier, point)


def test_open_video_shows_first_frame(window, video_path):
    window.open_path(video_path)
    controller = window.controller
    assert controller.num_frames == FRAMES
    assert (controller.video.width, controller.video.height) == SIZE
    assert not window.view.pixmap_item.pixmap().isNull()
    assert window.slider.maximum() == FRAMES - 1
    assert window.recent.paths()[0] == str(video_path.resolve())
    window.actions["next10"].trigger()
    assert controller.frame_index == 10 and window.slider.value() == 10
    window.actions["last"].trigger()
    assert controller.frame_index == FRAMES - 1


def test_masks_are_drawn_in_track_colours_and_modes(window, video_path):
    from app.core.colors import track_color

    window.open_path(video_path)
    mapping = load_scripted(window)
    person = mapping[5]
    window.controller.set_display(opacity=1.0, mode="fill")
    rendered = shown_picture(window.view)
    assert tuple(rendered[40, 8]) == track_color(person)  # frame 0: person at x 4..17
    window.actions["mode_cutout"].trigger()
    assert tuple(shown_picture(window.view)[20, 2]) == (0, 0, 0)  # void background cut out
    window.controller.set_hidden(person, True)
    assert tuple(shown_picture(window.view)[40, 8]) == (0, 0, 0)  # hidden track is not shown
    labels = [item.text() for item in window.view._labels]
    assert any(text.endswith(f"#{mapping[6]}") for text in labels)


def test_click_selects_then_merge_split_and_undo_through_the_ui(window, video_path, qtbot, errors):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person, car = mapping[5], mapping[6]
    annotation = window.controller.annotation
    qtbot.waitUntil(lambda: window.objects.model.rowCount() == 3)

    click_pixel(qtbot, window, 8, 40)
    assert window.controller.selection == [person]
    click_pixel(qtbot, window, 70, 40, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.selection == [person, car]
    assert window.actions["merge"].isEnabled()
    warned = answer_message_box("Merge Anyway")  # both are in every frame
    window.actions["merge"].trigger()
    assert warned and car not in annotation.tracks
    assert annotation.track_map(0)[40, 70] == person

    window.actions["undo"].trigger()
    assert car in annotation.tracks and annotation.track_map(0)[40, 70] == car
    window.actions["redo"].trigger()
    assert car not in annotation.tracks
    window.actions["undo"].trigger()

    window.controller.seek(6)
    click_pixel(qtbot, window, 4 + 18 + 3, 40)  # the person at frame 6 (x = 22..35)
    assert window.controller.selection == [person]
    window.actions["split"].trigger()
    new_id = window.controller.selection[1]
    assert annotation.track_frames(person) == list(range(6))
    assert annotation.track_frames(new_id) == list(range(6, FRAMES))
    window.actions["undo"].trigger()
    assert annotation.track_frames(person) == list(range(FRAMES))
    assert not errors


def test_relabel_delete_range_and_paint(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person = mapping[5]
    annotation = window.controller.annotation
    window.controller.select(person)
    window.controller.relabel_selected(CAR)
    assert annotation.tracks[person].category_id == CAR
    window.controller.delete_selected(2, 5)
    assert annotation.track_frames(person) == [0, 1] + list(range(5, FRAMES))

    window.actions["tool_brush"].trigger()
    window.view.brush_radius = 3
    start, end = view_point(window.view, 50, 20), view_point(window.view, 56, 20)
    qtbot.mousePress(window.view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(window.view.viewport(), end)
    qtbot.mouseRelease(window.view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert annotation.track_map(0)[20, 53] == person
    window.actions["undo"].trigger()
    assert annotation.track_map(0)[20, 53] == 0
    assert len(window.session.history) == 3


def test_user_errors_become_dialogs_and_the_app_keeps_going(window, tmp_path, errors):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("this is not a video")
    window.open_initial(str(bad))
    assert len(errors) == 1
    assert "not_a_video.mp4" in errors[0][1]
    window.actions["merge"].setEnabled(True)
    window.actions["merge"].trigger()  # nothing open, nothing selected: a message, no crash
    assert len(errors) == 2 and "select" in errors[1][1].lower()


def test_error_dialog_is_a_real_message_box(window, qtbot, monkeypatch):
    """The unpatched show_error builds a QMessageBox (closed here by a timer) and returns."""
    from app.gui import errors

    monkeypatch.undo()  # the real show_error
    seen = []

    def close_box():
        box = QApplication.activeModalWidget()
        seen.append(box.text() if isinstance(box, QMessageBox) else None)
        box.done(0)

    QTimer.singleShot(50, close_box)
    errors.report_exception(window, "Open", FileNotFoundError(2, "No such file or directory", "/nope.mp4"))
    assert seen and "/nope.mp4" in seen[0]


def test_timeline_lanes_click_and_object_list_search(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    refresh_panels(window)
    assert window.stability.summary.text().startswith("3 tracks, 3.0 objects/frame")
    timeline = window.timeline
    assert sorted(timeline.lanes) == sorted(mapping.values())
    lane = timeline.lanes.index(mapping[6])
    assert timeline.lane_text(lane - 0.2) == f"track {mapping[6]} · car · {FRAMES} frames"
    assert timeline.lane_text(lane + 0.5) == ""
    timeline.click_at(7.2, lane + 0.1)
    assert window.controller.frame_index == 7
    assert window.controller.selection == [mapping[6]]
    objects = window.objects
    rows = objects.table.selectionModel().selectedRows()
    assert [objects.model.track_id(objects.proxy.mapToSource(r).row()) for r in rows] == [mapping[6]]
    objects.search.setText("person")
    assert objects.proxy.rowCount() == 1
    objects.search.setText("stuff")
    assert objects.proxy.rowCount() == 1
    objects.search.clear()
    objects.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    first = objects.proxy.index(0, 0).data()
    assert first == max(mapping.values())


def test_opening_another_video_clears_the_hovered_pixel_text(window, video_path, qtbot, tmp_path):
    from tests.videos import make_video

    window.open_path(video_path)
    mapping = load_scripted(window)
    qtbot.mouseMove(window.view.viewport(), view_point(window.view, 75, 45))  # the car, frame 0
    assert window.hover_label.text() == f"(75, 45)  track {mapping[6]}: car"
    window.open_path(make_video(tmp_path / "other.mkv", num_frames=4, size=SIZE))
    assert window.controller.num_frames == 4 and window.hover_label.text() == ""


def test_the_play_button_shows_play_and_pause_with_the_styles_icons(window, video_path, qtbot):
    """Its text was U+23F8 while playing, which common fonts (DejaVu Sans) lack: an empty box."""
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QStyle

    def shows(pixmap) -> bool:
        button = window.play_button
        metrics = QFontMetrics(button.font())
        drawable = all(metrics.inFontUcs4(ord(char)) for char in button.text())
        icon = window.style().standardIcon(pixmap)
        return drawable and button.icon().pixmap(16).toImage() == icon.pixmap(16).toImage()

    window.open_path(video_path)
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    assert shows(QStyle.StandardPixmap.SP_MediaPlay)
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    assert window.player.playing and shows(QStyle.StandardPixmap.SP_MediaPause)
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    assert not window.player.playing and shows(QStyle.StandardPixmap.SP_MediaPlay)


def test_keyboard_shortcuts(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    assert window.controller.frame_index == 1
    qtbot.keyClick(window.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert window.controller.frame_index == 11
    qtbot.keyClick(window.view, Qt.Key.Key_Left)
    assert window.controller.frame_index == 10
    qtbot.keyClick(window.view, Qt.Key.Key_Home)
    window.controller.select([mapping[5], mapping[6]])
    answer_message_box("Merge Anyway")
    qtbot.keyClick(window.view, Qt.Key.Key_M)
    assert mapping[6] not in window.controller.annotation.tracks
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)  # the warning closed: keys reach the window
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert mapping[6] in window.controller.annotation.tracks
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.controller.frame_index >= 2, timeout=3000)  # playing
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    stopped_at = window.controller.frame_index
    qtbot.wait(150)
    assert window.controller.frame_index == stopped_at


@pytest.mark.qt_no_exception_capture
def test_unexpected_errors_in_slots_show_a_dialog(window, qtbot, errors, monkeypatch):
    from app.gui.errors import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook()

    def broken_slot():
        raise ValueError("boom")

    QTimer.singleShot(0, broken_slot)
    qtbot.waitUntil(lambda: len(errors) == 1)
    assert "Unexpected error" in errors[0][1] and "boom" in errors[0][1]


def test_relabel_and_run_dialogs(window, video_path):
    from app.gui.dialogs import CategoryDialog, RunDialog

    window.open_path(video_path)
    dialog = CategoryDialog(window.controller.categories, None, window)
    dialog.search.setText("umbrel")
    assert window.controller.categories[dialog.category_id()].name == "parasol_or_umbrella"
    dialog.search.setText("pe")  # "pipeline" contains it, "person" starts with it
    assert window.controller.categories[dialog.category_id()].name == "person"
    run = RunDialog(video_path, FRAMES, 3, window)
    run.start.setValue(3)
    run.stop.setValue(9)
    run.mode.setCurrentIndex(1)
    assert not run.request().fast  # the exact path is the default
    run.show()
    QTest.mouseClick(run.fast, Qt.MouseButton.LeftButton, pos=QPoint(8, run.fast.height() // 2))
    request = run.request()
    assert (request.start, request.stop, request.offline, request.model, request.fast) == (3, 9, True, "bundled", True)
    run.close()



def test_run_dialog_online_unit(window, video_path):
    """The online unit (dvis infer --chunk-size) is typed into the dialog, explained in its tooltip, and greyed out
    for offline runs, which do not use it."""
    from app.core.inference import RunRequest
    from app.gui.dialogs import RunDialog

    run = RunDialog(video_path, FRAMES, 0, window)
    run.show()
    assert run.request().chunk_size == RunRequest.chunk_size == 16  # dvis infer's default too
    assert "windows_size" in run.chunk_size.toolTip() and "whole-video result" in run.chunk_size.toolTip()
    run.chunk_size.setFocus()
    QTest.keyClick(run.chunk_size, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(run.chunk_size, "4")
    assert run.request().chunk_size == 4 and run.chunk_size.isEnabled()
    QTest.keyClick(run.mode, Qt.Key.Key_Down)  # Offline
    assert run.request().offline and not run.chunk_size.isEnabled()
    QTest.keyClick(run.mode, Qt.Key.Key_Up)
    assert not run.request().offline and run.chunk_size.isEnabled()
    run.close()

def test_swap_fill_erase_and_delete_everywhere(window, video_path, qtbot, errors):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person, car, sky = mapping[5], mapping[6], mapping[7]
    annotation = window.controller.annotation
    controller = window.controller
    controller.seek(4)
    controller.select([person, car])
    window.actions["swap"].trigger()
    assert annotation.track_map(3)[40, 70] == car and annotation.track_map(4)[40, 70] == person

    controller.select(sky)
    window.actions["tool_fill"].trigger()
    click_pixel(qtbot, window, 2, 30)  # void region below the sky on frame 4 becomes sky
    assert annotation.track_map(4)[30, 2] == sky and annotation.track_map(3)[30, 2] == 0
    window.actions["tool_eraser"].trigger()
    window.view.brush_radius = 2
    point = view_point(window.view, 50, 5)
    qtbot.mousePress(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseRelease(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert annotation.track_map(4)[5, 50] == 0

    controller.select(car)
    window.actions["delete"].trigger()
    assert car not in annotation.tracks
    for _ in range(4):
        window.actions["undo"].trigger()
    assert annotation.track_map(4)[40, 70] == car and annotation.track_map(4)[30, 2] == 0
    assert not errors


def test_relabel_from_the_current_frame_and_hover_text(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person = mapping[5]
    annotation = window.controller.annotation
    window.controller.seek(8)
    window.controller.select(person)
    window.controller.relabel_selected(CAR, from_current_frame=True)
    assert annotation.tracks[person].category_id == PERSON and annotation.track_frames(person) == list(range(8))
    new = annotation.track_map(8)[40, 4 + 3 * 8 + 1]
    assert annotation.tracks[new].category_id == CAR
    qtbot.mouseMove(window.view.viewport(), view_point(window.view, 70, 40))
    assert window.hover_label.text() == f"(70, 40)  track {mapping[6]}: car"


def test_object_list_check_boxes_lock_and_hide(window, video_path):
    window.open_path(video_path)
    mapping = load_scripted(window)
    refresh_panels(window)
    model = window.objects.model
    row = model.row_of(mapping[5])
    locked = model.index(row, COLUMNS.index("Locked"))
    shown = model.index(row, COLUMNS.index("Shown"))
    assert model.setData(locked, Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert window.controller.annotation.tracks[mapping[5]].locked
    assert model.setData(shown, Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    assert mapping[5] in window.controller.display.hidden
    window.actions["undo"].trigger()
    assert not window.controller.annotation.tracks[mapping[5]].locked
