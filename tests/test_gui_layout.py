"""The window's saved layout and size: what a user upgrading from an older version, or on a small screen, sees."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QToolBar


def make_window(qtbot, settings, tmp_path):
    from app.gui.main_window import MainWindow

    window = MainWindow(settings=settings, cache_dir=tmp_path / "cache")
    qtbot.addWidget(window)
    window.show()
    QApplication.processEvents()
    return window


def test_a_layout_saved_before_the_paint_toolbar_existed_keeps_it_on_its_own_row(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    old = make_window(qtbot, settings, tmp_path)
    old.removeToolBar(old.findChild(QToolBar, "paint toolbar"))
    state = old.saveState()  # unversioned, without the Paint row, as older releases saved it
    old.close()
    settings.setValue("window/state", state)
    window = make_window(qtbot, settings, tmp_path)
    main, paint = (window.findChild(QToolBar, name) for name in ("main toolbar", "paint toolbar"))
    assert paint.isVisible() and window.toolBarBreak(paint)
    assert paint.geometry().top() >= main.geometry().bottom()  # a row of its own, under the main one


def test_the_current_layout_is_restored(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    first = make_window(qtbot, settings, tmp_path)
    first.objects_dock.hide()
    first.close()  # saves geometry and layout
    window = make_window(qtbot, settings, tmp_path)
    assert not window.objects_dock.isVisible()


def test_the_default_size_fits_the_screen(qtbot, tmp_path):
    window = make_window(qtbot, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), tmp_path)
    screen = window.screen().availableGeometry()
    assert window.width() <= screen.width() and window.height() <= screen.height()


def test_an_autosave_note_passes_and_leaves_the_last_jobs_status(qtbot, tmp_path, monkeypatch):
    from tests.gui_helpers import load_scripted
    from tests.videos import make_video

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = make_window(qtbot, settings, tmp_path)
    monkeypatch.setattr(window, "confirm_discard", lambda: True)
    monkeypatch.setattr("app.gui.main_window.AUTOSAVE_NOTE_MS", 300)
    video = tmp_path / "clip.mp4"
    make_video(video, num_frames=6, size=(96, 64))
    window.open_path(video)
    load_scripted(window)
    window.status_label.setText("Propagated over 5 frames (1-5); Ctrl+Z undoes all of it.")
    window.autosave()
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Autosaved"), timeout=10_000)
    assert window.status_label.text().startswith("Propagated over 5 frames")  # not overwritten
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "", timeout=5_000)  # the note passes
    assert window.status_label.isVisible() and window.status_label.text().startswith("Propagated over 5 frames")
