"""Run a plain-Python job (export, import, evaluation) on a QThread with progress and cancel.

The job is a callable `job(progress, cancel) -> result` where `progress(done, total)` reports and
`cancel()` returns True once the user cancelled. `generator_task` adapts a core job (a generator, see
`app.core.progress`) to that shape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.errors import Cancelled
from app.core.progress import Job, Progress


def generator_task(job: Job) -> Callable:
    """A TaskRunner job running the core generator `job`: each yielded Progress is reported, and once `cancel()`
    is set `Cancelled` is thrown in at the next yield (so the job cleans up; it then raises or returns)."""

    def task(progress: Callable[[int, int], None], cancel: Callable[[], bool]) -> object:
        while True:
            try:
                item = job.throw(Cancelled()) if cancel() else next(job)
            except StopIteration as finished:
                return finished.value
            if isinstance(item, Progress):
                progress(item.done, item.total or 0)

    return task


class _JobWorker(QObject):
    progress = Signal(int, int)
    done = Signal(object)
    failed = Signal(object)

    def __init__(self, job: Callable):
        super().__init__()
        self._job = job
        self.cancelled = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            result = self._job(lambda done, total: self.progress.emit(int(done), int(total)), self.cancelled.is_set)
        except Exception as error:  # noqa: BLE001 - handed to the UI thread, which shows it
            self.failed.emit(error)
        else:
            self.done.emit(result)
        QThread.currentThread().quit()  # the thread ends with the job, so TaskRunner.stop can wait for it


class TaskRunner(QObject):
    """One background job at a time; `finished(result)` or `failed(error)` arrive on the UI thread."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _JobWorker | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, job: Callable) -> None:
        if self.running:
            raise RuntimeError("a background job is already running")
        thread, worker = QThread(), _JobWorker(job)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)  # bound methods of this UI-thread object: queued connections
        worker.failed.connect(self._on_failed)
        self._thread, self._worker = thread, worker
        thread.start()

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancelled.set()

    def stop(self) -> None:
        """Cancel and block until the job's thread has ended; its queued signals are dropped."""
        if self._worker is not None:
            self._worker.cancelled.set()
            self._thread.wait()
            self._stop_thread()

    def _current(self) -> bool:
        """Whether the signal being handled comes from the running job (not from a stopped one)."""
        return self._worker is not None and self.sender() is self._worker

    def _stop_thread(self) -> None:
        thread, self._thread, self._worker = self._thread, None, None
        thread.quit()
        thread.wait()

    def _on_progress(self, done: int, total: int) -> None:
        if self._current():
            self.progress.emit(done, total)

    def _on_done(self, result: object) -> None:
        if self._current():
            self._stop_thread()
            self.finished.emit(result)

    def _on_failed(self, error: object) -> None:
        if self._current():
            self._stop_thread()
            self.failed.emit(error)
