"""Files through the window: export in a worker and re-import, save / reopen / autosave a project,
evaluate against a ground truth, diagnostics on the timeline, drag and drop, the shortcuts dialog."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.core import jobs
from app.core.errors import Cancelled
from app.core.jobs import ExportRequest
from app.core.vipseg import read_ground_truth
from tests.gui_helpers import (  # noqa: F401
    FRAMES,
    answer_message_box,
    errors,
    load_scripted,
    open_focused,
    shown_results,
    video_path,
    window,
)
from tests.job_helpers import cancel_after, run_reporting
from tests.test_project import logged


def export(window, qtbot, request: ExportRequest):
    with qtbot.waitSignal(window.tasks.returned, timeout=60_000) as done:
        window.start_export(request)
    return done.args[0]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Two id maps describe the same segments (ids may be renumbered)."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})


def test_vipseg_export_in_worker_then_reimport(window, video_path, qtbot, tmp_path, errors):
    window.open_path(video_path)
    load_scripted(window)
    original = window.controller.annotation
    maps = [original.track_map(i) for i in range(FRAMES)]
    categories = sorted(t.category_id for t in original.tracks.values())
    root = tmp_path / "dataset"
    export(window, qtbot, ExportRequest("vipseg", root))
    assert (root / "panoVIPSeg_categories.json").is_file() and not errors

    window.open_path(root)  # a dataset root opens its video for correction, read and imported in a worker
    qtbot.waitUntil(lambda: window.controller.annotation is not original, timeout=60_000)
    imported = window.controller.annotation
    assert imported is not original and window.controller.num_frames == FRAMES
    assert sorted(t.category_id for t in imported.tracks.values()) == categories
    for i in (0, 5, FRAMES - 1):
        assert same_partition(imported.track_map(i), maps[i])


def test_opening_a_dataset_reads_its_json_once_in_a_worker_and_checks_the_images(window, qtbot, tmp_path, monkeypatch,
                                                                                    errors):
    import threading

    from synthetic_vipseg import write_dataset

    from app.core.vipseg import reader

    root = tmp_path / "dataset"
    write_dataset(root)  # vid_a (4 frames), vid_b (3 frames)
    threads = []
    real_load = reader.load_json
    monkeypatch.setattr(reader, "load_json",
                        lambda *args: threads.append(threading.current_thread()) or real_load(*args))
    monkeypatch.setattr("app.gui.main_window.QInputDialog.getItem", lambda *args: ("vid_b", True))
    reports = []
    window.opener.progress.connect(lambda progress: reports.append((progress.done, progress.total)))
    window.open_path(root)
    assert window.controller.video is None  # the UI thread returned at once; reading goes on in the worker
    qtbot.waitUntil(lambda: window.controller.num_frames == 3, timeout=60_000)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()  # parsed once, off the UI thread
    assert reports and reports[-1] == (3, 3) and "Opened vid_b" in window.status_label.text() and not errors

    (root / "images/vid_a/00000002.jpg").unlink()  # vid_a's masks from frame 2 on would be shown a frame early
    monkeypatch.setattr("app.gui.main_window.QInputDialog.getItem", lambda *args: ("vid_a", True))
    with qtbot.waitSignal(window.opener.worker.errored, timeout=60_000):  # reading succeeds, the import is refused
        window.open_path(root)
    assert window.controller.num_frames == 3  # vid_b stays open
    assert len(errors) == 1 and "frame 00000002 has no image" in errors[0][1]


def test_editor_exports(window, video_path, qtbot, tmp_path, errors):
    window.open_path(video_path)
    mapping = load_scripted(window)
    person = mapping[5]
    result = export(window, qtbot, ExportRequest("cutouts", tmp_path / "cut", tracks=(person,), start=2, stop=4))
    assert len(result.paths) == 2 and not errors
    overlay = export(window, qtbot, ExportRequest("overlay", tmp_path / "overlay.mp4"))
    assert (tmp_path / "overlay.mp4").stat().st_size > 0 and overlay.frames == FRAMES


def test_export_into_unwritable_place_is_a_dialog(window, video_path, qtbot, tmp_path, errors):
    window.open_path(video_path)
    load_scripted(window)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with qtbot.waitSignal(window.tasks.errored, timeout=60_000):
        window.start_export(ExportRequest("masks", blocker / "masks"))
    assert len(errors) == 1 and "a_file" in errors[0][1]


def test_save_reopen_autosave_project(window, video_path, qtbot, tmp_path, errors):
    window.open_path(video_path)
    mapping = load_scripted(window)
    folder = tmp_path / "project"
    window.session.save_project(folder)
    assert not window.session.modified
    window.controller.select([mapping[5], mapping[6]])
    answer_message_box("Merge Anyway")
    window.actions["merge"].trigger()
    assert window.session.modified and window.windowTitle().startswith("clip.mp4 *")
    window.autosave()
    assert not window.session.modified and not errors
    assert window.windowTitle().startswith("clip.mp4 —")
    merged = window.controller.annotation.track_map(3)

    window.open_path(folder)  # reopening the project (the previous one is closed: its lock released)
    assert window.controller.project is not None
    assert np.array_equal(window.controller.annotation.track_map(3), merged)
    assert len(window.controller.annotation.tracks) == 2
    labels = [entry["label"] for entry in logged(window.controller.project)]
    assert any(label.startswith("Merge") for label in labels)


def test_undo_past_the_save_point_marks_the_title_again(window, video_path, qtbot, tmp_path, errors):
    mapping = open_focused(window, video_path, qtbot)
    window.session.save_project(tmp_path / "project")
    person = mapping[5]
    window.controller.select(person)
    assert window.windowTitle().startswith("clip.mp4 —")

    def key(key, modifier=Qt.KeyboardModifier.NoModifier) -> bool:
        """Press a real key on the frame view; returns whether the title shows unsaved changes."""
        qtbot.keyClick(window.view, key, modifier)
        return window.windowTitle().startswith("clip.mp4 *")

    assert key(Qt.Key.Key_L) and window.controller.annotation.tracks[person].locked  # lock: unsaved
    key(Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # saved into the project, written on the autosaver's thread
    qtbot.waitUntil(lambda: window.windowTitle().startswith("clip.mp4 —"))
    assert key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undone past the save point
    assert not window.controller.annotation.tracks[person].locked
    shift_control = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    assert not key(Qt.Key.Key_Z, shift_control)  # redone: what the project holds again
    assert window.controller.annotation.tracks[person].locked and not errors


def test_evaluate_against_own_export_is_perfect(window, video_path, qtbot, tmp_path, errors):
    window.open_path(video_path)
    load_scripted(window)
    root = tmp_path / "gt"
    export(window, qtbot, ExportRequest("vipseg", root))
    categories, (video,) = read_ground_truth(root)
    with qtbot.waitSignal(window.tasks.finished, timeout=60_000):
        window.start_evaluation(categories, video)
    scores = shown_results(window, "Evaluation")
    assert scores["VPQ"] == "1.0000" and scores["STQ"] == "1.0000" and not errors
    scores, seen = run_reporting(jobs.evaluate_annotation(window.controller.annotation, categories, video))
    assert scores["VPQ"] == 1.0 and seen == [(i, FRAMES) for i in range(1, FRAMES + 1)]
    with pytest.raises(Cancelled):  # Cancel stops it; the window says so
        cancel_after(jobs.evaluate_annotation(window.controller.annotation, categories, video), 2)


def test_diagnostics_become_timeline_markers(window, video_path, qtbot):
    window.open_path(video_path)
    mapping = load_scripted(window)
    window.controller.seek(6)
    window.controller.select(mapping[5])
    window.controller.split_selected()  # a split track = a fragment / switch the diagnostics must flag
    with qtbot.waitSignal(window.diagnosis.finished, timeout=60_000):
        window.actions["diagnose"].trigger()
    kinds = {d.kind for d in window.controller.diagnostics}
    assert kinds & {"fragment", "id_switch"}
    shown = [d for d in window.controller.diagnostics if d.track_id in window.timeline.lanes]
    qtbot.waitUntil(lambda: len(window.timeline.markers.data) == len(shown) > 0)  # the panels refresh in steps


def test_drop_a_video_file_opens_it(window, video_path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(video_path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.controller.num_frames == FRAMES


def test_a_dropped_file_is_copied_never_moved(window, video_path):
    """Shift+drag from a file manager proposes Move: accepting that would let the file manager delete the video."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(video_path))])
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    event = QDropEvent(QPointF(10, 10), actions, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.ShiftModifier)
    assert event.proposedAction() == Qt.DropAction.MoveAction
    window.dropEvent(event)
    assert window.controller.num_frames == FRAMES
    assert event.isAccepted() and event.dropAction() == Qt.DropAction.CopyAction


def test_shortcuts_dialog_lists_the_edit_shortcuts_and_view_gestures(window):
    from app.gui.dialogs import ShortcutsDialog
    from app.gui.video_view import GESTURES

    dialog = ShortcutsDialog(list(window.actions.values()), window, GESTURES)
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert rows["Undo"] == "Ctrl+Z" and rows["Redo"].startswith("Ctrl+Shift+Z")
    assert rows["Merge Selected Tracks"] == "M" and rows["Play / Pause"] == "Space"
    assert rows["Fill Similar Colour"] == "Shift+G" and rows["Polygon"] == "P"
    assert rows["Brush size"] == "Ctrl+Wheel" and rows["Polygon: close and fill"] == "Double-click, Enter"


def test_moved_video_is_relinked_when_opening_a_project(window, video_path, tmp_path, monkeypatch, errors):
    window.open_path(video_path)
    load_scripted(window)
    folder = tmp_path / "project"
    window.session.save_project(folder)
    window.session.project.close()
    window.session.project = None
    moved = tmp_path / "elsewhere" / "clip.mp4"
    moved.parent.mkdir()
    video_path.rename(moved)
    monkeypatch.setattr(window.opener, "locate_moved_video", lambda missing: moved)
    window.open_path(folder)
    assert not errors
    assert window.controller.project.video_path == moved and window.controller.num_frames == FRAMES


def test_no_edits_while_a_worker_uses_the_annotation(window, video_path, errors):
    window.open_path(video_path)
    mapping = load_scripted(window)
    window.session.begin_job("An export")  # as an export does
    window.controller.select([mapping[5], mapping[6]])
    window._update_actions()
    assert not window.actions["merge"].isEnabled()
    window._run_action("Merge", window.controller.merge_selected)
    assert errors and "An export is running" in errors[0][1]
    assert mapping[6] in window.controller.annotation.tracks


def test_open_menus_ask_before_dropping_unsaved_edits(window, video_path, tmp_path, monkeypatch, errors, qtbot):
    import cv2

    window.open_path(video_path)
    load_scripted(window)
    original = window.controller.annotation
    assert window.session.modified
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:08d}.jpg"), np.zeros((16, 24, 3), np.uint8))
    asked = []
    monkeypatch.setattr(window, "confirm_discard", lambda: asked.append(1) or False)
    monkeypatch.setattr("app.gui.main_window.QFileDialog.getExistingDirectory", lambda *args: str(folder))
    window.open_folder_dialog()
    assert len(asked) == 1 and window.controller.annotation is original  # "Cancel" keeps the edits
    with qtbot.waitSignal(window.opener.worker.errored, timeout=10_000):  # not a VIPSeg dataset: read in the background
        window.actions["open_vipseg"].trigger()
    assert len(asked) == 1 and len(errors) == 1 and window.controller.annotation is original  # nobody was asked
    monkeypatch.setattr(window, "confirm_discard", lambda: True)
    window.open_folder_dialog()
    assert window.controller.num_frames == 3 and len(errors) == 1



def test_cancelled_exports_say_so_without_an_error_dialog(window, video_path, tmp_path, monkeypatch, qtbot, errors):
    import threading

    window.open_path(video_path)
    load_scripted(window)
    gate = threading.Event()
    real_export = jobs.export

    def gated_export(*args):
        """The real export, standing still after its first frame until Cancel was pressed (no race with it)."""
        inner = real_export(*args)
        while True:
            try:
                item = next(inner)
            except StopIteration as end:
                return end.value
            try:
                yield item
            except Cancelled as cancel:
                inner.throw(cancel)  # the export's own clean-up runs, and Cancelled comes out of it
            gate.wait(10)

    monkeypatch.setattr(jobs, "export", gated_export)
    for kind, target, tail in (("masks", tmp_path / "masks", "so far are complete."),
                               ("vipseg", tmp_path / "dataset", "so far are complete, the JSON was not updated.")):
        gate.clear()
        with qtbot.waitSignal(window.tasks.progress, timeout=60_000):
            window.start_export(ExportRequest(kind, target))
        with qtbot.waitSignal(window.tasks.aborted, timeout=60_000):
            window.actions["cancel"].trigger()
            gate.set()
        assert window.status_label.text() == f"Export cancelled; the files in {target} {tail}" and not errors
        assert window.actions["export"].isEnabled() and window.session.busy is None


def type_in_file_dialog(name: str | None) -> list[str]:
    """Answer the modal QFileDialog (the real one, shown with exec) that the next action opens: replace its file
    name with `name` by typing (None: keep the suggestion), then press Enter. Returns [the suggested name] once seen;
    a dialog that Enter does not close is cancelled."""
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit

    seen: list[str] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(20, answer)  # not open yet
            return
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        seen.append(edit.text())
        if name is not None:
            edit.selectAll()
            QTest.keyClicks(edit, name)
        QTest.keyClick(edit, Qt.Key.Key_Return)
        QTimer.singleShot(1000, dialog, dialog.reject)  # Enter refused: fail, not hang (no call once it is gone)

    QTimer.singleShot(0, answer)
    return seen


def test_save_as_takes_a_typed_project_name_and_creates_its_folder(window, video_path, tmp_path, qtbot, errors):
    """File → Save As is a save dialog: Enter alone saves into the suggested new folder; a typed name is created."""
    open_focused(window, video_path, qtbot)  # opening the video makes its folder the last used one
    seen = type_in_file_dialog(None)
    qtbot.keyClick(window.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # no project yet: Save As
    assert seen == ["clip project"]
    qtbot.waitUntil(lambda: window.controller.project is not None, timeout=10_000)
    suggested = tmp_path / "clip project"
    assert window.controller.project.folder == suggested and (suggested / "project.json").exists()

    seen = type_in_file_dialog("My shots")
    window.actions["save_as"].trigger()
    assert seen == ["clip project 2"]  # the suggestion is always a folder that does not exist yet
    typed = tmp_path / "My shots"
    qtbot.waitUntil(lambda: window.controller.project.folder == typed, timeout=10_000)
    assert (typed / "project.json").exists() and window.status_label.text() == f"Saved {typed}" and not errors


def test_save_as_onto_a_file_says_what_to_do(window, video_path, tmp_path, qtbot, errors):
    """The name of an existing file is no project folder: a message says so, nothing is written, edits stay."""
    open_focused(window, video_path, qtbot)
    (tmp_path / "notes.txt").write_text("mine")
    type_in_file_dialog("notes.txt")
    window.actions["save_as"].trigger()
    qtbot.waitUntil(lambda: bool(errors), timeout=10_000)
    assert "notes.txt is a file. Choose a new or empty folder for the project." in errors[0][1]
    assert (tmp_path / "notes.txt").read_text() == "mine" and window.controller.project is None
    assert window.session.modified
