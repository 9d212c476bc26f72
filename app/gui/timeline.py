"""The track timeline: one lane per track with the spans where it is present.

All spans are one RGBA image (a row band per lane, built with numpy from the tracks' presence), so
thousands of frames x hundreds of tracks refresh in milliseconds and pan and zoom smoothly. Stability diagnostics are
markers on the lanes, keyframes white ticks and propagated spans a pale bar in the lane's lower half. Frames of
the video that could not be decoded (their masks come from the last good frame before them) are not shown as
plainly present: their columns are faded and hatched red. A movable line is the current frame; a click seeks and
selects.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPen, QPicture
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.core.annotation import frame_runs
from app.core.colors import track_color
from app.core.keyframes import KEY, PROPAGATED
from app.gui.controller import StudioController

LANE_HEIGHT = 0.75  # 3 of the 4 image rows of a lane are coloured (see presence_image)
# diagnostic kind (app.core.metrics.diagnostics.KINDS) -> pyqtgraph symbol
MARKER_SYMBOLS = {"id_switch": "x", "fragment": "t", "class_flicker": "d", "area_jump": "s", "short_track": "o"}
KIND_COLORS = {"id_switch": (255, 80, 80), "fragment": (255, 190, 60), "class_flicker": (120, 180, 255),
               "area_jump": (200, 120, 255), "short_track": (180, 180, 180)}


MAX_IMAGE_COLUMNS = 16384  # longer videos: one image column covers several frames (present in any of them)
MAX_IMAGE_BYTES = 64 * 2**20


DAMAGED_ALPHA = 90  # a present lane over an undecodable frame: faded, under a red hatch


def presence_image(rows: list[tuple[np.ndarray, tuple[int, int, int]]], num_frames: int,
                   damaged: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """(RGBA image (lanes * sub, columns, 4), sub, frames per column): lane i is opaque in its colour
    where the track is present, and faded (`DAMAGED_ALPHA`) over the `damaged` frames.

    Each lane takes `sub` image rows, the last one left transparent as a gap between lanes (a single
    row when the image would get big: then lanes touch). Built with numpy, so thousands of frames x
    hundreds of tracks take milliseconds, and the timeline is one image item however many spans.
    """
    frames_per_column = -(-max(1, num_frames) // MAX_IMAGE_COLUMNS)
    columns = -(-max(1, num_frames) // frames_per_column)
    sub = 4 if len(rows) * columns * 16 <= MAX_IMAGE_BYTES else 1
    image = np.zeros((max(1, len(rows)) * sub, columns, 4), np.uint8)
    for lane, (frames, color) in enumerate(rows):
        band = image[lane * sub : lane * sub + max(1, sub - 1)]
        present = np.asarray(frames) // frames_per_column
        band[:, present, :3] = color
        band[:, present, 3] = 255
    if damaged is not None and len(damaged):
        faded = np.unique(np.asarray(damaged) // frames_per_column)
        image[:, faded, 3] = np.minimum(image[:, faded, 3], DAMAGED_ALPHA)
    return image, sub, frames_per_column


# A propagated span's bar: from lane + 0.08, 0.2 lanes high, in the band's lower half but clear of its edge, and
# drawn over the selection's outline: lanes a few pixels high leave the 2-pixel outline no room beside it.
PROPAGATED_BAR = (0.08, 0.2)


class FrameAxis(pg.AxisItem):
    """A frame-number axis: frames are whole numbers, so ticks are too at any zoom (never 5.5)."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        # pyqtgraph's spacings are 1, 2 or 5 times a power of ten: those of at least 1 fall on whole frames
        whole = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return whole or [(1.0, 0.0)]


class SpansItem(pg.GraphicsObject):
    """Rectangles over frame spans of lanes, drawn with one pen and brush (few rectangles, one cached QPicture):
    white outlines around the selected lanes' spans, the bars of propagated spans, or the hatch of damaged frames."""

    def __init__(self, pen: QPen, brush: QColor | QBrush | None = None, z: float = 2, top: float = -LANE_HEIGHT / 2,
                 height: float = LANE_HEIGHT):
        super().__init__()
        self._pen, self._brush, self._top, self._height = pen, brush, top, height
        self._picture = QPicture()
        self._rect = QRectF()
        self.spans: list[tuple[int, int, int]] = []
        self.setZValue(z)

    def set_spans(self, spans: list[tuple[int, int, int]]) -> None:
        """`spans`: (lane, first frame, last frame inclusive)."""
        self.spans = spans
        picture = QPicture()
        painter = QPainter(picture)
        self._pen.setCosmetic(True)
        painter.setPen(self._pen)
        if self._brush is not None:
            painter.setBrush(self._brush)
        painter.drawRects([QRectF(start - 0.5, lane + self._top, stop - start + 1, self._height)
                           for lane, start, stop in spans])
        painter.end()
        self.prepareGeometryChange()
        self._picture = picture
        self._rect = QRectF(picture.boundingRect())
        self.update()

    def paint(self, painter, option, widget=None) -> None:
        self._picture.play(painter)

    def boundingRect(self) -> QRectF:
        return self._rect


class TimelineWidget(QWidget):
    """pyqtgraph plot: x = frame, y = lane (tracks by first appearance)."""

    def __init__(self, controller: StudioController, parent: QWidget | None = None):
        super().__init__(parent)
        self._controller = controller
        self.lanes: list[int] = []  # lane -> track id
        self.plot = pg.PlotWidget(background=(30, 30, 34), axisItems={"bottom": FrameAxis("bottom")})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.getViewBox().invertY(True)
        self.plot.setLabel("bottom", "frame")
        self.spans = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.spans)
        self.outline = SpansItem(QPen(QColor(255, 255, 255), 2))
        self.plot.addItem(self.outline)
        self.propagated = SpansItem(QPen(Qt.PenStyle.NoPen), QColor(255, 255, 255, 170), 2.5, *PROPAGATED_BAR)
        self.plot.addItem(self.propagated)
        damaged_red = QColor(255, 60, 60)
        self.damaged = SpansItem(QPen(damaged_red, 1), QBrush(damaged_red, Qt.BrushStyle.BDiagPattern), 1.5)
        self.plot.addItem(self.damaged)
        self._damaged_count = 0  # undecodable frames the video knew of at the last refresh
        self.keyframes = pg.ScatterPlotItem(size=13, symbol="|", pen=pg.mkPen((255, 255, 255), width=3))
        self.keyframes.setZValue(3)
        self.plot.addItem(self.keyframes)
        self.markers = pg.ScatterPlotItem(size=11, pen=pg.mkPen("w"), hoverable=True, tip=lambda x, y, data: data)
        self.plot.addItem(self.markers)
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=pg.mkPen((255, 220, 0), width=2))
        self.plot.addItem(self.cursor)
        self.cursor.sigPositionChanged.connect(self._on_cursor_dragged)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        controller.frame_changed.connect(self._on_frame)
        controller.frame_changed.connect(self._refresh_if_damage_found)
        controller.exact_frame_ready.connect(self._refresh_if_damage_found)
        controller.selection_changed.connect(self.refresh)

    def refresh(self) -> None:
        """Rebuild lanes, spans and markers from the annotation and diagnostics."""
        annotation = self._controller.annotation
        if annotation is None:
            return
        present = {t: annotation.presence(t) for t in annotation.tracks}
        present = {t: frames for t, frames in present.items() if len(frames)}
        lanes_before = len(self.lanes)
        self.lanes = sorted(present, key=lambda t: (int(present[t][0]), t))
        lane_of = {t: lane for lane, t in enumerate(self.lanes)}
        frames = annotation.num_frames
        damaged = self._damaged_frames()
        self._damaged_count = len(damaged)
        image, sub, per_column = presence_image([(present[t], track_color(t)) for t in self.lanes], frames, damaged)
        self.spans.setImage(image, autoLevels=False)
        top = -LANE_HEIGHT / 2 if sub > 1 else -0.5  # lane i's coloured rows cover i ± LANE_HEIGHT / 2
        self.spans.setRect(QRectF(-0.5, top, image.shape[1] * per_column, image.shape[0] / sub))
        selected = [t for t in self._controller.selection if t in lane_of]
        self.outline.set_spans([(lane_of[t], a, b) for t in selected for a, b in annotation.track_spans(t)])
        is_damaged = np.zeros(frames, bool)
        is_damaged[damaged[damaged < frames]] = True
        self.damaged.set_spans([(lane_of[t], a, b) for t in self.lanes if len(damaged)
                                for a, b in frame_runs(present[t][is_damaged[present[t]]])])
        self._set_markers(lane_of)
        self._set_marks(lane_of)
        axis = self.plot.getAxis("left")
        step = max(1, len(self.lanes) // 40)
        axis.setTicks([[(lane, str(t)) for lane, t in enumerate(self.lanes) if lane % step == 0], []])
        frames = max(1, self._controller.num_frames)
        self.plot.getViewBox().setLimits(xMin=-2, xMax=frames + 2, yMin=-1, yMax=max(len(self.lanes), 1),
                                         minXRange=5, minYRange=3)
        if lanes_before < 30 and len(self.lanes) != lanes_before:  # new lanes while few: keep them all in view
            self.plot.getViewBox().setYRange(-1, min(len(self.lanes), 30), padding=0)

    def _damaged_frames(self) -> np.ndarray:
        video = self._controller.video
        return np.asarray(video.damaged_frames if video is not None else [], np.int64)

    def _refresh_if_damage_found(self) -> None:
        """The video finds undecodable frames as it reads them (the scrubbing pass, a seek, a run): show new ones."""
        video = self._controller.video
        if video is not None and len(video.damaged_frames) != self._damaged_count:
            self.refresh()

    def _set_markers(self, lane_of: dict[int, int]) -> None:
        """One marker per diagnostic, given to pyqtgraph as columns (a dict per point takes 20x as long: 130 ms
        for 700 markers) with one brush per kind."""
        shown = [d for d in self._controller.diagnostics if d.track_id in lane_of]
        brushes = {kind: pg.mkBrush(*KIND_COLORS.get(kind, (220, 220, 220))) for kind in {d.kind for d in shown}}
        tips = np.empty(len(shown), object)
        tips[:] = [f"{d.kind}: track {d.track_id} at frame {d.frame} — {d.detail}" for d in shown]
        self.markers.setData(x=[d.frame for d in shown], y=[lane_of[d.track_id] for d in shown],
                             symbol=[MARKER_SYMBOLS.get(d.kind, "o") for d in shown],
                             brush=[brushes[d.kind] for d in shown], data=tips)

    def _set_marks(self, lane_of: dict[int, int]) -> None:
        """Keyframes as ticks and propagated spans as bars on the tracks' lanes."""
        marks = self._controller.annotation.marks
        self.keyframes.setData([{"pos": (frame, lane), "data": f"keyframe of track {track} at frame {frame}"}
                                for track, lane in lane_of.items() for frame in marks.frames(track, KEY)])
        self.propagated.set_spans([(lane, a, b) for track, lane in lane_of.items()
                                   for a, b in marks.spans(track, PROPAGATED)])

    def fit(self) -> None:
        """Show every frame and the first 30 lanes."""
        self.plot.getViewBox().setRange(xRange=(-1, self._controller.num_frames), yRange=(-1, min(len(self.lanes), 30)),
                                        padding=0)

    def _on_frame(self, index: int) -> None:
        self.cursor.blockSignals(True)
        self.cursor.setValue(index)
        self.cursor.blockSignals(False)

    def _on_cursor_dragged(self) -> None:
        self._controller.seek(round(self.cursor.value()))

    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point: QPointF = self.plot.getViewBox().mapSceneToView(event.scenePos())
        self.click_at(point.x(), point.y(), add=bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier))

    def lane_text(self, lane: float) -> str:
        """'track 5 · ball · 30 frames' for the lane at view y `lane` ('' between lanes)."""
        row = round(lane)
        annotation = self._controller.annotation
        if annotation is None or not 0 <= row < len(self.lanes) or abs(lane - row) > LANE_HEIGHT / 2:
            return ""
        track = annotation.tracks.get(self.lanes[row])
        if track is None:
            return ""
        name = self._controller.categories.name(track.category_id)
        return f"track {track.id} · {name} · {len(annotation.presence(track.id))} frames"

    def _on_hover(self, scene_pos) -> None:
        point = self.plot.getViewBox().mapSceneToView(scene_pos)
        self.plot.setToolTip(self.lane_text(point.y()))

    def click_at(self, frame: float, lane: float, add: bool = False) -> None:
        """Seek to `frame` and select the track on `lane` (if any)."""
        self._controller.seek(round(frame))
        row = round(lane)
        if 0 <= row < len(self.lanes) and abs(lane - row) <= LANE_HEIGHT / 2:
            self._controller.select(self.lanes[row], add=add)
