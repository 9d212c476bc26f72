"""Jobs without Qt: a callback-style computation as a job (`threaded`) and the rate / ETA clock."""

from __future__ import annotations

import threading

import pytest

from app.core.errors import Cancelled
from app.core.progress import Progress, Rate, run_job, threaded


def test_threaded_yields_each_report_in_order_and_returns_the_value():
    def work(report, cancelled):
        for i in range(5):
            report(i)
        return "value"

    seen: list[int] = []
    assert run_job(threaded(work), seen.append) == "value"
    assert seen == list(range(5))


def test_threaded_raises_what_the_work_raised_on_the_jobs_thread():
    def work(report, cancelled):
        report(1)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_job(threaded(work))


def test_an_unread_report_holds_the_work_back():
    """The helper waits while an item is unread: a job nobody drives (a paused one) soon stands still."""
    reported: list[int] = []

    def work(report, cancelled):
        for i in range(100):
            reported.append(i)
            report(i)

    job = threaded(work)
    assert next(job) == 0
    threading.Event().wait(0.3)
    assert len(reported) <= 3  # one read, one waiting in the hand-over, one blocked handing over
    job.close()


def test_aborting_the_job_cancels_the_work_and_waits_for_it():
    finished = threading.Event()
    reached: list[int] = []

    def work(report, cancelled):
        try:
            for i in range(10_000):
                if cancelled():
                    return "partial"
                reached.append(i)
                report(i)  # raises Cancelled once the job is gone
        finally:
            finished.set()

    job = threaded(work)
    assert next(job) == 0
    with pytest.raises(Cancelled):
        job.throw(Cancelled("stop"))
    assert finished.is_set(), "the job ended before its helper did"
    assert len(reached) <= 3


def test_rate_per_second_and_time_left():
    now = [0.0]
    rate = Rate(clock=lambda: now[0])
    assert rate.per_second is None and rate.seconds_left is None
    rate.update(Progress(100, 1100))  # a resumed download: the first report is the origin
    now[0] = 2.0
    rate.update(Progress(300, 1100))
    assert rate.per_second == 100.0 and rate.seconds_left == 8.0
    rate.pause()
    now[0] = 60.0
    assert rate.per_second == 100.0  # paused: the clock stands still
    rate.resume()
    now[0] = 62.0
    rate.update(Progress(500, None))
    assert rate.per_second == 100.0 and rate.seconds_left is None  # unknown total: no ETA
