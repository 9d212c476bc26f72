"""Playback: steps the controller through the frames at the video's rate until the last frame or a pause."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

DEFAULT_FPS = 25.0  # a video without a usable rate plays at this one


class Player(QObject):
    """Play / pause over a `StudioController`; `playing_changed(playing)` tells the play button."""

    playing_changed = Signal(str)  # "playing" or "paused" (signals carry no Python bools, see app.gui.worker)

    def __init__(self, controller, parent: QObject | None = None):
        super().__init__(parent)
        self._controller = controller
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def toggle(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playing_changed.emit("paused")
        elif self._controller.video is not None:
            fps = self._controller.video.fps or DEFAULT_FPS
            self._timer.start(max(10, int(1000 / fps)))
            self.playing_changed.emit("playing")

    def _tick(self) -> None:
        c = self._controller
        if c.frame_index >= c.num_frames - 1:
            self.toggle()
        else:
            c.step(1)
