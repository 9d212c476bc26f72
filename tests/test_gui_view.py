"""Zoom and pan of the frame view, driven by real wheel, key and mouse events on the shown window."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.gui_helpers import errors, open_focused, video_path, window  # noqa: F401


def settle(qtbot, turns: int = 5) -> None:
    """Let the event loop run several turns (layouts, deferred resizes, timers)."""
    for _ in range(turns):
        QApplication.processEvents()
        qtbot.wait(10)


def wheel(view, pos: QPointF, notches: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """One real wheel event over the viewport at `pos` (viewport coordinates)."""
    event = QWheelEvent(pos, QPointF(view.viewport().mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase,
                        False)
    QApplication.sendEvent(view.viewport(), event)


def scene_at(view, pos: QPointF) -> QPointF:
    inverse, _ = view.viewportTransform().inverted()
    return inverse.map(pos)


def opened(window, video_path, qtbot):
    open_focused(window, video_path, qtbot)
    settle(qtbot)
    return window.view


def zoomed(window, video_path, qtbot):
    """The view zoomed 4 wheel notches about its centre (scroll bars on), and that centre."""
    view = opened(window, video_path, qtbot)
    center = view.viewport().rect().center()
    wheel(view, QPointF(center), 4)
    settle(qtbot)
    return view, center


def test_wheel_zoom_stays_through_event_loop_turns_resizes_and_redraws(window, video_path, qtbot):
    view = opened(window, video_path, qtbot)
    fitted = view.transform().m11()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    wheel(view, QPointF(view.viewport().rect().center()), 2)
    settle(qtbot)
    assert view.transform().m11() > 1.5 * fitted
    assert view.mapToScene(view.viewport().rect()).boundingRect().width() < 0.7 * visible.width()
    zoomed = view.transform().m11()
    window.resize(window.width() - 120, window.height() - 80)
    window.controller.step(1)  # a redraw
    window.actions["mode_contour"].trigger()  # another
    settle(qtbot)
    assert view.transform().m11() == zoomed
    window.actions["fit"].trigger()
    settle(qtbot)
    assert is_fitted(view)
    smaller = view.transform().m11()
    window.resize(window.width() + 300, window.height() + 100)
    settle(qtbot)
    assert is_fitted(view) and view.transform().m11() > smaller  # fit mode again: a bigger window refits


def is_fitted(view) -> bool:
    """The whole frame is visible and fills the viewport in one direction."""
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    frame = view.sceneRect()
    width, height = view.viewport().width(), view.viewport().height()
    best = min(width / frame.width(), height / frame.height())
    return visible.contains(frame) and view.transform().m11() > 0.9 * best


def test_wheel_zoom_keeps_the_point_under_the_cursor(window, video_path, qtbot):
    view = opened(window, video_path, qtbot)
    wheel(view, QPointF(view.viewport().rect().center()), 3)  # zoomed in both directions: scroll bars on
    settle(qtbot)
    assert view.horizontalScrollBar().maximum() > 0 and view.verticalScrollBar().maximum() > 0
    cursor = QPointF(view.viewport().width() * 0.3, view.viewport().height() * 0.6)
    before = scene_at(view, cursor)
    wheel(view, cursor, 1)
    settle(qtbot)
    after = scene_at(view, cursor)
    tolerance = 1.0 / view.transform().m11()  # scroll bars move in whole view pixels
    assert abs(after.x() - before.x()) <= tolerance and abs(after.y() - before.y()) <= tolerance
    wheel(view, cursor, -1)
    settle(qtbot)
    assert abs(scene_at(view, cursor).x() - before.x()) <= 2 * tolerance


def test_ctrl_wheel_does_not_zoom(window, video_path, qtbot):
    view = opened(window, video_path, qtbot)
    fitted = view.transform().m11()
    wheel(view, QPointF(view.viewport().rect().center()), 2, Qt.KeyboardModifier.ControlModifier)
    assert view.transform().m11() == fitted
    settle(qtbot)
    assert view.transform().m11() == fitted


def test_zoom_keys_and_menu(window, video_path, qtbot):
    view = opened(window, video_path, qtbot)
    fitted = view.transform().m11()
    qtbot.keyClick(view, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot)
    assert view.transform().m11() > 1.2 * fitted
    qtbot.keyClick(view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)  # the unshifted key of '+'
    settle(qtbot)
    assert view.transform().m11() > 1.5 * fitted
    qtbot.keyClick(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot)
    assert abs(view.transform().m11() - fitted) < 0.01 * fitted
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    zoom_in = next(a for a in view_menu.actions() if a.text() == "Zoom &In")
    zoom_in.trigger()
    settle(qtbot)
    assert view.transform().m11() > 1.2 * fitted


def drag(qtbot, view, button, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(view.viewport(), button, pos=start)
    qtbot.mouseMove(view.viewport(), QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
    qtbot.mouseMove(view.viewport(), end)
    qtbot.mouseRelease(view.viewport(), button, pos=end)


def test_middle_drag_space_drag_and_scroll_bars_pan(window, video_path, qtbot):
    view, center = zoomed(window, video_path, qtbot)
    origin = scene_at(view, QPointF(center))

    drag(qtbot, view, Qt.MouseButton.MiddleButton, center, center + QPoint(40, 30))
    settle(qtbot)
    moved = scene_at(view, QPointF(center))
    scale = view.transform().m11()
    assert abs((origin.x() - moved.x()) * scale - 40) <= 1 and abs((origin.y() - moved.y()) * scale - 30) <= 1

    window.actions["tool_brush"].trigger()  # Space + drag pans in any tool, and paints nothing
    window.controller.select(sorted(window.controller.annotation.tracks)[0])
    before_undo = len(window.session.history)
    qtbot.keyPress(view, Qt.Key.Key_Space)
    drag(qtbot, view, Qt.MouseButton.LeftButton, center, center - QPoint(50, 0))
    qtbot.keyRelease(view, Qt.Key.Key_Space)
    settle(qtbot)
    assert abs((scene_at(view, QPointF(center)).x() - moved.x()) * scale - 50) <= 1
    assert len(window.session.history) == before_undo
    assert not window.player.playing  # Space used to pan is not play / pause

    bar = view.horizontalScrollBar()
    left = scene_at(view, QPointF(center)).x()
    bar.setValue(bar.value() + 25)
    settle(qtbot)
    assert abs((scene_at(view, QPointF(center)).x() - left) * scale - 25) <= 1
    assert view.transform().m11() == scale  # panning is not zooming


def space(view, press: bool) -> None:
    """A plain Space press or release that the platform did not mark as key repeat (as X11 may deliver them)."""
    from PySide6.QtGui import QKeyEvent

    kind = QKeyEvent.Type.KeyPress if press else QKeyEvent.Type.KeyRelease
    QApplication.sendEvent(view, QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", False, 1))


def test_holding_space_through_key_repeat_pans_without_playing(window, video_path, qtbot):
    view, center = zoomed(window, video_path, qtbot)
    start = scene_at(view, QPointF(center))
    space(view, True)
    qtbot.wait(500)  # held past the key-repeat delay: the repeats arrive as release + press pairs
    for _ in range(3):
        space(view, False)
        space(view, True)
        qtbot.wait(30)
    drag(qtbot, view, Qt.MouseButton.LeftButton, center, center + QPoint(0, 40))
    space(view, False)
    settle(qtbot)
    assert not window.player.playing
    assert abs((start.y() - scene_at(view, QPointF(center)).y()) * view.transform().m11() - 40) <= 1
    qtbot.wait(200)  # a person's next key press comes later than key repeat would
    space(view, True)  # a short tap is still play / pause
    space(view, False)
    assert window.player.playing


def label_on_screen(view, item):
    """The label's rectangle in viewport pixels."""
    return item.deviceTransform(view.viewportTransform()).mapRect(item.boundingRect())


def test_labels_keep_their_screen_size_and_anchor_when_zoomed(window, video_path, qtbot):
    from app.gui.video_view import LABEL_PIXELS, QGraphicsSimpleTextItem

    view = opened(window, video_path, qtbot)
    labels = [i for i in view.scene().items() if isinstance(i, QGraphicsSimpleTextItem)]
    assert labels  # the scripted person, car and sky are labelled
    before = {i.text(): label_on_screen(view, i) for i in labels}
    wheel(view, QPointF(view.viewport().rect().center()), 4)  # ~2.4x
    settle(qtbot)
    for item in (i for i in view.scene().items() if isinstance(i, QGraphicsSimpleTextItem)):
        rect = label_on_screen(view, item)
        assert abs(rect.height() - before[item.text()].height()) < 1
        assert LABEL_PIXELS <= rect.height() < 2.5 * LABEL_PIXELS
        anchor = view.mapFromScene(item.pos())  # the label stays centred on its pixel of the mask
        assert abs(rect.center().x() - anchor.x()) <= 1 and abs(rect.center().y() - anchor.y()) <= 1
