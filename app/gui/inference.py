"""DVIS inference off the UI thread.

`InferenceWorker` is a QObject moved to a QThread; its `run` slot loads the model through
`app.core.model_source` (torch loads there, never at GUI import time), decodes the frame range with its own
VideoSource (decoders are not shared across threads) and emits one `frame_ready` per finished
frame. Pause blocks inside the pipeline's cancel callable; cancel makes it stop, and frames already
emitted stay. `InferenceRunner` owns the thread and turns progress into frames/s and ETA.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.core.model_source import BUNDLED

COMPLETED, CANCELLED = "completed", "cancelled"


@dataclass(frozen=True)
class RunRequest:
    """What to run: `model` is "bundled", "preset:<name>" (fresh weights), "model:<name>" (installed) or a path."""

    video_path: Path
    model: str = BUNDLED
    offline: bool = False
    short_edge: int | None = None  # None: the model's own test resolution
    start: int = 0
    stop: int | None = None  # exclusive; None: to the end
    device: str | None = None  # None: CUDA when available, else CPU
    chunk_size: int = 8  # frames per segmenter batch: smaller shows results sooner, larger is faster
    score_threshold: float | None = None  # minimum object score; None: the model's own (0.8 for DVIS)
    torch_threads: int | None = None
    seed: int = 0  # initialises a preset's fresh weights, so test runs are reproducible
    keep_edited: bool = True  # how results are merged: edited tracks are kept like locked ones
    fast: bool = False  # CPU fast mode (VideoSegmenter's fast): quicker, slightly off the official outputs


def load_model(source: str, seed: int = 0):
    """The model of `source` (see `app.core.model_source`), cached so re-runs start at once. Runs in the worker."""
    from app.core.model_source import load_model as resolve

    return resolve(source, seed)


class InferenceWorker(QObject):
    """Runs one request; lives in its own QThread."""

    frame_ready = Signal(object)  # a FrameResult of the pipeline (index relative to request.start)
    progress = Signal(int, int)  # frames done, frames total
    phase = Signal(str, int, int)  # an offline run's phase before its frames finish: text, done, total
    status = Signal(str)
    # Outcomes travel as strings, never as Python bools: PySide6 6.12 drops a reference to True on every
    # Python-side emit of True (the interpreter aborts after enough runs).
    finished = Signal(str)  # COMPLETED or CANCELLED
    failed = Signal(object)  # the exception

    def __init__(self, request: RunRequest):
        super().__init__()
        self.request = request
        self._cancel = threading.Event()
        self._resume = threading.Event()
        self._resume.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._resume.set()

    def pause(self, paused: bool) -> None:
        (self._resume.clear if paused else self._resume.set)()

    def _should_stop(self) -> bool:
        """The pipeline's cancel callable: blocks while paused, True once cancelled."""
        self._resume.wait()
        return self._cancel.is_set()

    @Slot()
    def run(self) -> None:
        try:
            cancelled = self._run()
        except Exception as error:  # noqa: BLE001 - reported to the UI thread, which shows a dialog
            self.failed.emit(error)
        else:
            self.finished.emit(CANCELLED if cancelled else COMPLETED)
        QThread.currentThread().quit()  # the thread ends with the run, so InferenceRunner.stop can wait for it

    def _run(self) -> bool:
        request = self.request
        self.status.emit("Loading model…")
        from app.core.errors import InferenceCancelled
        from app.core.model_source import build_segmenter, phase_text, set_threads
        from app.core.video import VideoSource

        set_threads(request.torch_threads)
        model = load_model(request.model, request.seed)
        segmenter = build_segmenter(model, device=request.device, chunk_size=request.chunk_size,
                                    offline=request.offline, score_threshold=request.score_threshold,
                                    short_edge=request.short_edge, fast=request.fast)
        device = segmenter.device
        with VideoSource.open(request.video_path) as video:
            stop = video.num_frames if request.stop is None else min(request.stop, video.num_frames)
            total = max(0, stop - request.start)
            frames = (frame for _, frame in video.iter_frames(request.start, stop))
            self.status.emit(f"Running on {device}{' in fast mode' if segmenter.fast else ''}…")
            self.progress.emit(0, total)  # starts the frames/s clock after model loading
            done = 0

            def report(phase: str, count: int, of: int | None) -> None:
                """Offline frames finish only after a whole window is refined: show the phases until then."""
                text = phase_text(phase, count, of)
                if request.offline and text is not None:
                    self.phase.emit(text, count, of or 0)

            try:
                for result in segmenter.run(frames, num_frames=total, progress=report, cancel=self._should_stop):
                    self.frame_ready.emit(result)
                    done += 1
                    self.progress.emit(done, total)
                    if self._should_stop():
                        return True
            except InferenceCancelled:
                return True
        return self._cancel.is_set()


def eta_text(done: int, total: int, elapsed: float) -> str:
    """'12/100 frames · 3.4 frames/s · ETA 0:26' (plain function so it is testable)."""
    if done <= 0 or elapsed <= 0:
        return f"{done}/{total} frames"
    rate = done / elapsed
    left = int(round((total - done) / rate))
    return f"{done}/{total} frames · {rate:.1f} frames/s · ETA {left // 60}:{left % 60:02d}"


class InferenceRunner(QObject):
    """Starts workers on a QThread and relays their signals to the UI thread."""

    frame_ready = Signal(object, int)  # FrameResult, frame offset (request.start)
    progress_text = Signal(str, int, int)
    running_changed = Signal()  # read `running`
    finished = Signal(str)  # COMPLETED or CANCELLED
    failed = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: InferenceWorker | None = None
        self._started = 0.0
        self._paused_at = 0.0
        self._offset = 0
        self._done = self._total = 0
        self.paused = False

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, request: RunRequest) -> None:
        if self.running:
            raise RuntimeError("inference is already running")
        thread = QThread()
        worker = InferenceWorker(request)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Bound methods of this UI-thread object, so the connections are queued (a lambda would run in the worker).
        worker.frame_ready.connect(self._on_frame)
        worker.progress.connect(self._on_progress)
        worker.phase.connect(self._on_phase)
        worker.status.connect(self._on_status)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self._thread, self._worker = thread, worker
        self._started = time.monotonic()
        self._offset = request.start
        self._done = self._total = 0
        self.paused = False
        thread.start()
        self.running_changed.emit()

    def pause(self, paused: bool) -> None:
        """Pause or resume; the progress text says "Paused" until resumed, and paused time is not in the ETA."""
        if self._worker is None or paused == self.paused:
            return
        if paused:
            self._paused_at = time.monotonic()
        else:
            self._started += time.monotonic() - self._paused_at
        self.paused = paused
        self._worker.pause(paused)
        self.progress_text.emit(self._text(), self._done, self._total)

    def _text(self) -> str:
        if self.paused:  # frames already in flight still arrive: the text stays "Paused" for them too
            return f"Paused at {self._done}/{self._total} frames; Model → Resume Inference (Ctrl+P) continues"
        return eta_text(self._done, self._total, time.monotonic() - self._started)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def stop(self) -> None:
        """Cancel and block until the worker thread has ended (closing, opening another video).

        Signals the stopped worker still has queued are dropped: finished frames already shown stay.
        """
        if self._worker is None:
            return
        self._worker.cancel()
        self._thread.wait()
        self._stop_thread()

    def _current(self) -> bool:
        """Whether the signal being handled comes from the running worker (not from a stopped one)."""
        return self._worker is not None and self.sender() is self._worker

    def _on_frame(self, result: object) -> None:
        if self._current():
            self.frame_ready.emit(result, self._offset)

    def _on_status(self, text: str) -> None:
        if self._current():
            self.progress_text.emit(text, 0, 0)

    def _on_phase(self, text: str, done: int, total: int) -> None:
        if self._current():
            self.progress_text.emit(text, done, total)

    def _on_progress(self, done: int, total: int) -> None:
        if not self._current():
            return
        if done == 0:
            self._started = time.monotonic()
        self._done, self._total = done, total
        self.progress_text.emit(self._text(), done, total)

    def _stop_thread(self) -> None:
        thread, self._thread, self._worker = self._thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()
        self.running_changed.emit()

    def _on_finished(self, outcome: str) -> None:
        if self._current():
            self._stop_thread()
            self.finished.emit(outcome)

    def _on_failed(self, error: object) -> None:
        if self._current():
            self._stop_thread()
            self.failed.emit(error)
