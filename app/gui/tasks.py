"""Background tasks of the open document (exports, evaluation, propagation, reading a ground truth): one generator
job at a time on a `Worker`, while edits wait. The session's busy state names the running task, so a refused edit
says what runs."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.core.progress import Job
from app.core.session import Session
from app.gui.errors import report_exception
from app.gui.worker import Worker


class Tasks(QObject):
    """Starts a task with what to do with its result and what to say when it is cancelled; reports failures."""

    status = Signal(str)  # what the status bar says about the task
    ended = Signal()  # the task ended (before its result is handled): edits and the progress bar follow

    def __init__(self, session: Session, window: QWidget):
        super().__init__(window)
        self.session = session
        self.worker = Worker(self)
        self._window = window
        self._done: Callable[[object], None] | None = None
        self._cancelled: str | Callable[[], str] = ""  # what the status bar says when the task is cancelled
        self.worker.returned.connect(self._on_returned)
        self.worker.aborted.connect(self._on_aborted)
        self.worker.errored.connect(self._on_errored)

    def start(self, name: str, text: str, job: Job, done: Callable[[object], None],
              cancelled: str | Callable[[], str] = "Cancelled.") -> None:
        """Run `job`, called `name` where a refused edit says what runs, showing `text`; `done(result)` on
        completion, `cancelled` (text, or a callable giving it) on abort."""
        self.session.begin_job(name)  # edits wait for it
        self._done, self._cancelled = done, cancelled
        self.status.emit(text)
        self.worker.start(job)

    def _end(self) -> Callable[[object], None] | None:
        self.session.end_job()
        self.ended.emit()
        done, self._done = self._done, None
        return done

    def _on_returned(self, result: object) -> None:
        done = self._end()
        if done is None:
            return
        try:
            done(result)
        except Exception as error:  # noqa: BLE001 - the end of a task: shown like an action's error
            report_exception(self._window, "Finishing", error)

    def _on_aborted(self) -> None:
        self._end()
        cancelled = self._cancelled
        self.status.emit(cancelled() if callable(cancelled) else cancelled)

    def _on_errored(self, error: object) -> None:
        self._end()
        self.status.emit("Failed.")
        report_exception(self._window, "Background job failed", error)
