"""How long jobs report: a job is a generator that yields `Progress` (and any partial results) and returns its value.

One shape for every long job (inference, export, import, evaluation, propagation, fine-tuning) lets one runner
serve them all: the GUI's worker runs the generator on a thread, pauses and aborts between yields (aborting throws
`Cancelled` into the generator, so its `finally` blocks clean up), and the CLI and tests drive it with `run_job`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

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
