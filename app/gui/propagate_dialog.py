"""Propagate: the selected track's mask on the current frame (its keyframe) through the video.

The dialog asks direction, where to stop, the engine and the overlap policy; the core plans the run
(``app.core.propagation.labelling``) and it goes to the window's background-job runner with progress and
Cancel. What it propagated (all of it, or the frames done before Cancel) becomes one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from app.core.model_source import load_model
from app.core.propagation.labelling import (
    AppliedPropagation,
    FrameMask,
    PropagateOptions,
    PropagationResult,
    plan_propagation,
    propagation_job,
)
from app.gui.controller import StudioController, UserActionError
from app.gui.dialogs import ok_cancel_buttons
from app.gui.worker import Worker

DIRECTION_NAMES = {"forward": "Forward", "backward": "Backward", "both": "Both ways"}
STOP_NAMES = {"disappearance": "The object disappears (or the range ends)", "range_end": "The end of the range",
              "next_keyframe": "The track's next keyframe (fill between keyframes only)"}
ENGINE_NAMES = {"flow": "Optical flow (fast, no model)", "model": "DVIS model features + flow"}
OVERLAP_NAMES = {False: "Take pixels from other unlocked tracks", True: "Fill only void pixels"}


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
        buttons = ok_cancel_buttons(self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Propagate")
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

    def __init__(self, controller: StudioController, *, start_task: Callable, tasks: Worker,
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
        tasks.yielded.connect(self._on_frame)  # each finished frame, on this (the UI) thread
        tasks.errored.connect(self._on_failed)  # the window reports the error; the frames written stay, undoable
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
        self._start_task("Propagation", f"Propagating track {track_id} from frame {keyframe}…", job, self._finish,
                         cancelled=self._on_cancelled)
        self._applied, self._keyframe, self._frames = AppliedPropagation(c.annotation, track_id), keyframe, set()

    def _on_frame(self, frame_mask: object) -> None:
        if self._applied is not None and isinstance(frame_mask, FrameMask):
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

    def _finish(self, result: PropagationResult) -> None:
        frames = self._close()
        self._status(f"Propagated over {_frames_text(frames)}; Ctrl+Z undoes all of it." if frames
                     else "Nothing to propagate: no frame lies between the keyframe and where it stops.")

    def _on_cancelled(self) -> str:
        """Cancel keeps the frames done: they become one undo step. Returns the status text."""
        frames = self._close()
        return (f"Cancelled; the {_frames_text(frames)} propagated before it are kept (Ctrl+Z undoes them)." if frames
                else "Propagation stopped before any frame was done.")


def _frames_text(frames: list[int]) -> str:
    return f"{len(frames)} frame{'s' if len(frames) > 1 else ''} ({frames[0]}-{frames[-1]})"
