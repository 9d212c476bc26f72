"""Driving core jobs (generators yielding Progress, see app.core.progress) in tests as the GUI's worker does."""

from __future__ import annotations

from app.core.errors import Cancelled
from app.core.progress import Job, Progress, run_job


def run_reporting(job: Job) -> tuple[object, list[tuple[int, int | None]]]:
    """The job's value and the (done, total) of every Progress it yielded."""
    reports: list[tuple[int, int | None]] = []
    value = run_job(job, lambda item: reports.append((item.done, item.total)) if isinstance(item, Progress) else None)
    return value, reports


def cancel_after(job: Job, yields: int) -> None:
    """Let the job run to its `yields`-th yield, then throw Cancelled in, as the worker's abort does; the job is
    expected to raise it (the test wraps the call in pytest.raises(Cancelled))."""
    for _ in range(yields):
        next(job)
    job.throw(Cancelled())
