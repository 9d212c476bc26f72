"""Stability diagnostics of the open annotation on a worker of their own (a long video takes seconds), without
blocking edits: a result computed while the annotation changed is stale, so it is recomputed instead of shown."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.core import jobs
from app.core.session import Session
from app.gui.errors import report_exception
from app.gui.worker import Worker


class Diagnostics(QObject):
    """Runs `jobs.diagnose_annotation` and keeps the result in the session when it is still current."""

    updated = Signal()  # the session holds diagnostics of the annotation as it is now
    status = Signal(str)

    def __init__(self, session: Session, window: QWidget):
        super().__init__(window)
        self.session = session
        self.worker = Worker(self)
        self._window = window
        self.worker.returned.connect(self._on_returned)
        self.worker.aborted.connect(self._on_aborted)
        self.worker.errored.connect(self._on_errored)

    def run(self) -> None:
        """Diagnose the annotation as it is now (nothing when there is none or a diagnosis runs)."""
        if self.session.annotation is None or self.worker.running:
            return
        self.session.begin_diagnostics()
        self.worker.start(jobs.diagnose_annotation(self.session.annotation))

    def _on_returned(self, diagnostics: list) -> None:
        if self.session.set_diagnostics(diagnostics):
            self.updated.emit()
        else:
            self.run()  # the annotation changed meanwhile

    def _on_aborted(self) -> None:
        if self.session.diagnostics_stale:
            self.run()  # stopped because the annotation changed: recompute on the new state
        else:
            self.status.emit("Stability diagnostics cancelled.")

    def _on_errored(self, error: object) -> None:
        if self.session.diagnostics_stale:
            self.run()  # the annotation changed under the reader: try again on the new state
        else:
            report_exception(self._window, "Stability diagnostics failed", error)
