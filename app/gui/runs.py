"""DVIS runs of the open document on a worker of their own: each frame's result is written into the session as it
arrives, pausing keeps the frames/s and time left honest, and the end of a run (finished, cancelled or failed)
becomes one undo step with a status line that says where it stands."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.core.inference import RunRequest, SharedDecode, frames_text, inference_job
from app.core.progress import Progress, Rate
from app.core.session import Session
from app.gui.errors import report_exception
from app.gui.worker import Worker

RESUME_HINT = "Model → Resume Inference (Ctrl+P) continues"


class Runs(QObject):
    """Starts, pauses and ends model runs; `run_action(title, action)` is the window's error boundary;
    `shared()` gives what shares a run's decoding (the open video's scrubber, filling its proxy), if anything."""

    status = Signal(str)
    ended = Signal()  # a run ended and its results are in the history: diagnostics follow

    def __init__(self, session: Session, window: QWidget, run_action: Callable[[str, Callable[[], object]], object],
                 shared: Callable[[], SharedDecode | None] = lambda: None):
        super().__init__(window)
        self._shared = shared
        self.session = session
        self.worker = Worker(self)
        self._window, self._run_action = window, run_action
        self._rate = Rate()  # frames/s and ETA of the running inference
        self._demo = False  # the start-up demo: a missing bundled model is a status line, not an error dialog
        self.worker.yielded.connect(self._on_result)
        self.worker.progress.connect(self._on_progress)
        self.worker.returned.connect(lambda _: self._finish(cancelled=False))
        self.worker.aborted.connect(lambda: self._finish(cancelled=True))
        self.worker.errored.connect(self._on_failed)

    def start(self, request: RunRequest, demo: bool = False) -> None:
        run = self.session.begin_run(request)
        self._rate, self._demo = Rate(), demo
        self.worker.start(inference_job(run, self._shared()))

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the running inference; paused time is not in the ETA."""
        if not self.worker.running:
            return
        (self.worker.pause if paused else self.worker.resume)()
        (self._rate.pause if paused else self._rate.resume)()
        if self._rate.last is not None:
            self._on_progress(self._rate.last)
        elif paused:  # the model is still loading
            self.status.emit(f"Paused; {RESUME_HINT}")

    def _on_result(self, result) -> None:
        self._run_action("Inference result", lambda: self.session.add_result(result))

    def _on_progress(self, progress: Progress) -> None:
        """A phase's own text, else "Paused at …" or frames/s and ETA."""
        if progress.text:
            self.status.emit(progress.text)
            return
        self._rate.update(progress)
        self.status.emit(f"Paused at {progress.done}/{progress.total} frames; {RESUME_HINT}" if self.worker.is_paused
                         else frames_text(self._rate))

    def _finish(self, cancelled: bool) -> None:
        demo, self._demo = self._demo, False
        end = self._run_action("Inference result", lambda: self.session.finish_run(cancelled=cancelled))
        if demo and end is not None and not end.cancelled:
            self.session.history.set_clean()  # the start-up demo is where a new user starts, not an edit to save
        if end is not None and end.cancelled:
            self.status.emit(f"Cancelled at frame {end.resume_at}; the finished frames are kept. Run DVIS (Ctrl+R) "
                             f"continues from frame {end.resume_at}." if end.resume_at is not None
                             else "Cancelled; the finished frames are kept.")
        elif end is not None:
            self.status.emit("Inference finished.")
        self.ended.emit()

    def _on_failed(self, error: object) -> None:
        self._run_action("Inference result", self.session.fail_run)
        demo, self._demo = self._demo, False
        if demo:
            self.status.emit(f"Demo clip loaded; the bundled model could not run ({error}). Use Model → Run DVIS.")
        else:
            self.status.emit("Inference failed.")
            report_exception(self._window, "Inference failed", error)
