"""Propagate: the selected track's mask on the current frame (its keyframe) through the video.

The dialog asks direction, where to stop, the engine and the overlap policy; the core plans the run
(``app.core.propagation.labelling``) and it goes to the window's background-job runner with progress and
Cancel. What it propagated (all of it, or the frames done before Cancel) becomes one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from app.core.errors import Cancelled
from app.core.progress import Job, Progress
from app.core.propagation.labelling import (
    AppliedPropagation,
    PropagateOptions,
    PropagationResult,
    plan_propagation,
    propagation_job,
)
from app.gui.controller import StudioController, UserActionError

DIRECTION_NAMES = {"forward": "Forward", "backward": "Backward", "both": "Both ways"}
STOP_NAMES = {"disappearance": "The object disappears (or the range ends)", "range_end": "The end of the range",
              "next_keyframe": "The track's next keyframe (fill between keyframes only)"}
ENGINE_NAMES = {"flow": "Optical flow (fast, no model)", "model": "DVIS model features + flow"}
OVERLAP_NAMES = {False: "Take pixels from other unlocked tracks", True: "Fill only void pixels"}


TaskJob = Callable[[Callable[[int, int], None], Callable[[], bool]], object]  # TaskRunner's job(progress, cancelled)


def generator_task(job: Job, on_item: Callable[[object], None]) -> TaskJob:
    """A generator job as a ``TaskRunner`` job (the one adapter; the generic worker replaces it): each yielded
    ``Progress`` is reported, other items go to ``on_item`` (called on the worker thread: hand it a signal's
    emit), a cancel request throws ``Cancelled`` in, and the job's return value is the result (None when it
    let ``Cancelled`` out)."""

    def task(progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> object:
        try:
            item = next(job)
            while True:
                if isinstance(item, Progress):
                    progress(item.done, item.total or 0)
                else:
                    on_item(item)
                item = job.throw(Cancelled) if cancelled() else next(job)
        except StopIteration as finished:
            return finished.value
        except Cancelled:
            return None

    return task


class PropagateDialog(QDialog):
    """Direction, range and stop rule, engine and overlap policy of one propagation."""

    def __init__(self, num_frames: int, keyframe: int, track_id: int, engines: list[str],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Propagate track {track_id} from frame {keyframe}")
        self.direction = _combo(DIRECTION_NAMES)
        self.stop_at = _combo(STOP_NAMES)
        self.first = QSpinBox(minimum=0, maximum=keyframe, value=0)
        self.last = QSpinBox(minimum=keyframe, maximum=num_frames - 1, value=num_frames - 1)
        frames = QHBoxLayout()
        frames.addWidget(self.first)
        frames.addWidget(self.last)
        self.engine = _combo({name: ENGINE_NAMES[name] for name in engines})
        self.engine.setToolTip("The model engine needs a model: it is offered once DVIS ran in this session or project")
        self.overlap = _combo(OVERLAP_NAMES)
        form = QFormLayout(self)
        form.addRow("Direction", self.direction)
        form.addRow("Range (frames)", frames)
        form.addRow("Stop at", self.stop_at)
        form.addRow("Engine", self.engine)
        form.addRow("Where other tracks are", self.overlap)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Propagate")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> PropagateOptions:
        return PropagateOptions(self.direction.currentData(), self.stop_at.currentData(), self.first.value(),
                                self.last.value() + 1, self.engine.currentData(), self.overlap.currentData())


def _combo(names: dict) -> QComboBox:
    combo = QComboBox()
    for value, text in names.items():
        combo.addItem(text, value)
    return combo


class Propagator(QObject):
    """The Propagate action: asks, plans (errors before anything runs), runs in the background while each
    finished frame is written and shown, and makes the whole run one undo step (also after Cancel or a failure)."""

    _frame_done = Signal(object)  # a FrameMask, emitted on the worker thread, handled on this (the UI) thread

    def __init__(self, controller: StudioController, *, start_task: Callable, failed,
                 open_dialog: Callable[[QDialog], None],
                 run_action: Callable[[str, Callable[[], object]], object], model_source: Callable[[], str | None],
                 status: Callable[[str], None], parent: QWidget):
        super().__init__(parent)
        self.controller = controller
        self._start_task, self._open_dialog, self._run_action = start_task, open_dialog, run_action
        self._model_source, self._status, self._parent = model_source, status, parent
        self._applied: AppliedPropagation | None = None  # of the running propagation
        self._keyframe = 0
        self._frames: set[int] = set()
        self._frame_done.connect(self._on_frame)
        failed.connect(self._on_failed)  # the window reports the error; the frames written stay, undoable
        controller.loaded.connect(self._forget)  # a stopped run's frames went with the document it wrote to

    def ask(self) -> None:
        c = self.controller
        if c.video is None or c.selected is None:
            raise UserActionError("Select the track to propagate (click its mask), on a frame where its mask is right.")
        track_id, keyframe = c.selected, c.frame_index
        engines = ["flow", "model"] if self._model_source() is not None else ["flow"]
        dialog = PropagateDialog(c.num_frames, keyframe, track_id, engines, self._parent)
        def start() -> None:
            self.start(track_id, keyframe, dialog.options())

        dialog.accepted.connect(lambda: self._run_action("Propagate", start))
        self._open_dialog(dialog)

    def start(self, track_id: int, keyframe: int, options: PropagateOptions) -> None:
        c = self.controller
        propagation = plan_propagation(c.annotation, track_id, keyframe, options)
        source = self._model_source()
        load = (lambda: load_model(source)) if options.engine == "model" and source is not None else None
        job = propagation_job(propagation, track_id, Path(c.video.path), options.engine, load)
        task = generator_task(job, self._frame_done.emit)
        self._start_task(f"Propagating track {track_id} from frame {keyframe}…", task, self._finish)
        self._applied, self._keyframe, self._frames = AppliedPropagation(c.annotation, track_id), keyframe, set()

    def _on_frame(self, frame_mask) -> None:
        if self._applied is not None:
            self._applied.add(frame_mask)
            self._frames.add(frame_mask.frame)

    def _close(self) -> list[int]:
        """Mark what was propagated and push it as one undo step; returns its frames."""
        applied, self._applied = self._applied, None
        frames = sorted(self._frames)
        undo = applied.finish(self._keyframe, frames) if applied is not None else None
        if undo is not None:
            self.controller.session.history.push_applied(undo, undo.label)
        return frames

    def _on_failed(self, error: object) -> None:
        self._close()

    def _forget(self) -> None:
        self._applied = None

    def _finish(self, result: PropagationResult | None) -> None:
        frames = self._close()
        if not frames:
            self._status("Propagation stopped before any frame was done." if result is None or result.cancelled
                         else "Nothing to propagate: no frame lies between the keyframe and where it stops.")
            return
        done = f"{len(frames)} frame{'s' if len(frames) > 1 else ''} ({frames[0]}-{frames[-1]})"
        self._status(f"Cancelled; the {done} propagated before it are kept (Ctrl+Z undoes them)." if result.cancelled
                     else f"Propagated over {done}; Ctrl+Z undoes all of it.")


def load_model(source: str):
    """The model for ``source`` (cached across runs), for prompts and propagation: the one place they get it.
    Called on a worker thread, which imports torch."""
    from app.gui.inference import load_model as load

    return load(source)
