"""The prompted-mask tool of the frame view: clicks and a box in, the best proposal shown live, Enter accepts.

Left click adds a positive point, right click (or Alt+click) a negative one, a drag sets the box. Each change
asks a worker thread for proposals (``app.core.propagation.prompts.propose``: the loaded model's own masks,
ranked, or GrabCut), so the UI never waits; a stale answer is dropped. Tab shows the next best, Enter puts
the shown one into the selected track or a new track of its class (one undo step), Esc clears the prompt.

The worker keeps its own reader of the video and, with a model, the segmenter's per-frame outputs of the
open video, so prompting again on a frame costs only the ranking.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPixmapItem, QGraphicsRectItem

from app.core.colors import boundary_mask
from app.core.propagation.prompts import Prompt, Proposal
from app.gui.controller import StudioController
from app.gui.video_view import VideoView

CACHED_FRAMES = 4  # segmenter outputs kept: about 100 MB a frame at 720p (256 mask-feature channels + query masks)
DRAG_PIXELS = 5  # a press moved farther than this (view pixels) is a box drag, not a click
BUTTONS = (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton)  # positive / negative points
KEYS = (Qt.Key.Key_Tab, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)
TINT = (0, 220, 255)  # the proposal's colour: unlike any track's, so it reads as "not yet accepted"
GESTURES = [
    ("Prompted mask: positive / negative point", "Click / Right-click, Alt+Click"),
    ("Prompted mask: box around the object", "Drag"),
    ("Prompted mask: next proposal / accept / clear", "Tab / Enter / Esc"),
]


class _ProposalWorker:
    """Lives on one worker thread: the open video's reader and, with a model, its cached segmenter outputs."""

    def __init__(self):
        self._video = None  # app.core.video.VideoSource of ``_path``
        self._path: Path | None = None
        self._segmenter = None  # app.core.propagation.segmenter.SegmenterCache over ``_video``
        self._model_source: str | None = None

    def propose(self, path: Path, index: int, prompt: Prompt, model_source: str | None) -> list[Proposal]:
        from app.core.propagation.prompts import propose
        from app.core.video import VideoSource

        if path != self._path:
            self.close()
            self._video, self._path = VideoSource.open(path), path
        image = self._video.frame(index)
        if model_source is None:
            return propose(image, prompt)
        if model_source != self._model_source:
            from app.core.model_source import load_model
            from app.core.propagation.segmenter import SegmenterCache

            self._segmenter = SegmenterCache(load_model(model_source), self._video.frame, max_frames=CACHED_FRAMES)
            self._model_source = model_source
        labels = self._segmenter.model.config.label_to_category
        return propose(image, prompt, self._segmenter.get(index), labels)

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
        self._video = self._path = self._segmenter = self._model_source = None


class PromptTool(QObject):
    """Gathers the prompt from the view's mouse and keys while the view's tool is "prompt"."""

    proposals_changed = Signal()  # new proposals (or none) are shown
    _answered = Signal(int, object)  # (request number, proposals or the error), from the worker thread

    def __init__(self, view: VideoView, controller: StudioController, model_source: Callable[[], str | None],
                 choose_category: Callable[[Callable[[int], None]], None], status: Callable[[str], None]):
        super().__init__(view)
        self.view, self.controller = view, controller
        self._model_source = model_source
        self._choose_category = choose_category  # asks for a class, then calls back with it
        self._status = status
        self.prompt = Prompt()
        self.proposals: list[Proposal] = []
        self.shown = 0  # index of the proposal shown
        self._asked = 0  # number of the latest request; older answers are stale
        self._press: QPoint | None = None
        self._worker = _ProposalWorker()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prompt")
        self._answered.connect(self._on_answer)
        self.mask_item = QGraphicsPixmapItem()
        self.mask_item.setZValue(8)
        self.box_item = QGraphicsRectItem()
        pen = QPen(QColor(*TINT), 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.box_item.setPen(pen)
        self.box_item.setZValue(9)
        self._points: list[QGraphicsEllipseItem] = []
        for item in (self.mask_item, self.box_item):
            view.scene().addItem(item)
        view.viewport().installEventFilter(self)
        view.installEventFilter(self)
        controller.frame_changed.connect(lambda _: self.clear())
        controller.loaded.connect(self._on_loaded)

    @property
    def active(self) -> bool:
        return self.view.tool == "prompt" and self.controller.video is not None

    @property
    def proposal(self) -> Proposal | None:
        return self.proposals[self.shown] if self.proposals else None

    # --------------------------------------------------------------- prompt
    def add_point(self, x: int, y: int, positive: bool) -> None:
        (self.prompt.positives if positive else self.prompt.negatives).append((x, y))
        self._ask()

    def set_box(self, x0: int, y0: int, x1: int, y1: int) -> None:
        width, height = self.controller.video.width, self.controller.video.height
        box = (max(0, min(x0, x1)), max(0, min(y0, y1)), min(width, max(x0, x1) + 1), min(height, max(y0, y1) + 1))
        self.prompt = replace(self.prompt, box=box)
        self._ask()

    def clear(self) -> None:
        self._asked += 1  # answers on their way are for the old prompt
        self.prompt, self.proposals, self.shown = Prompt(), [], 0
        self._draw()

    def next_proposal(self) -> None:
        if self.proposals:
            self.shown = (self.shown + 1) % len(self.proposals)
            self._draw()
            self._say()

    def accept(self) -> None:
        """The shown proposal into the selected track, or a new track of its class (asked for when it has none)."""
        proposal, c = self.proposal, self.controller
        if proposal is None:
            return
        if c.selected is not None:
            self._accept(proposal, c.annotation.tracks[c.selected].category_id, c.selected)
        elif proposal.category_id is not None:
            self._accept(proposal, proposal.category_id, None)
        else:
            self._choose_category(lambda category_id: self._accept(proposal, category_id, None))

    def _accept(self, proposal: Proposal, category_id: int, track_id: int | None) -> None:
        from app.core.propagation.labelling import accept_proposal

        c = self.controller
        edit, track_id = accept_proposal(c.annotation, c.frame_index, proposal.mask, category_id, track_id)
        c.edit(edit, edit.label)
        c.select(track_id)
        self.clear()
        self._status(f"{edit.label}. Propagate it through the video with Shift+P.")

    # ---------------------------------------------------------- the worker
    def _ask(self) -> None:
        self._asked += 1
        self._draw()
        c = self.controller
        asked, path, index, prompt = self._asked, Path(c.video.path), c.frame_index, replace(self.prompt)
        prompt.positives, prompt.negatives = list(prompt.positives), list(prompt.negatives)
        source = self._model_source()
        self._status("Finding a mask…" + (" (the model's first look at this frame takes a moment)" if source else ""))
        future = self._executor.submit(self._worker.propose, path, index, prompt, source)
        future.add_done_callback(lambda done: self._answered.emit(asked, done.exception() or done.result()))

    def _on_answer(self, asked: int, answer: object) -> None:
        if asked != self._asked:
            return
        if isinstance(answer, Exception):
            self.proposals = []
            self._status(str(answer))
        else:
            self.proposals, self.shown = answer, 0
            self._say()
        self._draw()
        self.proposals_changed.emit()

    def _say(self) -> None:
        proposal = self.proposal
        if proposal is None:
            return
        name = (f"{self.controller.categories.name(proposal.category_id)}, model" if proposal.category_id is not None
                else "GrabCut")
        more = f"; Tab: next of {len(self.proposals)}" if len(self.proposals) > 1 else ""
        self._status(f"Proposal {self.shown + 1} ({name}): Enter accepts{more}; Esc clears.")

    def _on_loaded(self) -> None:
        self.clear()
        self._executor.submit(self._worker.close)  # the old video's reader and segmenter outputs

    def shutdown(self) -> None:
        """Stop the worker (the window closes)."""
        self._executor.submit(self._worker.close)
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -------------------------------------------------------------- drawing
    def _draw(self) -> None:
        proposal = self.proposal
        if proposal is None:
            self.mask_item.setPixmap(QPixmap())
        else:
            self.mask_item.setPixmap(QPixmap.fromImage(_tinted(proposal.mask)))
        box = self.prompt.box
        self.box_item.setVisible(box is not None)
        if box is not None:
            self.box_item.setRect(QRectF(box[0], box[1], box[2] - box[0], box[3] - box[1]))
        for item in self._points:
            self.view.scene().removeItem(item)
        self._points = []
        video = self.controller.video
        radius = max(2.0, max(video.width, video.height) / 150) if video is not None else 2.0
        for points, colour in ((self.prompt.positives, (60, 220, 60)), (self.prompt.negatives, (240, 60, 60))):
            for x, y in points:
                item = QGraphicsEllipseItem(x + 0.5 - radius, y + 0.5 - radius, 2 * radius, 2 * radius)
                item.setBrush(QBrush(QColor(*colour)))
                pen = QPen(QColor(255, 255, 255), 1.5)
                pen.setCosmetic(True)
                item.setPen(pen)
                item.setZValue(11)
                self.view.scene().addItem(item)
                self._points.append(item)

    # --------------------------------------------------------- mouse, keys
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self.active:
            return False
        if watched is self.view:
            return self._key(event)
        kind = event.type()
        if kind == QEvent.Type.ContextMenu:
            return True  # the right button is a negative point here
        if kind == QEvent.Type.MouseButtonPress and event.button() in BUTTONS:
            self._press = event.position().toPoint()
            return True
        if kind == QEvent.Type.MouseMove and self._press is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self._draw_drag(event.position().toPoint())
            return False  # the view still shows the hovered pixel
        if kind == QEvent.Type.MouseButtonRelease and self._press is not None:
            self._release(event)
            return True
        return False

    def _release(self, event) -> None:
        press, self._press = self._press, None
        end = event.position().toPoint()
        x0, y0 = self.view.image_point(press)
        x1, y1 = self.view.image_point(end)
        if event.button() == Qt.MouseButton.LeftButton and (end - press).manhattanLength() > DRAG_PIXELS:
            self.set_box(x0, y0, x1, y1)
            return
        video = self.controller.video
        if not (0 <= x1 < video.width and 0 <= y1 < video.height):
            self._status("Click inside the picture to mark the object.")
            return
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        self.add_point(x1, y1, positive=event.button() == Qt.MouseButton.LeftButton and not alt)

    def _draw_drag(self, to: QPoint) -> None:
        (x0, y0), (x1, y1) = self.view.image_point(self._press), self.view.image_point(to)
        self.box_item.setRect(QRectF(min(x0, x1), min(y0, y1), abs(x1 - x0) + 1, abs(y1 - y0) + 1))
        self.box_item.setVisible(True)

    def _key(self, event: QEvent) -> bool:
        """Tab, Enter and Esc are the tool's while it holds a prompt (not focus moves or the window's Esc)."""
        if event.type() not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) or event.key() not in KEYS:
            return False
        if not (self.prompt.positives or self.prompt.negatives or self.prompt.box or self.proposals):
            return False
        if event.type() == QEvent.Type.ShortcutOverride:
            event.accept()
            return True
        if event.key() == Qt.Key.Key_Tab:
            self.next_proposal()
        elif event.key() == Qt.Key.Key_Escape:
            self.clear()
            self._status("Prompt cleared.")
        else:
            self._run(self.accept)
        return True

    def _run(self, action: Callable[[], None]) -> None:
        """Errors of an accept (e.g. a locked track, a stuff class taken) become the window's error dialog."""
        from app.gui.errors import report_exception

        try:
            action()
        except Exception as error:  # noqa: BLE001 - the action boundary of a key handled here
            report_exception(self.view.window(), "Prompted mask", error)


def _tinted(mask: np.ndarray) -> QImage:
    """The proposal as a translucent tint with an opaque outline (RGBA image of the frame size)."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (*TINT, 110)
    rgba[boundary_mask(mask.astype(np.int32), width=max(1, mask.shape[0] // 240)) & mask] = (*TINT, 255)
    height, width = mask.shape
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
