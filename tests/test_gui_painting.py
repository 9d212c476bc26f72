"""Painting tools driven by real input on the shown window: polygon (clicks, double-click, keys), colour fill
with the toolbar tolerance, brush size from Ctrl+wheel and the toolbar, and the brush circle's size."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from app.core.image_fill import colour_region
from tests.gui_helpers import errors, open_focused, video_path, view_point, window  # noqa: F401
from tests.test_gui_view import settle, wheel


def blobs(annotation) -> list[bytes | None]:
    return [annotation.mask_store.blob(i) for i in range(annotation.num_frames)]


def click(qtbot, view, x, y) -> None:
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view_point(view, x, y))


def key(qtbot, window, k) -> None:
    qtbot.keyClick(window.view, k)


def test_polygon_from_clicks_closes_on_double_click_and_undoes_byte_for_byte(window, video_path, qtbot, errors):
    mapping = open_focused(window, video_path, qtbot)
    controller, view, annotation = window.controller, window.view, window.controller.annotation
    person, car = mapping[5], mapping[6]
    controller.set_locked(car, True)
    controller.select(person)
    before, stored = annotation.track_map(0).copy(), blobs(annotation)
    key(qtbot, window, Qt.Key.Key_P)
    assert view.tool == "polygon" and window.actions["tool_polygon"].isChecked()
    for x, y in ((40, 20), (90, 20), (90, 60)):
        click(qtbot, view, x, y)
    assert view.polygon == [(40, 20), (90, 20), (90, 60)]
    assert not view.polygon_item.path().isEmpty()  # the polygon in progress is drawn
    assert np.array_equal(annotation.track_map(0), before)  # nothing painted yet
    point = view_point(view, 40, 60)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert view.polygon == [] and view.polygon_item.path().isEmpty()
    after = annotation.track_map(0)
    inside = np.zeros_like(before, bool)
    inside[20:61, 40:91] = True
    locked = before == car
    assert (after[inside & ~locked] == person).all()
    assert (after[locked] == car).all() and locked[inside].any()  # the locked car inside kept its pixels
    assert np.array_equal(after[~inside], before[~inside])
    assert len(controller.session.history) == 2  # the lock, then one polygon edit
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert controller.session.history.index == 1
    assert blobs(annotation) == stored
    assert not errors


def test_polygon_keys_remove_a_vertex_cancel_and_close(window, video_path, qtbot, errors):
    mapping = open_focused(window, video_path, qtbot)
    controller, view, annotation = window.controller, window.view, window.controller.annotation
    person = mapping[5]
    controller.select(person)
    before = annotation.track_map(0).copy()
    window.actions["tool_polygon"].trigger()
    for x, y in ((10, 14), (30, 14), (50, 50)):
        click(qtbot, view, x, y)
    key(qtbot, window, Qt.Key.Key_Backspace)
    assert view.polygon == [(10, 14), (30, 14)]
    key(qtbot, window, Qt.Key.Key_Escape)  # cancels the polygon; the selection stays
    assert view.polygon == [] and controller.selection == [person]
    assert np.array_equal(annotation.track_map(0), before)
    for x, y in ((10, 14), (30, 14), (30, 28), (10, 28)):
        click(qtbot, view, x, y)
    key(qtbot, window, Qt.Key.Key_Return)
    assert (annotation.track_map(0)[14:29, 10:31] == person).all()
    key(qtbot, window, Qt.Key.Key_Escape)  # no polygon in progress: Esc clears the selection as usual
    assert controller.selection == []
    assert not errors


def test_polygon_with_two_vertices_says_what_to_do(window, video_path, qtbot, errors):
    mapping = open_focused(window, video_path, qtbot)
    window.controller.select(mapping[5])
    window.actions["tool_polygon"].trigger()
    click(qtbot, window.view, 10, 14)
    point = view_point(window.view, 30, 30)
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert errors and "at least three vertices" in errors[-1][1]


def test_colour_fill_uses_the_frame_colours_and_the_toolbar_tolerance(window, video_path, qtbot, errors):
    mapping = open_focused(window, video_path, qtbot)
    controller, view, annotation = window.controller, window.view, window.controller.annotation
    car = mapping[6]
    controller.set_locked(car, True)
    new = controller.new_track(48)
    controller.seek(3)
    window.tolerance_spin.setValue(12)
    key(qtbot, window, Qt.Key.Key_G)
    assert view.tool == "fill"
    qtbot.keyClick(view, Qt.Key.Key_G, Qt.KeyboardModifier.ShiftModifier)
    assert view.tool == "colour_fill" and window.actions["tool_colour_fill"].isChecked()
    before, stored = annotation.track_map(3).copy(), blobs(annotation)
    x, y = 92, 60  # grey background, bottom right
    click(qtbot, view, x, y)
    region = colour_region(controller.video.frame(3), x, y, 12)
    after = annotation.track_map(3)
    locked = before == car
    assert region.sum() > 500 and (region & locked).any()
    assert (after[region & ~locked] == new).all()
    assert (after[locked] == car).all()
    assert np.array_equal(after[~region], before[~region])
    assert not region[:16].any()  # the black / white index grid is not grey
    window.actions["undo"].trigger()
    assert blobs(annotation) == stored
    assert not errors


def test_ctrl_wheel_and_toolbar_size_the_brush_and_its_circle_follows_zoom(window, video_path, qtbot, errors):
    open_focused(window, video_path, qtbot)
    settle(qtbot)
    view = window.view
    window.actions["tool_brush"].trigger()
    assert view.brush_cursor.isVisible()
    center = QPointF(view.viewport().rect().center())
    qtbot.mouseMove(view.viewport(), center.toPoint())
    start = view.brush_radius
    wheel(view, center, 3, Qt.KeyboardModifier.ControlModifier)
    grown = view.brush_radius
    assert grown > start and window.brush_spin.value() == grown
    wheel(view, center, -1, Qt.KeyboardModifier.ControlModifier)
    assert start < view.brush_radius < grown and window.brush_spin.value() == view.brush_radius
    window.brush_spin.setValue(20)
    assert view.brush_radius == 20
    on_screen = view.mapFromScene(view.brush_cursor.rect()).boundingRect()
    scale = view.transform().m11()
    assert abs(on_screen.width() - 40 * scale) <= 2  # 20 image pixels of radius at this zoom
    circle_center = view.brush_cursor.rect().center()
    assert abs(view.mapFromScene(circle_center).x() - center.x()) <= scale  # centred on the pixel under the mouse
    wheel(view, center, 2)  # plain wheel zooms; the radius stays
    settle(qtbot)
    assert view.brush_radius == 20 and view.transform().m11() > 1.5 * scale
    zoomed = view.mapFromScene(view.brush_cursor.rect()).boundingRect()
    assert abs(zoomed.width() - 40 * view.transform().m11()) <= 2
    qtbot.keyClick(view, Qt.Key.Key_BracketRight)
    assert view.brush_radius == 22 and window.brush_spin.value() == 22
    assert not errors
