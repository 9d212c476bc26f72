"""Undo commands: a thin QUndoCommand around the core's reversible edit operations.

The core op is applied *before* the command is pushed (so an `AnnotationError` reaches the action
that asked for it instead of vanishing inside Qt's redo call); the command then stores the op and
its inverse, and redo/undo just apply one or the other.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand


class EditCommand(QUndoCommand):
    """One user edit; `redo` applies the op, `undo` applies its inverse."""

    def __init__(self, annotation, op, inverse, text: str, record: Callable[[object, object, str], None] | None = None):
        super().__init__(text)
        self._annotation = annotation
        self._record = record or (lambda op, inverse, text: None)  # the project's history log
        self._op = op
        self._inverse = inverse
        self._applied = True  # the first redo() (called by QUndoStack.push) must not apply twice

    def redo(self) -> None:
        if self._applied:
            return
        self._inverse = self._annotation.apply(self._op)
        self._record(self._op, self._inverse, self.text())
        self._applied = True

    def undo(self) -> None:
        inverse = self._inverse
        self._op = self._annotation.apply(inverse)
        self._record(inverse, self._op, f"Undo {self.text()}")
        self._applied = False
