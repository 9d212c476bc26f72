"""The one Qt worker: runs a job (a generator, see `app.core.progress`) on a QThread, in napari's spirit.

A `Worker` runs one job at a time and lives on the UI thread: connect its signals once, `start` jobs as they
come. Every signal arrives on the UI thread. The job runs until its next yield; there the worker waits while
paused (the item is shown on resume, so nothing arrives after a pause) and, once aborted, throws `Cancelled` into
the generator so its `finally` blocks clean up (the item is dropped); a job that ends with `Cancelled` (thrown in
or raised by itself) is `aborted`, never `errored`. After `stop()` (closing the window, replacing the document)
nothing more of that job reaches the UI, even signals it had already queued.

Signals carry strings and objects, never Python bools: PySide6 6.12 drops a reference to True on every Python-side
emit of True (the interpreter aborts after enough runs), so a job yields and returns no bare bool either.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from app.core.errors import Cancelled
from app.core.progress import Job, Progress

RETURNED, ERRORED, ABORTED = "returned", "errored", "aborted"


class _JobThread(QThread):
    """Drives the generator. Its signals are emitted on this thread and queued to the `Worker` on the UI thread."""

    item = Signal(object)  # whatever the job yielded
    waiting = Signal(str)  # "paused" when it stops between yields, "resumed" when it goes on
    ended = Signal(str, object)  # RETURNED / ERRORED / ABORTED, the value or the exception

    def __init__(self, job: Job):
        super().__init__()
        self._job = job
        self.abort = threading.Event()
        self.go_on = threading.Event()  # cleared while paused
        self.go_on.set()

    def run(self) -> None:
        try:
            value = self._drive()
        except Cancelled:
            self.ended.emit(ABORTED, None)
        except Exception as error:  # noqa: BLE001 - handed to the UI thread, which shows it
            self.ended.emit(ERRORED, error)
        else:
            self.ended.emit(RETURNED, value)

    def _drive(self) -> Any:
        job = self._job
        while True:
            if self.abort.is_set():
                self._abort()
            try:
                item = next(job)
            except StopIteration as finished:
                return finished.value
            self._wait_while_paused()  # what the job made after the user paused is shown on resume
            if self.abort.is_set():
                self._abort()  # and not at all after an abort
            self.item.emit(item)

    def _abort(self) -> None:
        """Throw `Cancelled` in; the job ends aborted whether it lets it through, returns, or goes on (closed)."""
        try:
            self._job.throw(Cancelled("Stopped by the user."))
        except StopIteration:
            pass
        else:
            self._job.close()
        raise Cancelled("Stopped by the user.")

    def _wait_while_paused(self) -> None:
        if self.go_on.is_set():
            return
        self.waiting.emit("paused")
        self.go_on.wait()
        if not self.abort.is_set():
            self.waiting.emit("resumed")


class Worker(QObject):
    """One job at a time on its own QThread; `running` says whether one is, `is_paused` whether it is paused."""

    started = Signal()
    yielded = Signal(object)  # anything the job yields that is not a Progress (e.g. a FrameResult)
    progress = Signal(object)  # app.core.progress.Progress
    returned = Signal(object)  # the job's return value
    errored = Signal(object)  # the exception
    aborted = Signal()  # the job ended with Cancelled
    paused = Signal()  # the job stopped between two yields
    resumed = Signal()
    finished = Signal()  # after returned, errored or aborted

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: _JobThread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def is_paused(self) -> bool:
        return self._thread is not None and not self._thread.go_on.is_set()

    def start(self, job: Job) -> None:
        if self.running:
            raise RuntimeError("this worker is already running a job")
        thread = _JobThread(job)
        # Bound methods of this UI-thread object: the connections are queued (a lambda would run in the thread).
        thread.item.connect(self._on_item)
        thread.waiting.connect(self._on_waiting)
        thread.ended.connect(self._on_ended)
        self._thread = thread
        thread.start()
        self.started.emit()

    def pause(self) -> None:
        """The job stops at its next yield (`paused` says when) until `resume`; nothing it yields is shown before."""
        if self._thread is not None:
            self._thread.go_on.clear()

    def resume(self) -> None:
        if self._thread is not None:
            self._thread.go_on.set()

    def quit(self) -> None:
        """Abort: at its next yield the job gets `Cancelled` thrown in and ends as `aborted` (a paused one too)."""
        if self._thread is not None:
            self._thread.abort.set()
            self._thread.go_on.set()

    def stop(self) -> None:
        """Abort and block until the job's thread has ended; nothing more of this job reaches the UI."""
        thread = self._thread
        if thread is None:
            return
        self.quit()
        thread.wait()
        self._forget()

    def _current(self) -> bool:
        """Whether the signal being handled comes from the running job (not from a stopped one)."""
        return self._thread is not None and self.sender() is self._thread

    def _forget(self) -> None:
        thread, self._thread = self._thread, None
        for signal in (thread.item, thread.waiting, thread.ended):
            signal.disconnect()
        thread.wait()
        thread.deleteLater()

    def _on_item(self, item: object) -> None:
        if self._current():
            (self.progress if isinstance(item, Progress) else self.yielded).emit(item)

    def _on_waiting(self, what: str) -> None:
        if self._current():
            (self.paused if what == "paused" else self.resumed).emit()

    def _on_ended(self, outcome: str, payload: object) -> None:
        if not self._current():
            return
        self._forget()
        if outcome == RETURNED:
            self.returned.emit(payload)
        elif outcome == ERRORED:
            self.errored.emit(payload)
        else:
            self.aborted.emit()
        self.finished.emit()
