"""The one Qt worker on real threads (offscreen): order, pause / resume, abort, errors, stop, responsiveness."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.errors import Cancelled
from app.core.progress import Progress
from app.gui.worker import Worker
from tests.gui_helpers import LoopGaps


@pytest.fixture
def worker(qtbot):
    worker = Worker()
    yield worker
    worker.stop()


def record(worker: Worker) -> list[tuple]:
    """Every signal the worker emits, in order, with the thread it arrived on."""
    seen: list[tuple] = []
    for name in ("started", "yielded", "progress", "returned", "errored", "aborted", "paused", "resumed", "finished"):
        getattr(worker, name).connect(lambda *args, name=name: seen.append((name, *args, threading.get_ident())))
    return seen


def counting(stop_after: int | None = None, pause_s: float = 0.01, cleaned: list | None = None):
    """Yields Progress(i) and i for i = 0, 1, ... (forever unless `stop_after`); notes its clean-up in `cleaned`."""
    i = 0
    try:
        while stop_after is None or i < stop_after:
            time.sleep(pause_s)
            yield Progress(i, stop_after)
            yield i
            i += 1
        return "done"
    finally:
        if cleaned is not None:
            cleaned.append(i)


def test_yields_arrive_in_order_on_the_ui_thread_then_the_value(worker, qtbot):
    seen = record(worker)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start(counting(stop_after=20, pause_s=0))
    ui = threading.get_ident()
    assert {entry[-1] for entry in seen} == {ui}
    names = [entry[0] for entry in seen]
    assert names[0] == "started" and names[-2:] == ["returned", "finished"]
    assert [entry[1] for entry in seen if entry[0] == "yielded"] == list(range(20))
    assert [entry[1] for entry in seen if entry[0] == "progress"] == [Progress(i, 20) for i in range(20)]
    assert seen[-2][1] == "done" and not worker.running


def test_pause_stops_the_job_and_resume_continues(worker, qtbot):
    values: list[int] = []
    worker.yielded.connect(values.append)
    worker.start(counting())
    qtbot.waitUntil(lambda: len(values) >= 3, timeout=10_000)
    with qtbot.waitSignal(worker.paused, timeout=5_000):
        worker.pause()
        count = len(values)  # items already emitted may still be queued for the UI thread
    assert worker.is_paused and worker.running
    qtbot.wait(400)
    assert count <= len(values) <= count + 1, "a paused job went on"
    count = len(values)
    qtbot.wait(300)
    assert len(values) == count, "a paused job went on"
    with qtbot.waitSignal(worker.resumed, timeout=5_000):
        worker.resume()
    qtbot.waitUntil(lambda: len(values) >= count + 5, timeout=10_000)
    assert values == list(range(len(values))) and not worker.is_paused


def test_abort_runs_the_jobs_finally_and_ends_aborted_not_errored(worker, qtbot):
    cleaned: list[int] = []
    seen = record(worker)
    values: list[int] = []
    worker.yielded.connect(values.append)
    worker.start(counting(cleaned=cleaned))
    qtbot.waitUntil(lambda: len(values) >= 2, timeout=10_000)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.quit()
    names = [entry[0] for entry in seen]
    assert names[-2:] == ["aborted", "finished"] and "errored" not in names and "returned" not in names
    assert len(cleaned) == 1 and not worker.running


def test_what_the_job_yields_after_the_abort_is_not_shown(worker, qtbot):
    in_step, computing = threading.Event(), threading.Event()

    def job():
        yield 0
        in_step.set()
        computing.wait(10)  # a long step: the user aborts while it runs
        yield 1

    values: list[int] = []
    worker.yielded.connect(values.append)
    worker.start(job())
    assert in_step.wait(5)
    with qtbot.waitSignal(worker.aborted, timeout=5_000):
        worker.quit()
        computing.set()
    assert values == [0]


def test_abort_while_paused_ends_the_job(worker, qtbot):
    cleaned: list[int] = []
    with qtbot.waitSignal(worker.yielded, timeout=5_000):  # started: a job that never ran has nothing to clean up
        worker.start(counting(cleaned=cleaned))
    with qtbot.waitSignal(worker.paused, timeout=5_000):
        worker.pause()
    with qtbot.waitSignal(worker.aborted, timeout=5_000):
        worker.quit()
    assert cleaned and not worker.running


def test_a_job_that_raises_cancelled_itself_is_aborted(worker, qtbot):
    def job():
        yield Progress(0, 1)
        raise Cancelled("the download was stopped")

    seen = record(worker)
    with qtbot.waitSignal(worker.finished, timeout=5_000):
        worker.start(job())
    assert [entry[0] for entry in seen][-2:] == ["aborted", "finished"]


def test_an_exception_is_errored_with_the_exception(worker, qtbot):
    boom = ValueError("boom")

    def job():
        yield 1
        raise boom

    with qtbot.waitSignal(worker.errored, timeout=5_000) as errored:
        worker.start(job())
    assert errored.args == [boom] and not worker.running


def test_stop_blocks_until_the_job_ended_and_drops_its_late_signals(worker, qtbot):
    cleaned: list[int] = []
    seen = record(worker)
    worker.start(counting(pause_s=0, cleaned=cleaned))  # floods the UI thread's queue with items
    qtbot.waitUntil(lambda: any(entry[0] == "yielded" for entry in seen), timeout=10_000)
    worker.stop()
    assert cleaned, "stop() returned before the job's finally ran"
    assert not worker.running
    count = len(seen)
    qtbot.wait(300)  # the signals the stopped job had queued are delivered now, and dropped
    assert len(seen) == count
    assert not {"aborted", "finished", "returned"} & {entry[0] for entry in seen}
    with qtbot.waitSignal(worker.returned, timeout=10_000) as returned:  # the worker takes the next job
        worker.start(counting(stop_after=2, pause_s=0))
    assert returned.args == ["done"]


def test_the_event_loop_stays_responsive_while_a_job_computes(worker, qtbot):
    def busy():
        """Pure-Python work (it holds the GIL but for the interpreter's switches), a yield every 0.5 s."""
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            chunk = time.monotonic() + 0.5
            while time.monotonic() < chunk:
                sum(range(1000))
            yield Progress(0, None)

    loop = LoopGaps()
    loop.start()
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start(busy())
    loop.stop()
    gaps = loop.gaps
    # On the UI thread each step would stall the loop 0.5 s; a loaded CI machine (2 shared cores) delays a few ticks.
    assert len(gaps) > 30 and max(gaps) < 0.25, f"the UI thread stalled {max(gaps) * 1000:.0f} ms"
