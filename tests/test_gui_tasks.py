"""The GUI runs core generator jobs through TaskRunner (`generator_task`): progress arrives on the UI thread,
Cancel throws `Cancelled` into the job at its next yield; and the Export dialog builds a request."""

from __future__ import annotations

import threading
from pathlib import Path

from app.core.errors import Cancelled
from app.core.progress import Progress
from app.gui.dialogs import ExportDialog
from app.gui.tasks import TaskRunner, generator_task


def test_a_generator_job_reports_and_returns(qtbot):
    def job():
        for done in range(1, 4):
            yield Progress(done, 3)
            yield "a partial result"  # not progress: not reported
        return "value"

    runner = TaskRunner()
    reports = []
    runner.progress.connect(lambda done, total: reports.append((done, total)))
    with qtbot.waitSignal(runner.finished, timeout=10_000) as finished:
        runner.start(generator_task(job()))
    assert finished.args == ["value"] and reports == [(1, 3), (2, 3), (3, 3)] and not runner.running


def test_cancel_throws_cancelled_into_the_job(qtbot):
    started, release = threading.Event(), threading.Event()
    cleaned: list[str] = []

    def job():
        try:
            yield Progress(0, None)
            started.set()
            release.wait(10)
            yield Progress(1, None)  # Cancel was pressed meanwhile: Cancelled arrives here
            cleaned.append("went on")
        finally:
            cleaned.append("cleaned up")

    runner = TaskRunner()
    with qtbot.waitSignal(runner.failed, timeout=10_000) as failed:
        runner.start(generator_task(job()))
        assert started.wait(10)
        runner.cancel()
        release.set()
    assert isinstance(failed.args[0], Cancelled) and cleaned == ["cleaned up"]


def test_export_dialog_builds_a_request(qtbot, tmp_path):
    dialog = ExportDialog(12, [5], str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.kind.setCurrentIndex(dialog.kind.findData("masks"))
    dialog.start.setValue(2)
    dialog.stop.setValue(6)
    dialog.target.setText(str(tmp_path / "masks"))
    request = dialog.request()
    assert (request.kind, request.tracks, request.start, request.stop) == ("masks", (5,), 2, 6)
    assert request.target == Path(tmp_path / "masks")
    dialog.kind.setCurrentIndex(dialog.kind.findData("vipseg"))
    assert not dialog.start.isEnabled() and dialog.request().stop is None  # a dataset holds every frame
