"""UI-thread work cut into steps, with the event loop running between them.

Filling the panels of a large document (thousands of frames, hundreds of tracks) takes a few hundred
milliseconds of Qt calls, which must run on the UI thread; in one go they would freeze the window that long.
`Steps` runs them one after another and, once a turn of the event loop has used its time budget, goes on with
the rest in the next turn, so input and painting come in between. A small document's steps fit one turn.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QTimer

BUDGET_S = 0.02  # the UI thread's time per turn before the event loop gets a turn (a step is not cut)


class Steps(QObject):
    """Runs a sequence of steps on the UI thread, the first one in the next turn of the event loop."""

    def __init__(self, budget_s: float = BUDGET_S, parent: QObject | None = None):
        super().__init__(parent)
        self._budget_s = budget_s
        self._steps: deque[Callable[[], object]] = deque()
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self._turn)

    @property
    def pending(self) -> bool:
        """Whether steps are waiting for their turn."""
        return bool(self._steps)

    def run(self, steps: Iterable[Callable[[], object]]) -> None:
        """Run `steps` from the next turn on, in place of any not run yet (they are out of date)."""
        self._steps = deque(steps)
        self._timer.start()

    def cancel(self) -> None:
        self._steps.clear()
        self._timer.stop()

    def _turn(self) -> None:
        deadline = time.perf_counter() + self._budget_s
        while self._steps and time.perf_counter() < deadline:
            self._timer.start()  # the rest goes on in the next turn, also when this step raises
            self._steps.popleft()()
        if not self._steps:
            self._timer.stop()
