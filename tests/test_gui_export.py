"""File → Export through the real dialog, the way a user arrives: Ctrl+E, fill the form, press OK."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDialogButtonBox

from tests.gui_helpers import FRAMES, errors, open_focused, video_path, window  # noqa: F401 - fixtures


def fill_export_dialog(window, qtbot, kind: str, target, seen: dict) -> None:
    """Answer the modal Export dialog: pick `kind`, type the destination, press OK (retries until it is open)."""
    from app.gui.dialogs import ExportDialog

    dialog = next((d for d in window.findChildren(ExportDialog) if d.isVisible()), None)
    if dialog is None:
        QTimer.singleShot(50, lambda: fill_export_dialog(window, qtbot, kind, target, seen))
        return
    seen.update(start=dialog.start.value(), stop=dialog.stop.value())
    dialog.kind.setCurrentIndex(dialog.kind.findData(kind))
    qtbot.keyClicks(dialog.target, str(target))
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def test_ctrl_e_exports_masks_through_the_dialog(window, video_path, qtbot, errors, tmp_path):
    open_focused(window, video_path, qtbot)
    target = tmp_path / "masks"
    seen: dict = {}
    QTimer.singleShot(50, lambda: fill_export_dialog(window, qtbot, "masks", target, seen))
    qtbot.keyClick(window.view, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.status_label.text().startswith("Exported to"), timeout=60_000)
    assert not errors
    assert seen == {"start": 0, "stop": FRAMES}  # the dialog offers the whole video
    pngs = sorted(target.rglob("*.png"))
    assert len(pngs) >= FRAMES  # at least one mask per frame for the tracks present
