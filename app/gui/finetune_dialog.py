"""Analyze → Fine-tune on this project: train a model (the project's own by default) on the project's corrected
frames, then re-run with it.

The dialog picks the base model, the stage, iterations and library name, runs ``app.core.finetune`` in a worker
with a progress bar, a live loss plot and the time left, cancels (the job checkpoints) and resumes, and ends with
the before/after VPQ on the held-out frames and an offer to re-run the project with the fine-tuned model.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.finetune import STAGES, FinetuneRequest, FinetuneResult, LossPoint, can_resume, finetune, score_text
from app.core.progress import Progress
from app.gui.dialogs import ModelChooser
from app.gui.errors import report_exception
from app.gui.worker import Worker

STAGE_TEXT = {"tracker": "Tracker (segmenter frozen; as DVIS trains it)", "refiner": "Temporal refiner (offline mode)",
              "segmenter": "Segmenter (per-frame masks; slowest)"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class FinetuneDialog(QDialog):
    """``rerun_requested(result)``: the user chose to re-run the project with the fine-tuned model.
    ``project_model``: the model source the project was run with (named in the base-model choice)."""

    rerun_requested = Signal(object)

    def __init__(self, project: Path, parent: QWidget | None = None, library: Path | None = None,
                 project_model: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on this project")
        self.project, self.library = Path(project), library
        self.result: FinetuneResult | None = None
        self.task = Worker(self)
        self.task.yielded.connect(self._on_item)  # loss points
        self.task.progress.connect(self._on_item)
        self.task.returned.connect(self._on_returned)
        self.task.errored.connect(self._on_failed)
        self.task.aborted.connect(self._on_aborted)

        self.base = ModelChooser(presets=False, library=library, first=(
            f"The project's model ({project_model or 'as recorded'})", None))
        self.stage = QComboBox()
        for stage in STAGES:
            self.stage.addItem(STAGE_TEXT[stage], stage)
        self.iterations = QSpinBox(minimum=1, maximum=100_000, value=200, singleStep=50)
        self.name = QLineEdit()
        self.start_button, self.resume_button = QPushButton("Start"), QPushButton("Resume")
        self.cancel_button, self.rerun_button = QPushButton("Cancel"), QPushButton("Re-run the project with it")
        self.close_button = QPushButton("Close")
        self.progress = QProgressBar()
        self.status = QLabel("Trains on the frames you corrected (edited, imported or locked tracks) and measures VPQ "
                             "on some held out.")
        self.status.setWordWrap(True)
        self.scores = QLabel()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "loss")
        self.plot.setMinimumHeight(180)
        self.curve = self.plot.plot(pen=pg.mkPen("#1f77b4", width=2))
        self.points: tuple[list[int], list[float]] = ([], [])

        form = QFormLayout()
        form.addRow("Base model", self.base)
        form.addRow("Train", self.stage)
        form.addRow("Iterations", self.iterations)
        form.addRow("Model name", self.name)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.resume_button, self.cancel_button, self.rerun_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)
        layout.addWidget(self.scores)
        layout.addLayout(buttons)

        self.start_button.clicked.connect(lambda: self._start(resume=False))
        self.resume_button.clicked.connect(lambda: self._start(resume=True))
        self.cancel_button.clicked.connect(self.task.quit)
        self.rerun_button.clicked.connect(self._rerun)
        self.close_button.clicked.connect(self.reject)
        self.stage.currentIndexChanged.connect(self._update_buttons)
        self.base.combo.currentIndexChanged.connect(self._update_buttons)
        self.base.checkpoint.textChanged.connect(self._update_buttons)
        self.name.textChanged.connect(self._update_buttons)
        self._update_buttons()

    def request(self, resume: bool) -> FinetuneRequest:
        return FinetuneRequest(self.project, self.stage.currentData(), self.iterations.value(),
                               self.name.text().strip() or None, resume, library=self.library,
                               base=self.base.source())

    def _start(self, resume: bool) -> None:
        self.result = None
        self.points = ([], [])
        self.curve.setData([], [])
        self.scores.clear()
        self.task.start(finetune(self.request(resume)))
        self._update_buttons()

    def _on_item(self, item: object) -> None:
        if isinstance(item, LossPoint):
            self.points[0].append(item.iteration)
            self.points[1].append(item.loss)
            self.curve.setData(*self.points)
            self.status.setText(f"Training: iteration {item.iteration}/{item.total}, loss {item.loss:.3f}, "
                                f"about {_duration(item.seconds_left)} left")
        elif isinstance(item, Progress):
            self.progress.setRange(0, item.total or 0)
            self.progress.setValue(item.done)
            if not item.text.startswith("Training"):
                self.status.setText(f"{item.text}…")

    def _on_returned(self, result: FinetuneResult) -> None:
        self.result = result
        mode = "offline" if result.offline else "online"
        self.status.setText(f"Installed {result.name} in the model library ({result.stage}, {result.iterations} "
                            f"iterations on {result.train_frames} frames).")
        self.scores.setText(f"VPQ on {result.heldout_frames} held-out frames ({mode}): before "
                            f"{score_text(result.before.vpq)}, after {score_text(result.after.vpq)}  (things "
                            f"{score_text(result.before.things)} → {score_text(result.after.things)}, stuff "
                            f"{score_text(result.before.stuff)} → {score_text(result.after.stuff)})")
        self._update_buttons()

    def _on_failed(self, error: object) -> None:
        self.status.setText("Fine-tuning stopped.")
        self._update_buttons()
        report_exception(self, "Fine-tuning failed", error)

    def _on_aborted(self) -> None:
        # The job saved its state where the cancel reached it, which may be an iteration past the last one shown.
        done = self.points[0][-1] if self.points[0] else 0
        self.status.setText(f"Cancelled after iteration {done} or the next; Resume continues from the saved state."
                            if done else "Cancelled.")
        self._update_buttons()

    def _rerun(self) -> None:
        self.rerun_requested.emit(self.result)
        self.accept()

    def _update_buttons(self) -> None:
        running = self.task.running
        self.name.setPlaceholderText(FinetuneRequest(self.project, self.stage.currentData(),
                                                     library=self.library).model_name())
        for widget in (self.base, self.stage, self.iterations, self.name, self.close_button):
            widget.setEnabled(not running)
        self.start_button.setEnabled(not running and self.base.source() != "")  # "": a checkpoint file not named yet
        request = self.request(resume=True)
        self.resume_button.setEnabled(not running and can_resume(request.project, request.model_name()))
        self.cancel_button.setEnabled(running)
        self.rerun_button.setEnabled(not running and self.result is not None)

    def done(self, code: int) -> None:
        """Closing while training cancels it (the job checkpoints first, so it can be resumed)."""
        self.task.stop()
        super().done(code)


def open_finetune_dialog(window) -> None:
    """Analyze → Fine-tune: save the project (the job reads it as saved), then show the dialog; a re-run it asks
    for goes through the window's usual run path, with locked and edited tracks kept."""
    from app.core.inference import RunRequest
    from app.gui.controller import UserActionError

    project = window.controller.project
    if project is None:
        raise UserActionError("Fine-tuning learns from a saved project: save this video as a project first "
                              "(File → Save Project As…), correct some frames, then fine-tune.")
    if project.dirty:
        window.save()
    info = project.model or {}
    dialog = FinetuneDialog(project.folder, window, project_model=info.get("model"))
    dialog.rerun_requested.connect(lambda result: window.start_inference(RunRequest(
        video_path=Path(window.controller.video.path), model=result.model, offline=result.offline,
        short_edge=info.get("short_edge"), keep_edited=True)))
    dialog.exec()
