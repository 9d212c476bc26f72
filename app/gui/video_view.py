"""The frame view: the current frame with its masks, zoom / pan, click-to-select and paint tools.

Rendering is `app.core.colors.overlay` (numpy); this widget only turns the result into a pixmap,
places class + id labels, and maps mouse positions to image pixels for the controller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)

from app.core.colors import boundary_mask, overlay, track_color, visible_mask
from app.gui.controller import StudioController

MIN_SCALE, MAX_SCALE = 0.02, 64.0  # view pixels per image pixel
WHEEL_STEP = 1.25  # zoom factor per wheel notch
TAP_S = 0.4  # a Space press shorter than this, without panning, is play / pause (key repeat starts later)
REPEAT_GAP_S = 0.08  # a press this soon after a release is key repeat (some platforms do not mark it)
MAX_BRUSH_RADIUS = 200  # image pixels
LABEL_PIXELS = 13  # class + id label height on screen, the same at every zoom
POLYGON_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape, Qt.Key.Key_Backspace)
# mouse and key gestures of the view that are not window actions (Help → Keyboard Shortcuts lists them too)
GESTURES = [
    ("Zoom about the cursor", "Wheel"),
    ("Pan", "Middle drag, Space+Drag"),
    ("Brush size", "Ctrl+Wheel"),
    ("Polygon: add a vertex", "Click"),
    ("Polygon: close and fill", "Double-click, Enter"),
    ("Polygon: remove the last vertex", "Backspace"),
    ("Polygon: cancel", "Esc"),
]


@dataclass
class _SpaceHold:
    """One press of Space in the view, through any key repeat, until its release."""

    since: float
    panned: bool = False
    released_at: float | None = None


def _is_plain_space(event) -> bool:
    return event.key() == Qt.Key.Key_Space and event.modifiers() == Qt.KeyboardModifier.NoModifier


def to_qimage(rgb: np.ndarray) -> QImage:
    """Deep-copied QImage of an (H, W, 3) uint8 RGB array."""
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def label_positions(track_map: np.ndarray, track_ids: list[int]) -> dict[int, tuple[float, float]]:
    """A point inside each track's mask (the mask pixel nearest its centroid) for its label."""
    positions = {}
    step = max(1, max(track_map.shape) // 256)  # subsample big frames: labels need no pixel precision
    small = track_map[::step, ::step]
    ys, xs = np.nonzero(small)
    ids = small[ys, xs]
    for track_id in track_ids:
        mine = ids == track_id
        if not mine.any():
            continue
        px, py = xs[mine], ys[mine]
        nearest = np.argmin((px - px.mean()) ** 2 + (py - py.mean()) ** 2)
        positions[track_id] = (float(px[nearest] * step), float(py[nearest] * step))
    return positions


class VideoView(QGraphicsView):
    """Shows `controller`'s current frame; emits `paint_stroke` for the paint tools.

    Tools: "select", "brush", "eraser", "fill" (a mask region), "colour_fill" (a region of the frame's
    colours) and "polygon" (click vertices, double-click or Enter closes it).
    """

    paint_stroke = Signal(str, object, int)  # tool, list of (x, y) image points, brush radius
    brush_radius_changed = Signal(int)
    hovered = Signal(int, int)  # image pixel under the mouse
    space_tapped = Signal()  # Space pressed and released without panning (the window's play / pause)

    def __init__(self, controller: StudioController, parent=None):
        super().__init__(parent)
        self._controller = controller
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(24, 24, 28))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)  # zoom() keeps its own anchor
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMouseTracking(True)  # hover shows the track under the mouse
        self.setAcceptDrops(False)  # the main window takes dropped files
        self.pixmap_item = QGraphicsPixmapItem()
        self.scene().addItem(self.pixmap_item)
        self._labels: list[QGraphicsSimpleTextItem] = []
        self.brush_cursor = QGraphicsEllipseItem()  # the brush's real size, in image pixels
        self.brush_cursor.setPen(QPen(QColor(255, 255, 255), 0))
        self.brush_cursor.setVisible(False)
        self.brush_cursor.setZValue(10)
        self.scene().addItem(self.brush_cursor)
        self.polygon_item = QGraphicsPathItem()
        pen = QPen(QColor(255, 255, 255), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)  # 2 view pixels wide at any zoom
        self.polygon_item.setPen(pen)
        self.polygon_item.setZValue(10)
        self.scene().addItem(self.polygon_item)
        self.tool = "select"
        self.brush_radius = 8
        self._cursor_at = (0, 0)  # image pixel of the last mouse position (the brush circle's centre)
        self._stroke: list[tuple[int, int]] = []
        self.polygon: list[tuple[int, int]] = []  # vertices of the polygon being drawn
        self._pan_from = None  # QPointF while panning (middle button, or Space + left button)
        self._space: _SpaceHold | None = None  # the last Space press (hold to pan, tap to play)
        self._fitted = True  # fit-to-window mode: every resize refits, until the user zooms
        controller.exact_frame_ready.connect(lambda index: index == controller.frame_index and self.redraw())

    # ---------------------------------------------------------------- drawing
    def redraw(self) -> None:
        """Render the current frame with the controller's display settings."""
        controller = self._controller
        if controller.video is None:  # nothing open (e.g. the first frame of a cancelled open was shown)
            self.pixmap_item.setPixmap(QPixmap())
            self._place_labels(None)
            return
        frame = controller.display_frame()
        track_map = controller.track_map()
        display = controller.display
        rendered = overlay(frame, track_map, alpha=display.opacity, mode=display.mode, hidden=display.hidden)
        if controller.selection:  # selected tracks get a white outline
            selected = visible_mask(track_map, controller.selection).astype(np.int32)
            rendered[boundary_mask(selected, width=max(1, track_map.shape[0] // 240)) & (selected > 0)] = 255
        self.pixmap_item.setPixmap(QPixmap.fromImage(to_qimage(rendered)))
        self.scene().setSceneRect(self.pixmap_item.boundingRect())
        self._place_labels(track_map)
        if self._fitted:
            self.fit()

    def show_picture(self, picture: np.ndarray) -> None:
        """Show a bare picture (no masks), e.g. a video's first frame while it is still being opened."""
        self.pixmap_item.setPixmap(QPixmap.fromImage(to_qimage(picture)))
        self.scene().setSceneRect(self.pixmap_item.boundingRect())
        self._place_labels(None)
        self.fit()

    def _place_labels(self, track_map: np.ndarray | None) -> None:
        for item in self._labels:
            self.scene().removeItem(item)
        self._labels = []
        controller = self._controller
        if track_map is None or not controller.display.labels:
            return
        tracks = controller.annotation.tracks
        ids = [t for t in np.unique(track_map).tolist() if t and t in tracks and t not in controller.display.hidden]
        categories = controller.categories
        font = QFont()
        font.setPixelSize(LABEL_PIXELS)
        font.setBold(True)
        for track_id, (x, y) in label_positions(track_map, ids).items():
            item = QGraphicsSimpleTextItem(f"{categories.name(tracks[track_id].category_id)} #{track_id}")
            item.setFont(font)
            item.setBrush(QBrush(QColor(255, 255, 255)))
            item.setPen(QPen(QColor(*track_color(track_id)).darker(250), 0))
            # Screen-sized text (zooming in must not blow labels up over the masks), centred on its anchor pixel.
            item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            rect = item.boundingRect()
            item.setTransform(QTransform.fromTranslate(-rect.width() / 2, -rect.height() / 2))
            item.setPos(x, y)
            item.setZValue(5)
            self.scene().addItem(item)
            self._labels.append(item)

    # ------------------------------------------------------------- zoom / pan
    def fit(self) -> None:
        """Show the whole frame; it stays fitted (also on resize) until the user zooms."""
        self._fitted = True
        if not self.pixmap_item.pixmap().isNull():
            self.fitInView(self.pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Scale by `factor` keeping the image point under `anchor` (viewport position; default: the centre) in place.

        Zooming leaves fit-to-window mode, so resizes and redraws keep the chosen scale until `fit` is asked for.
        """
        scale = self.transform().m11()
        wanted = min(max(scale * factor, MIN_SCALE), MAX_SCALE)
        if (wanted - scale) * (factor - 1) <= 0:  # at a limit already (a tiny image may fit beyond MAX_SCALE)
            return
        factor = wanted / scale
        self._fitted = False
        anchor = QPointF(self.viewport().rect().center()) if anchor is None else anchor
        fixed = self._to_scene(anchor)
        self.scale(factor, factor)
        moved = self.mapFromScene(fixed) - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())

    def _to_scene(self, view_pos: QPointF) -> QPointF:
        """Scene point at a viewport position, without rounding it to whole view pixels."""
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(view_pos)

    def reset_fit(self) -> None:
        """A new document: fit its first frame."""
        self._fitted = True

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) view pixels, as a drag does."""
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(dx))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(dy))

    def wheelEvent(self, event) -> None:
        """The wheel zooms about the cursor; Ctrl+wheel sizes the brush (by about 15% a notch)."""
        steps = event.angleDelta().y() / 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            if steps:
                change = self.brush_radius * (1.15 ** steps - 1)
                self.set_brush_radius(self.brush_radius + (round(change) or (1 if steps > 0 else -1)))
            event.accept()
            return
        if steps:
            self.zoom(WHEEL_STEP ** steps, event.position())
        event.accept()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def event(self, event) -> bool:
        """A plain Space press here is ours (hold to pan), not the window's Space shortcut; so are Enter, Esc
        and Backspace while a polygon is being drawn (Esc cancels it rather than clearing the selection)."""
        if event.type() == QEvent.Type.ShortcutOverride and (_is_plain_space(event) or self._polygon_key(event)):
            event.accept()
            return True
        return super().event(event)

    def _polygon_key(self, event) -> bool:
        return bool(self.polygon) and event.key() in POLYGON_KEYS

    def keyPressEvent(self, event) -> None:
        if self._polygon_key(event):
            if event.key() == Qt.Key.Key_Escape:
                self.cancel_polygon()
            elif event.key() == Qt.Key.Key_Backspace:
                self.polygon.pop()
                self._draw_polygon()
            else:
                self.close_polygon()
            return
        if _is_plain_space(event):
            if not event.isAutoRepeat():
                now = time.monotonic()
                hold = self._space
                if hold is not None and hold.released_at is not None and now - hold.released_at < REPEAT_GAP_S:
                    hold.released_at = None  # key repeat the platform did not mark: the same hold goes on
                else:
                    self._space = _SpaceHold(since=now)
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if _is_plain_space(event):
            hold = self._space
            if not event.isAutoRepeat() and hold is not None and hold.released_at is None:
                hold.released_at = time.monotonic()
                self._update_cursor()
                if not hold.panned and hold.released_at - hold.since < TAP_S:  # a short press: the ordinary Space
                    self.space_tapped.emit()
            return
        super().keyReleaseEvent(event)

    def _space_held(self) -> bool:
        return self._space is not None and self._space.released_at is None

    # ------------------------------------------------------------ mouse tools
    def set_tool(self, tool: str) -> None:
        """"select" (click selects, drag pans) or a paint tool (see the class docstring); drops an unfinished
        polygon."""
        self.tool = tool
        self.cancel_polygon()
        painting = tool in ("brush", "eraser")
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag if tool == "select" else QGraphicsView.DragMode.NoDrag)
        self.brush_cursor.setVisible(painting)
        self._place_brush_cursor()
        self._update_cursor()

    def set_brush_radius(self, radius: int) -> None:
        """Brush and eraser radius in image pixels (1..MAX_BRUSH_RADIUS); the cursor circle shows it."""
        radius = min(max(int(radius), 1), MAX_BRUSH_RADIUS)
        if radius != self.brush_radius:
            self.brush_radius = radius
            self._place_brush_cursor()
            self.brush_radius_changed.emit(radius)

    def _place_brush_cursor(self) -> None:
        x, y = self._cursor_at
        r = self.brush_radius
        self.brush_cursor.setRect(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r)

    # --------------------------------------------------------------- polygon
    def close_polygon(self) -> None:
        """Fill the polygon drawn so far (the controller refuses fewer than three vertices) and start anew."""
        vertices, self.polygon = self.polygon, []
        self._draw_polygon()
        if vertices:
            self.paint_stroke.emit("polygon", vertices, 0)

    def cancel_polygon(self) -> None:
        self.polygon = []
        self._draw_polygon()

    def _draw_polygon(self, rubber_band: tuple[int, int] | None = None) -> None:
        """The vertices so far joined by a dashed line, plus a line to the cursor (`rubber_band`) and back to the
        start."""
        path = QPainterPath()
        points = [QPointF(x + 0.5, y + 0.5) for x, y in self.polygon]
        if rubber_band is not None and points:
            points.append(QPointF(rubber_band[0] + 0.5, rubber_band[1] + 0.5))
        if points:
            path.moveTo(points[0])
            for point in points[1:]:
                path.lineTo(point)
            if len(points) > 2:
                path.closeSubpath()
        self.polygon_item.setPath(path)

    def _update_cursor(self) -> None:
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if self.tool != "select" else Qt.CursorShape.ArrowCursor)

    def image_point(self, view_pos) -> tuple[int, int]:
        scene = self.mapToScene(view_pos)
        return int(scene.x()), int(scene.y())

    def mousePressEvent(self, event) -> None:
        space = self._space_held()
        if event.button() == Qt.MouseButton.MiddleButton or (event.button() == Qt.MouseButton.LeftButton and space):
            self._pan_from = event.position()  # middle drag or Space + drag pans with every tool
            if space:
                self._space.panned = True
                self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() != Qt.MouseButton.LeftButton or self._controller.video is None:
            super().mousePressEvent(event)
            return
        x, y = self.image_point(event.position().toPoint())
        inside = 0 <= x < self._controller.video.width and 0 <= y < self._controller.video.height
        if self.tool == "select":
            if inside:
                add = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
                self._controller.select_at(x, y, add=add)
            super().mousePressEvent(event)  # keeps drag-to-pan
        elif self.tool in ("fill", "colour_fill"):
            if inside:
                self.paint_stroke.emit(self.tool, [(x, y)], 0)
        elif self.tool == "polygon":
            video = self._controller.video
            self.polygon.append((min(max(x, 0), video.width - 1), min(max(y, 0), video.height - 1)))
            self._draw_polygon()
        else:
            self._stroke = [(x, y)]

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.pan_by(delta.x(), delta.y())
            return
        x, y = self.image_point(event.position().toPoint())
        self._cursor_at = (x, y)
        self._place_brush_cursor()
        if self.polygon:
            self._draw_polygon(rubber_band=(x, y))
        if self._stroke:
            self._stroke.append((x, y))
        video = self._controller.video
        if video is not None and 0 <= x < video.width and 0 <= y < video.height:
            self.hovered.emit(x, y)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            if self._space_held():
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if self._stroke and event.button() == Qt.MouseButton.LeftButton:
            stroke, self._stroke = self._stroke, []
            self.paint_stroke.emit(self.tool, stroke, self.brush_radius)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        """With the polygon tool a double-click closes the polygon (its first click already added the vertex)."""
        if self.tool == "polygon" and event.button() == Qt.MouseButton.LeftButton and not self._space_held():
            self.close_polygon()
            return
        super().mouseDoubleClickEvent(event)
