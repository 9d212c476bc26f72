"""Shared fixtures for the GUI tests: a real window on a real encoded video, errors captured."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QSettings, QTimer

from dvis_models.categories import vipseg_categories
from dvis_models.types import FrameResult, Segment

PERSON, CAR, SKY = 60, 48, 28  # VIPSeg ids: two things and a stuff class
SIZE = (96, 64)  # width, height of the test video
FRAMES = 12


class LoopGaps:
    """The gaps between ticks of a 10 ms timer on the UI thread: how long its event loop was blocked at most.

    `busy` is the UI thread's CPU time in each gap: the work that blocked it, without the time a busy machine
    kept it waiting for a core (or a worker thread kept it waiting for the GIL).
    """

    def __init__(self):
        self.gaps: list[float] = []
        self.busy: list[float] = []
        self._last = self._last_cpu = 0.0
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last, self._last_cpu = time.monotonic(), time.thread_time()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        self.gaps.append(now - self._last)
        self.busy.append(cpu - self._last_cpu)
        self._last, self._last_cpu = now, cpu


@pytest.fixture
def errors(monkeypatch):
    """Every error dialog's (title, message) instead of a modal QMessageBox."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr("app.gui.errors.show_error",
                        lambda parent, title, message, details="": shown.append((title, message)))
    return shown


@pytest.fixture
def video_path(tmp_path):
    from tests.videos import make_video

    path = tmp_path / "clip.mp4"
    make_video(path, num_frames=FRAMES, size=SIZE)
    return path


@pytest.fixture
def window(qtbot, tmp_path, errors, monkeypatch):
    from app.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(win, "confirm_discard", lambda: True)  # pytest-qt closes the window after the test
    qtbot.addWidget(win)
    win.resize(1500, 920)  # a desktop-sized window (the offscreen screen is 800x800): the view tests' geometry
    win.show()
    return win


def view_point(view, x: float, y: float):
    """Viewport coordinates of the centre of image pixel (x, y) in a `VideoView`: where to click on a mask."""
    from PySide6.QtCore import QPointF

    return view.mapFromScene(QPointF(x + 0.5, y + 0.5))


def shown_picture(view) -> np.ndarray:
    """The (H, W, 3) RGB picture a `VideoView` shows now, read back from its pixmap."""
    from PySide6.QtGui import QImage

    image = view.pixmap_item.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def shown_results(window, title: str) -> dict[str, str]:
    """Name -> value of the open results dialog called `title` (e.g. the evaluation's scores)."""
    from app.gui.dialogs import ResultsDialog

    dialog = next(d for d in window.findChildren(ResultsDialog) if d.windowTitle() == title and d.isVisible())
    table = dialog.table
    return {table.item(row, 0).text(): table.item(row, 1).text() for row in range(table.rowCount())}


def scripted_result(index: int) -> FrameResult:
    """What a model could yield: a person moving right, a car, and sky on top (model ids 5, 6, 7)."""
    width, height = SIZE
    track_map = np.zeros((height, width), np.int32)
    track_map[:12, :] = 7
    x = 4 + 3 * index
    track_map[30:50, x : x + 14] = 5
    track_map[30:50, 60:80] = 6
    categories = vipseg_categories()
    segments = [Segment(i, c, categories[c].isthing, 0.9, int((track_map == i).sum()))
                for i, c in ((5, PERSON), (6, CAR), (7, SKY))]
    return FrameResult(index, track_map, segments)


def load_scripted(window) -> dict[int, int]:
    """Open state: every frame filled like inference would; returns model id -> track id."""
    from app.core.result_merger import ResultMerger

    merger = ResultMerger(window.controller.annotation)
    for index in range(window.controller.num_frames):
        merger.add(scripted_result(index))
    return merger.mapping


def open_focused(window, path, qtbot) -> dict[int, int]:
    """Open `path` with scripted model results (see `load_scripted`) and give the frame view the keyboard."""
    window.open_path(path)
    mapping = load_scripted(window)
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(window.view.hasFocus)
    return mapping


def answer_message_box(button_text: str) -> list[str]:
    """Click `button_text` on the modal QMessageBox (a real one, shown with exec) that the next action opens;
    returns [its text] once seen, [] if no box was open when the event loop next ran."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    seen: list[str] = []

    def click() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            next(b for b in box.buttons() if b.text().replace("&", "") == button_text).click()

    QTimer.singleShot(0, click)
    return seen


def refresh_panels(window) -> None:
    """Bring the panels and counts up to date now: the window's panel steps at once (it runs them over turns of
    the event loop)."""
    for step in window._panel_steps():
        step()
