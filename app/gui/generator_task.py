"""Run a core generator job (``app.core.progress``) off the UI thread on the existing `TaskRunner`.

A stand-in for the one generic worker (``app/gui/worker.py``) with the same outcome signals: every yielded item
arrives on the UI thread through ``yielded``, then ``returned(value)``, ``failed(error)`` or ``aborted()``.
Abort throws `Cancelled` into the job between two yields, so its ``finally`` and ``except Cancelled`` clean up.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.core.errors import Cancelled
from app.core.progress import Job
from app.gui.tasks import TaskRunner


class GeneratorTask(QObject):
    yielded = Signal(object)
    returned = Signal(object)
    failed = Signal(object)
    aborted = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._runner = TaskRunner(self)
        self._runner.finished.connect(self.returned)
        self._runner.failed.connect(self._on_failed)

    @property
    def running(self) -> bool:
        return self._runner.running

    def start(self, job: Job) -> None:
        self._runner.start(lambda progress, cancel: self._drive(job, cancel))

    def abort(self) -> None:
        self._runner.cancel()

    def stop(self) -> None:
        """Abort and wait for the job's thread to end (closing a window); its outcome is not reported."""
        self._runner.stop()

    def _drive(self, job: Job, cancelled: Callable[[], bool]) -> object:
        """On the worker thread: step the job, relaying items, until it returns; abort when asked."""
        while True:
            try:
                item = job.throw(Cancelled()) if cancelled() else next(job)
            except StopIteration as finished:
                return finished.value
            self.yielded.emit(item)  # queued to the UI thread, where this object lives

    def _on_failed(self, error: object) -> None:
        if isinstance(error, Cancelled):
            self.aborted.emit()
        else:
            self.failed.emit(error)
