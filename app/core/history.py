"""Undo, redo and the "modified" marker of an annotation, without Qt.

Every state the annotation passes through gets a number. An edit made through :meth:`EditHistory.do`
is one step from one state to the next; undo and redo move between the two. A change written into
the annotation by someone else (a model run streaming its frames, recovered work) moves to a new
state too, and :meth:`EditHistory.push_applied` later makes all such changes since the last step one
undoable step. "Modified" is then a single comparison: is the current state the one last saved
(:meth:`EditHistory.set_clean`)? Undoing past a save makes the document modified again, and redoing
back to it clean.

A project observes the history through :attr:`EditHistory.applied` to log each edit it applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from app.core.edits import Edit
from app.core.notify import Notifier


@dataclass
class _Step:
    label: str
    edit: Edit | None  # None for a model run until it is undone (then: what redoes it)
    inverse: Edit
    before: int  # state number before the step
    after: int  # state number after it
    logged: bool  # user edits are logged (``applied``); a model run's changes never were


class EditHistory:
    """The undo / redo list of one annotation with a clean marker; bind it with :meth:`reset`."""

    def __init__(self, annotation=None) -> None:
        self.changed = Notifier()  # () after undo / redo / a new step / a new state / the clean marker moved
        self.applied = Notifier()  # (edit, inverse, label) for each user edit applied, undone or redone
        self.annotation = None
        self._numbers = count(1)
        self.reset(annotation)

    def reset(self, annotation) -> None:
        """Forget every step and follow `annotation` (None: nothing open); its current state is clean."""
        if self.annotation is not None and self._on_annotation_change in self.annotation.listeners:
            self.annotation.listeners.remove(self._on_annotation_change)
        self.annotation = annotation
        if annotation is not None:
            annotation.listeners.append(self._on_annotation_change)
        self._steps: list[_Step] = []
        self._index = 0  # steps [0, index) are applied
        self._state = next(self._numbers)
        self._clean: int | None = self._state
        self._outside_from: int | None = None  # the state before changes made outside the history began
        self._applying = False
        self.changed.emit()

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> int:
        """The number of the annotation's current state (equal numbers: equal annotations)."""
        return self._state

    @property
    def modified(self) -> bool:
        """Whether the annotation differs from the state last marked clean (saved)."""
        return self._state != self._clean

    def set_clean(self, state: int | None = None) -> None:
        """Mark `state` (default: the current one) as what is saved, e.g. a save that began at `state` finished."""
        self._clean = self._state if state is None else state
        self.changed.emit()

    def mark_modified(self) -> None:
        """The current state is not saved anywhere (e.g. work recovered after a crash)."""
        self._clean = None
        self.changed.emit()

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._steps)

    @property
    def undo_text(self) -> str:
        return self._steps[self._index - 1].label if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self._steps[self._index].label if self.can_redo else ""

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def index(self) -> int:
        """How many steps are applied (undo moves it down, redo up)."""
        return self._index

    # ------------------------------------------------------------------ changes
    def do(self, edit: Edit, label: str) -> Edit:
        """Apply `edit` as one undoable step; returns its inverse. A failing edit changes nothing (and raises)."""
        inverse = self._apply(edit)
        self.applied.emit(edit, inverse, label)
        self._push(_Step(label, edit, inverse, self._state, next(self._numbers), logged=True))
        return inverse

    def push_applied(self, inverse: Edit, label: str) -> None:
        """Make the changes written into the annotation since the last step (a model run) one undoable step;
        `inverse` puts back what they changed. Not logged: a project's saved masks hold model output."""
        before = self._state if self._outside_from is None else self._outside_from
        self._push(_Step(label, None, inverse, before, self._state, logged=False))

    def undo(self) -> None:
        if not self.can_undo:
            return
        step = self._steps[self._index - 1]
        step.edit = self._apply(step.inverse)  # redoing applies the inverse of what undo applied
        if step.logged:
            self.applied.emit(step.inverse, step.edit, f"Undo {step.label}")
        self._index -= 1
        self._move(step.before)

    def redo(self) -> None:
        if not self.can_redo:
            return
        step = self._steps[self._index]
        step.inverse = self._apply(step.edit)
        if step.logged:
            self.applied.emit(step.edit, step.inverse, step.label)
        self._index += 1
        self._move(step.after)

    # ------------------------------------------------------------------ internals
    def _apply(self, edit: Edit) -> Edit:
        self._applying = True
        try:
            return self.annotation.apply(edit)
        finally:
            self._applying = False

    def _push(self, step: _Step) -> None:
        del self._steps[self._index:]  # a new step drops what could be redone
        self._steps.append(step)
        self._index += 1
        self._move(step.after)

    def _move(self, state: int) -> None:
        self._state = state
        self._outside_from = None
        self.changed.emit()

    def _on_annotation_change(self, frames, tracks) -> None:
        if self._applying:
            return  # our own step: its state is set when it is done
        if self._outside_from is None:
            self._outside_from = self._state
        self._state = next(self._numbers)
        self.changed.emit()
