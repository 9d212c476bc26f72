"""The stability panel: objects per frame, track lengths, and diagnostics over time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.gui.controller import StudioController
from app.gui.timeline import KIND_COLORS, MARKER_SYMBOLS


class StabilityPanel(QWidget):
    """Three small plots that show how steady the tracking is."""

    def __init__(self, controller: StudioController, parent: QWidget | None = None):
        super().__init__(parent)
        self._controller = controller
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.objects = pg.PlotWidget(title="objects per frame")
        self.lengths = pg.PlotWidget(title="track lengths (frames)")
        self.events = pg.PlotWidget(title="diagnostics over time")
        self.events.addLegend(offset=(5, 5))
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 220, 0)))
        self.objects.addItem(self.cursor)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        for plot in (self.objects, self.lengths, self.events):
            plot.setMenuEnabled(False)
            plot.setMinimumHeight(90)
            layout.addWidget(plot)
        self.events.setXLink(self.objects)  # both are over frames: zoom one, the other follows
        self.lengths.setLabel("left", "tracks")
        controller.frame_changed.connect(self.cursor.setValue)

    def refresh_steps(self) -> list[Callable[[], None]]:
        """Rebuilding the plots as one step per plot, for a caller that lets the event loop run in between (each
        plot rebuilds its items: a few tens of ms with hundreds of tracks and markers)."""
        return [self._plot_objects, self._plot_lengths, self._plot_events]

    def _presence(self) -> list[np.ndarray]:
        annotation = self._controller.annotation
        return [annotation.presence(t) for t in annotation.tracks]  # cached per track: no per-frame work

    def _plot_objects(self) -> None:
        annotation = self._controller.annotation
        if annotation is None:
            return
        counts = np.zeros(annotation.num_frames, np.int64)
        for frames in self._presence():
            counts[frames] += 1
        self.objects.clear()
        self.objects.addItem(self.cursor)
        self.objects.plot(np.arange(len(counts)), counts, pen=pg.mkPen((120, 220, 160), width=2))
        self.objects.setXRange(0, max(1, annotation.num_frames - 1))

    def _plot_lengths(self) -> None:
        if self._controller.annotation is None:
            return
        lengths = np.array([len(frames) for frames in self._presence()], dtype=float)
        self.lengths.clear()
        if len(lengths):
            hist, edges = np.histogram(lengths, bins=min(30, max(1, len(np.unique(lengths)))))
            self.lengths.addItem(pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=hist, brush=(110, 150, 230)))

    def _plot_events(self) -> None:
        annotation = self._controller.annotation
        if annotation is None:
            return
        self.events.clear()
        by_kind: dict[str, list[int]] = {}
        for diagnostic in self._controller.diagnostics:
            by_kind.setdefault(diagnostic.kind, []).append(diagnostic.frame)
        for kind, frames in sorted(by_kind.items()):
            per_frame = Counter(frames)
            x = np.array(sorted(per_frame))
            self.events.plot(x, [per_frame[f] for f in x], pen=None, symbol=MARKER_SYMBOLS.get(kind, "o"),
                             symbolBrush=KIND_COLORS.get(kind, (200, 200, 200)), name=kind)
        kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items())) or "no diagnostics yet"
        objects_per_frame = sum(len(frames) for frames in self._presence()) / max(1, annotation.num_frames)
        self.summary.setText(f"{len(annotation.tracks)} tracks, {objects_per_frame:.1f} objects/frame; {kinds}")
