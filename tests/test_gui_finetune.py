"""Analyze → Fine-tune: the dialog driven with real clicks (offscreen) on a tiny synthetic project."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.core.models import ModelLibrary
from app.gui.finetune_dialog import FinetuneDialog
from dvis_models import load_checkpoint
from tests.finetune_project import dataset, make_project, one_thread, other_base  # noqa: F401 - fixtures
from tests.gui_helpers import errors, open_focused, video_path, window  # noqa: F401 - fixtures

TRAINING = 180_000  # ms: a few iterations and two scorings, on a busy shared CPU


def make_dialog(qtbot, dataset, tmp_path, iterations: int) -> FinetuneDialog:
    dialog = FinetuneDialog(make_project(dataset, tmp_path / "project"), library=tmp_path / "lib")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.iterations.selectAll()
    qtbot.keyClicks(dialog.iterations, str(iterations))
    qtbot.keyClicks(dialog.name, "tuned")
    return dialog


def test_dialog_trains_plots_the_loss_shows_the_scores_and_offers_a_rerun(qtbot, dataset, tmp_path, errors):
    dialog = make_dialog(qtbot, dataset, tmp_path, iterations=3)
    assert not dialog.resume_button.isEnabled() and not dialog.rerun_button.isEnabled()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=TRAINING)

    assert errors == []
    assert dialog.points[0] == [1, 2, 3] and list(dialog.curve.getData()[0]) == [1, 2, 3]
    assert dialog.scores.text().startswith("VPQ on 2 held-out frames (online): before ")
    assert "Installed tuned in the model library" in dialog.status.text()
    assert [model.name for model in ModelLibrary(tmp_path / "lib").list()] == ["tuned"]
    assert dialog.rerun_button.isEnabled() and not dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(dialog.rerun_requested) as rerun:
        qtbot.mouseClick(dialog.rerun_button, Qt.MouseButton.LeftButton)
    assert rerun.args[0].model == "model:tuned" and not dialog.isVisible()


def test_dialog_cancels_then_resumes_from_the_checkpoint(qtbot, dataset, tmp_path, errors):
    dialog = make_dialog(qtbot, dataset, tmp_path, iterations=30)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialog.points[0]) >= 2, timeout=TRAINING)
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Cancelled after iteration"), timeout=TRAINING)
    stopped = dialog.points[0][-1]
    assert dialog.resume_button.isEnabled() and dialog.start_button.isEnabled() and errors == []
    assert ModelLibrary(tmp_path / "lib").list() == []

    dialog.iterations.selectAll()
    qtbot.keyClicks(dialog.iterations, "3")  # a resumed run keeps its own 30 iterations
    qtbot.mouseClick(dialog.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialog.points[0]) >= 1, timeout=TRAINING)
    assert dialog.points[0][0] in (stopped + 1, stopped + 2)  # the state is saved where the cancel reached the job
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.task.running, timeout=TRAINING)


def test_dialog_fine_tunes_the_base_model_chosen_and_refuses_a_missing_file(qtbot, dataset, tmp_path, errors):
    library = ModelLibrary(tmp_path / "lib")
    library.add(other_base(tmp_path / "other.pth"), "other")
    dialog = FinetuneDialog(make_project(dataset, tmp_path / "project"), library=tmp_path / "lib",
                            project_model="bundled")
    qtbot.addWidget(dialog)
    dialog.show()
    combo = dialog.base.combo
    assert combo.currentText() == "The project's model (bundled)" and dialog.request(False).base is None
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "The project's model (bundled)", "Bundled model (CPU-friendly)", "other (bundled_small, installed)",
        "Checkpoint file…"]  # no untrained presets: there is nothing to fine-tune in them

    combo.setFocus()
    for _ in range(3):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText() == "Checkpoint file…" and not dialog.start_button.isEnabled()  # no file named yet
    qtbot.keyClicks(dialog.base.checkpoint, str(tmp_path / "missing.pth"))
    assert dialog.start_button.isEnabled()
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(errors), timeout=TRAINING)
    assert "missing.pth does not exist" in errors[0][1] and dialog.start_button.isEnabled()

    qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert combo.currentData() == "model:other"
    dialog.iterations.selectAll()
    qtbot.keyClicks(dialog.iterations, "1")
    qtbot.keyClicks(dialog.name, "tuned")
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=TRAINING)
    assert len(errors) == 1
    tuned, other = (load_checkpoint(library.path(name)).state_dict() for name in ("tuned", "other"))
    assert all(tuned[k].equal(v) for k, v in other.items() if k.startswith("backbone."))  # trained from "other"


def test_analyze_menu_asks_for_a_saved_project_first(window, video_path, qtbot, errors):
    (analyze,) = [a.menu() for a in window.menuBar().actions() if a.text() == "&Analyze"]
    action = window.actions["finetune"]
    assert action in analyze.actions() and not action.isEnabled()  # no video yet
    open_focused(window, video_path, qtbot)
    assert action.isEnabled()
    action.trigger()
    assert errors and "save this video as a project first" in errors[0][1]


def test_fine_tune_from_the_menu_then_rerun_keeps_locked_tracks(window, dataset, tmp_path, qtbot, errors):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    locked = 1  # the user locked the first track
    folder = make_project(dataset, tmp_path / "project", locked=locked)
    window.open_path(folder)
    annotation = window.controller.annotation
    assert annotation.tracks[locked].locked
    locked_masks = [annotation.track_map(i) == locked for i in range(annotation.num_frames)]
    seen = []

    def drive_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        seen.append(dialog)
        dialog.iterations.selectAll()
        qtbot.keyClicks(dialog.iterations, "2")
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.result is not None, timeout=TRAINING)
        qtbot.mouseClick(dialog.rerun_button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, drive_dialog)
    window.actions["finetune"].trigger()
    assert isinstance(seen[0], FinetuneDialog) and errors == []
    assert [model.name for model in ModelLibrary().list()] == ["project-tracker"]
    qtbot.waitUntil(lambda: not window.runner.running, timeout=TRAINING)
    assert errors == []
    assert window.controller.project.model["model"] == "model:project-tracker"  # the run used it
    assert window.controller.project.model["short_edge"] == 64
    annotation = window.controller.annotation
    assert all(((annotation.track_map(i) == locked) == mask).all() for i, mask in enumerate(locked_masks))
