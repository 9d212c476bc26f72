"""The frame view: the current frame with its masks, zoom / pan, click-to-select and paint tools.

Rendering is `app.core.colors.overlay` (numpy); this widget only turns the result into a pixmap,
places class + id labels, and maps mouse positions to image pixels for the controller.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPixmapItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView

from app.core.colors import boundary_mask, overlay, track_color, visible_mask
from app.gui.controller import StudioController


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
    """Shows `controller`'s current frame; emits `paint_stroke` for brush / eraser / fill tools."""

    paint_stroke = Signal(str, object, int)  # tool, list of (x, y) image points, radius
    hovered = Signal(int, int)  # image pixel under the mouse

    def __init__(self, controller: StudioController, parent=None):
        super().__init__(parent)
        self._controller = controller
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(24, 24, 28))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMouseTracking(True)  # hover shows the track under the mouse
        self.setAcceptDrops(False)  # the main window takes dropped files
        self.pixmap_item = QGraphicsPixmapItem()
        self.scene().addItem(self.pixmap_item)
        self._labels: list[QGraphicsSimpleTextItem] = []
        self._brush_cursor = QGraphicsEllipseItem()
        self._brush_cursor.setPen(QPen(QColor(255, 255, 255), 0))
        self._brush_cursor.setVisible(False)
        self._brush_cursor.setZValue(10)
        self.scene().addItem(self._brush_cursor)
        self.tool = "select"
        self.brush_radius = 8
        self._stroke: list[tuple[int, int]] = []
        self._pan_from = None  # QPointF while panning with the middle button
        self._fitted = False
        self.last_rendered: np.ndarray | None = None
        controller.exact_frame_ready.connect(lambda index: index == controller.frame_index and self.redraw())

    # ---------------------------------------------------------------- drawing
    def redraw(self) -> None:
        """Render the current frame with the controller's display settings."""
        controller = self._controller
        if controller.video is None:
            return
        frame = controller.display_frame()
        track_map = controller.track_map()
        display = controller.display
        rendered = overlay(frame, track_map, alpha=display.opacity, mode=display.mode, hidden=display.hidden)
        if controller.selection:  # selected tracks get a white outline
            selected = visible_mask(track_map, controller.selection).astype(np.int32)
            rendered[boundary_mask(selected, width=max(1, track_map.shape[0] // 240)) & (selected > 0)] = 255
        self.last_rendered = rendered
        self.pixmap_item.setPixmap(QPixmap.fromImage(to_qimage(rendered)))
        self.scene().setSceneRect(self.pixmap_item.boundingRect())
        self._place_labels(track_map)
        if not self._fitted:
            self.fit()

    def show_picture(self, picture: np.ndarray) -> None:
        """Show a bare picture (no masks), e.g. a video's first frame while it is still being opened."""
        self.last_rendered = picture
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
        font.setPixelSize(max(10, track_map.shape[0] // 40))
        font.setBold(True)
        for track_id, (x, y) in label_positions(track_map, ids).items():
            item = QGraphicsSimpleTextItem(f"{categories.name(tracks[track_id].category_id)} #{track_id}")
            item.setFont(font)
            item.setBrush(QBrush(QColor(255, 255, 255)))
            item.setPen(QPen(QColor(*track_color(track_id)).darker(250), 0))
            rect = item.boundingRect()
            item.setPos(x - rect.width() / 2, y - rect.height() / 2)
            item.setZValue(5)
            self.scene().addItem(item)
            self._labels.append(item)

    # ------------------------------------------------------------- zoom / pan
    def fit(self) -> None:
        if not self.pixmap_item.pixmap().isNull():
            self.fitInView(self.pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
            self._fitted = True

    def zoom(self, factor: float) -> None:
        self.scale(factor, factor)

    def reset_fit(self) -> None:
        self._fitted = False

    def wheelEvent(self, event) -> None:
        self.zoom(1.25 if event.angleDelta().y() > 0 else 0.8)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    # ------------------------------------------------------------ mouse tools
    def set_tool(self, tool: str) -> None:
        """"select" (click selects, drag pans) or a paint tool of app.core.edits.PAINT_TOOLS."""
        self.tool = tool
        painting = tool in ("brush", "eraser")
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag if tool == "select" else QGraphicsView.DragMode.NoDrag)
        self._brush_cursor.setVisible(painting)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if tool != "select" else Qt.CursorShape.ArrowCursor)

    def image_point(self, view_pos) -> tuple[int, int]:
        scene = self.mapToScene(view_pos)
        return int(scene.x()), int(scene.y())

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:  # middle drag pans with every tool
            self._pan_from = event.position()
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
        elif self.tool == "fill":
            if inside:
                self.paint_stroke.emit("fill", [(x, y)], 0)
        else:
            self._stroke = [(x, y)]

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            return
        x, y = self.image_point(event.position().toPoint())
        r = self.brush_radius
        self._brush_cursor.setRect(x - r, y - r, 2 * r, 2 * r)
        if self._stroke:
            self._stroke.append((x, y))
        video = self._controller.video
        if video is not None and 0 <= x < video.width and 0 <= y < video.height:
            self.hovered.emit(x, y)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            return
        if self._stroke and event.button() == Qt.MouseButton.LeftButton:
            stroke, self._stroke = self._stroke, []
            self.paint_stroke.emit(self.tool, stroke, self.brush_radius)
        super().mouseReleaseEvent(event)

    def scene_point(self, x: float, y: float) -> QPointF:
        """View coordinates of image pixel (x, y) (used by tests to click on masks)."""
        return self.mapFromScene(QPointF(x + 0.5, y + 0.5))
