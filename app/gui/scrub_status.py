"""The status bar's note on the scrubbing proxy: "Preparing scrubbing 43 %" while the open video's frames are being
prepared for instant scrubbing ("... as DVIS runs" while the frames left come from a run's decode, at the model's
pace), nothing once they are (or when nothing prepares them any more)."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel

from app.core.scrub import ProxyProgress


class ScrubStatus(QLabel):
    """Shows `ProxyProgress` reports; they come from the scrubber's threads through a queued Qt signal, a few a
    second at most."""

    def __init__(self) -> None:
        super().__init__(visible=False)
        self.setToolTip("Every frame is being prepared for instant scrubbing, once per video (kept for later "
                        "sessions).\nUntil a frame is ready, scrubbing shows the nearest ready one first.")

    @Slot(object)
    def show_progress(self, progress: ProxyProgress) -> None:
        preparing = progress.running and progress.done < progress.total
        if preparing:
            self.setText(f"Preparing scrubbing {100 * progress.done // progress.total} %"
                         + (" as DVIS runs" if progress.with_job else ""))
        self.setVisible(preparing)
