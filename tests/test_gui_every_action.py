"""Every menu action, triggered on a window with an annotated video and a selected track, either does its work or
opens a dialog that a user can close: none may end in an unexpected error (a dialog that raises on opening, say)."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from tests.gui_helpers import errors, open_focused, video_path, window  # noqa: F401 - fixtures

NOT_TRIGGERED = {"quit"}  # closes the window under test


def close_modal_dialogs(opened: list[str]) -> None:
    """Close whatever modal dialog is open, as a user pressing Cancel would; note its class."""
    widget = QApplication.activeModalWidget()
    if isinstance(widget, (QDialog, QMessageBox)):
        opened.append(type(widget).__name__)
        widget.reject()


def test_every_action_opens_or_runs_without_an_unexpected_error(window, video_path, qtbot, errors):
    mapping = open_focused(window, video_path, qtbot)
    window.controller.select(sorted(mapping.values())[0])
    opened: list[str] = []
    closer = QTimer()
    closer.timeout.connect(lambda: close_modal_dialogs(opened))
    closer.start(30)
    try:
        for name, action in window.actions.items():
            if name in NOT_TRIGGERED:
                continue
            action.trigger()
            qtbot.waitUntil(lambda: not window.tasks.running and not window.runner.running, timeout=60_000)
    finally:
        closer.stop()
    unexpected = [(title, message) for title, message in errors if "Unexpected error" in message]
    assert not unexpected
    assert {"ExportDialog", "RunDialog"} <= set(opened)  # the dialogs really opened (and were closed)
