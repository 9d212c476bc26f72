"""How long jobs report: a job is a generator that yields `Progress` (and any partial results) and returns its value.

One shape for every long job (inference, export, import, evaluation, propagation, fine-tuning) lets one runner
serve them all: the GUI's worker runs the generator on a thread, pauses and aborts between yields (aborting throws
`Cancelled` into the generator, so its `finally` blocks clean up), and the CLI and tests drive it with `run_job`.
Work that can only report through callbacks (a library's progress hooks) becomes a job with `threaded`; `Rate`
turns a job's progress into a speed and the time left.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from app.core.errors import Cancelled

Result = TypeVar("Result")


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units (None: unknown total); `text` names the phase when it is not obvious."""

    done: int
    total: int | None
    text: str = ""


Job = Generator[Any, None, Result]  # yields Progress or partial results, returns the job's value


def run_job(job: Job[Result], on_yield: Callable[[Any], None] | None = None) -> Result:
    """Drive `job` to the end on this thread, handing every yielded item to `on_yield`; return its value."""
    while True:
        try:
            item = next(job)
        except StopIteration as finished:
            return finished.value
        if on_yield is not None:
            on_yield(item)


def threaded(work: Callable[[Callable[[Any], None], Callable[[], bool]], Result]) -> Job[Result]:
    """`work(report, cancelled)`, a computation that reports through a callback, as a job.

    `work` runs on a helper thread and each `report(item)` is yielded by the job, so progress from deep inside a
    library (the pipeline's phases, a download's chunks) arrives while it happens. The helper waits while an item
    is unread, so a paused job stops within an item. Once the job is aborted (or closed), `cancelled()` is True and
    `report` raises `Cancelled`; the job waits for `work` to end and ends with the abort. Otherwise it returns what
    `work` returned, or raises what it raised.
    """
    items: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end: list[tuple[bool, Any]] = []  # (raised, value or exception); the list itself is the last item handed over

    def hand_over(item: Any) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return
            except queue.Full:
                continue
        raise Cancelled("The job was stopped.")

    def main() -> None:
        try:
            end.append((False, work(hand_over, stop.is_set)))
        except Exception as error:  # noqa: BLE001 - re-raised by the job on its own thread
            end.append((True, error))
        try:
            hand_over(end)
        except Cancelled:
            pass  # the job is gone: nobody waits for the end

    helper = threading.Thread(target=main, name="job", daemon=True)
    helper.start()
    try:
        while (item := items.get()) is not end:
            yield item
    finally:
        stop.set()
        helper.join()
    raised, outcome = end[0]
    if raised:
        raise outcome
    return outcome


class Rate:
    """Units per second and time left, from a job's `Progress`: the first report is the origin, paused time is
    not counted (frames/s and ETA of a run, MB/s of a download)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._origin: tuple[int, float] | None = None  # (done, when) of the first report
        self._paused_at: float | None = None
        self.last: Progress | None = None

    def update(self, progress: Progress) -> None:
        if self._origin is None:
            self._origin = (progress.done, self._clock())
        self.last = progress

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = self._clock()

    def resume(self) -> None:
        if self._paused_at is not None and self._origin is not None:
            done, since = self._origin
            self._origin = (done, since + self._clock() - self._paused_at)
        self._paused_at = None

    @property
    def per_second(self) -> float | None:
        """Units per second since the first report (None before any progress)."""
        if self._origin is None or self.last is None:
            return None
        done, since = self._origin
        elapsed = (self._paused_at or self._clock()) - since
        return (self.last.done - done) / elapsed if elapsed > 0 and self.last.done > done else None

    @property
    def seconds_left(self) -> float | None:
        rate = self.per_second
        if rate is None or self.last.total is None:
            return None
        return max(0, self.last.total - self.last.done) / rate
