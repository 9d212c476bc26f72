"""How the GUI reports errors: one `show_error` function and an excepthook that never aborts.

Every user-facing failure goes through `show_error`, so tests can patch that single function instead
of fighting modal dialogs, and the look of error dialogs stays the same everywhere.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

log = logging.getLogger(__name__)


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """Show a modal error dialog (the only place the GUI builds one)."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception types a user can cause; their message is shown as-is (it says what to do)."""
    from app.core.errors import DVISError, StudioError

    return (StudioError, DVISError)


def report_exception(parent: QWidget | None, title: str, error: BaseException) -> None:
    """Show `error`: user errors with their own message, anything else as an unexpected failure."""
    if isinstance(error, user_error_types()):
        show_error(parent, title, str(error))
    elif isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        show_error(parent, title, f"{error.strerror or error}{where}. Check the path and its permissions.")
    else:
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        log.error("Unexpected error: %s", details)
        note = _work_note(parent)
        show_error(parent, title, f"Unexpected error: {error!r}" + (f"\n{note}" if note else ""), details)


def _work_note(parent: QWidget | None) -> str:
    """What the error left of the user's work, told by the document window `parent` belongs to (if any)."""
    controller = getattr(parent.window(), "controller", None) if parent is not None else None
    return controller.work_note() if controller is not None else ""


def _excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    error.__traceback__ = tb
    report_exception(QApplication.activeWindow(), "DVIS Studio", error)


def install_excepthook() -> None:
    """Unhandled exceptions in Qt slots show a dialog instead of aborting the app."""
    sys.excepthook = _excepthook
