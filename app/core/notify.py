"""Plain-Python change notification: what the Qt-free core offers its observers (the GUI, a project, tests)."""

from __future__ import annotations

from collections.abc import Callable


class Notifier:
    """A list of callbacks called in order with the same arguments; a callback may disconnect itself."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., object]] = []

    def connect(self, callback: Callable[..., object]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., object]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: object) -> None:
        for callback in list(self._callbacks):
            callback(*args)
