"""Small things a user meets: merge warnings, status counts, toolbar sync, object list widths, shortcut names,
focus after dialogs, and opening files (check first, then ask; readable errors)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core import edits
from tests.gui_helpers import answer_message_box, errors, load_scripted, video_path, window  # noqa: F401


def test_merging_tracks_present_in_the_same_frames_asks_first(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person, car = mapping[5], mapping[6]
    annotation = window.controller.annotation
    window.controller.select([person, car])

    seen = answer_message_box("Cancel")
    window.actions["merge"].trigger()
    assert seen and f"Tracks {person} and {car} are both present in 12 frames (0, 1, 2, 3, 4, 5, 6, 7, …)" in seen[0]
    assert car in annotation.tracks and window.controller.undo_stack.count() == 0  # nothing merged

    seen = answer_message_box("Merge Anyway")
    window.actions["merge"].trigger()
    assert seen and car not in annotation.tracks


def test_merging_tracks_one_after_the_other_is_silent(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person, car = mapping[5], mapping[6]
    annotation = window.controller.annotation
    annotation.apply(edits.DeleteTrack(car, 0, 6))  # car only in frames 6-11
    annotation.apply(edits.DeleteTrack(person, 6, None))  # person only in frames 0-5
    window.controller.select([person, car])
    seen = answer_message_box("Cancel")  # would cancel a warning, if one came
    window.actions["merge"].trigger()
    qtbot.wait(50)
    assert not seen and car not in annotation.tracks
    assert annotation.track_frames(person) == list(range(12))


def test_ctrl_z_right_after_a_dialog_closed_undoes(window, video_path, qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    window.open_path(video_path)
    mapping = load_scripted(window)
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    window.controller.select(mapping[5])

    def choose_car() -> None:  # typed into the real relabel dialog, closed with Enter
        dialog = QApplication.activeModalWidget()
        if dialog is None or QApplication.focusWidget() is not dialog.search:
            QTimer.singleShot(10, choose_car)  # not shown and focused yet
            return
        qtbot.keyClicks(dialog.search, "car")
        qtbot.keyClick(dialog.search, Qt.Key.Key_Return)

    QTimer.singleShot(0, choose_car)
    qtbot.keyClick(window.view, Qt.Key.Key_C)
    assert window.controller.annotation.tracks[mapping[5]].category_id == 48  # car
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    assert QApplication.focusWidget() is window.view  # the keyboard is back where it was
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.controller.annotation.tracks[mapping[5]].category_id == 60  # person again
