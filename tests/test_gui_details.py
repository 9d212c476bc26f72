"""Small things a user meets: merge warnings, status counts, toolbar sync, object list widths, shortcut names,
focus after dialogs, and opening files (check first, then ask; readable errors)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core import edits
from tests.gui_helpers import (  # noqa: F401
    answer_message_box,
    errors,
    load_scripted,
    open_focused,
    refresh_panels,
    video_path,
    window,
)


def test_merging_tracks_present_in_the_same_frames_asks_first(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person, car = mapping[5], mapping[6]
    annotation = window.controller.annotation
    window.controller.select([person, car])

    seen = answer_message_box("Cancel")
    window.actions["merge"].trigger()
    assert seen and f"Tracks {person} and {car} are both present in 12 frames (0, 1, 2, 3, 4, 5, 6, 7, …)" in seen[0]
    assert car in annotation.tracks and len(window.session.history) == 0  # nothing merged

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

    mapping = open_focused(window, video_path, qtbot)
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


def test_status_bar_counts_follow_edits_undo_and_redo(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    qtbot.waitUntil(lambda: window.counts_label.text().startswith("3 tracks · 0 stability markers"), timeout=10_000)
    window.controller.select(mapping[6])
    window.actions["delete"].trigger()
    qtbot.waitUntil(lambda: window.counts_label.text().startswith("2 tracks · "), timeout=2000)
    window.actions["undo"].trigger()
    qtbot.waitUntil(lambda: window.counts_label.text().startswith("3 tracks · "), timeout=2000)
    window.actions["redo"].trigger()
    qtbot.waitUntil(lambda: window.counts_label.text().startswith("2 tracks · "), timeout=2000)

    window.controller.select(mapping[5])  # person: cut it out of frames 4-5, a fragment the diagnostics mark
    window.controller.delete_selected(4, 6)
    qtbot.waitUntil(lambda: "updating" not in window.counts_label.text() and bool(window.controller.diagnostics),
                    timeout=10_000)
    markers = len(window.controller.diagnostics)
    assert window.counts_label.text() == f"2 tracks · {markers} stability markers"
    window.actions["undo"].trigger()
    qtbot.waitUntil(lambda: window.counts_label.text() == "2 tracks · 0 stability markers", timeout=10_000)


def test_mask_mode_box_and_labels_box_follow_keys_and_menu(window, video_path, qtbot):
    open_focused(window, video_path, qtbot)
    qtbot.keyClick(window.view, Qt.Key.Key_2)
    assert window.controller.display.mode == "contour" and window.mode_combo.currentData() == "contour"
    window.actions["mode_cutout"].trigger()  # View menu
    assert window.mode_combo.currentData() == "cutout"
    window.mode_combo.setCurrentIndex(window.mode_combo.findData("fade"))  # the box itself
    assert window.controller.display.mode == "fade" and window.actions["mode_fade"].isChecked()
    qtbot.keyClick(window.view, Qt.Key.Key_T)
    assert not window.controller.display.labels and not window.labels_box.isChecked()
    window.labels_box.click()
    assert window.controller.display.labels and window.actions["labels"].isChecked()


def test_object_list_columns_fit_ids_over_ten_and_long_class_names(window, video_path, qtbot):
    window.open_path(video_path)
    load_scripted(window)
    refresh_panels(window)  # columns sized for ids 1-3
    annotation = window.controller.annotation
    for track_id, category in ((10, 75), (123, 77)):  # cupboard_or_showcase_or_storage_rack, traveling_case_...
        track_map = annotation.track_map(0).copy()
        track_map[52:60, track_id % 90:track_id % 90 + 4] = track_id
        annotation.add_track(category, track_id=track_id)
        annotation.set_frame(0, track_map)
    refresh_panels(window)
    table, header = window.objects.table, window.objects.table.horizontalHeader()
    model = table.model()
    assert model.rowCount() == 5
    for row in range(model.rowCount()):
        for column in range(model.columnCount()):
            needed = table.sizeHintForIndex(model.index(row, column)).width()
            assert header.sectionSize(column) >= needed, (row, column, model.index(row, column).data())
    widest_id = table.fontMetrics().horizontalAdvance("123")
    assert header.sectionSize(0) > widest_id + table.iconSize().width()


def test_shortcut_rows_have_distinct_names(window):
    from app.gui.dialogs import ShortcutsDialog

    dialog = ShortcutsDialog(list(window.actions.values()), window)
    names = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert "Fill Region" in names and "Filled Masks" in names


def test_opening_checks_the_file_before_asking_about_unsaved_edits(window, video_path, tmp_path, monkeypatch, errors):
    window.open_path(video_path)
    mapping = load_scripted(window)  # unsaved model results
    asked: list[str] = []

    def decline() -> bool:
        asked.append(window.controller.video.path.name)
        return False

    monkeypatch.setattr(window, "confirm_discard", decline)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(video_path.read_bytes()[:300])  # an interrupted copy
    window.open_initial(str(damaged))
    assert not asked  # nothing to ask about: the file does not open
    assert len(errors) == 1 and "damaged.mp4" in errors[0][1]
    assert "not a video FFmpeg can read, or the file is damaged" in errors[0][1] and "Errno" not in errors[0][1]
    assert window.session.modified and mapping[5] in window.controller.annotation.tracks  # work kept

    other = tmp_path / "other.mp4"
    other.write_bytes(video_path.read_bytes())
    window.open_path(other)  # opens fine: now the user is asked, declines, and keeps the open document
    assert asked == ["clip.mp4"]
    assert window.controller.video.path.name == "clip.mp4" and window.session.modified
    assert str(other.resolve()) not in window.recent.paths()

    monkeypatch.setattr(window, "confirm_discard", lambda: True)
    window.open_path(other)
    assert window.controller.video.path.name == "other.mp4" and not window.session.modified


def test_a_vipseg_dataset_is_imported_before_asking_about_unsaved_edits(window, video_path, tmp_path, qtbot,
                                                                         monkeypatch, errors):
    from app.core.jobs import ExportRequest

    window.open_path(video_path)
    load_scripted(window)
    original = window.controller.annotation
    root = tmp_path / "dataset"
    with qtbot.waitSignal(window.tasks.finished, timeout=60_000):
        window.start_export(ExportRequest("vipseg", root))
    asked: list[bool] = []
    monkeypatch.setattr(window, "confirm_discard", lambda: asked.append(window.opener.worker.running) or False)
    window.open_path(root)
    assert not asked  # reading and importing first, in the background
    qtbot.waitUntil(lambda: bool(asked), timeout=60_000)
    assert asked == [False]  # asked once the import had finished; declined
    assert window.controller.annotation is original and window.session.busy is None and not errors
    assert str(root.resolve()) not in window.recent.paths()


def test_the_results_dialog_shows_every_value_whole(window, qtbot):
    """The scores dialog opens wide enough for its longest value: no column cut off, no horizontal scrolling."""
    from app.gui.dialogs import ResultsDialog

    long_value = "3 of 5 (ground truth 7, predicted 9, switches 12)"
    window._show_scores({"VPQ": 0.51234, "STQ": 0.4, "matched tracks": long_value})
    dialog = next(d for d in window.findChildren(ResultsDialog) if d.isVisible())
    qtbot.waitExposed(dialog)
    table = dialog.table
    assert table.item(2, 1).text() == long_value
    for column in range(2):
        assert table.columnWidth(column) >= table.sizeHintForColumn(column)
    assert table.viewport().width() >= table.horizontalHeader().length()  # both columns fully in view
    assert not table.horizontalScrollBar().isVisible()
