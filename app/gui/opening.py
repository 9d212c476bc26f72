"""Opening documents from the GUI: the `app.core.opening` jobs on a worker of their own, and the questions an
open asks on the way (where a project's video went, which video of a VIPSeg dataset).

Only the latest choice counts: a newer open (or Cancel) stops the one in progress, and whatever that one still
opens is closed. A small video opens in place (its index takes well under a second); a large one, a project with
a large video and a VIPSeg import open on the worker while the window stays responsive, showing the first frame
and the progress. The document replaces the open one only once it has loaded and `confirm()` (unsaved edits?)
allowed it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from app.core import jobs, opening
from app.core.opening import FirstFrame, Opened
from app.core.progress import Job, run_job
from app.core.session import Session
from app.gui.errors import report_exception
from app.gui.worker import Worker

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.avi *.mov *.webm *.m4v *.ts *.m2ts *.mts *.mpg *.mpeg);;All files (*)"


def choose_vipseg_video(parent: QWidget, root: Path, title: str, videos: list):
    """Ask which video of the dataset at `root` (none asked when it has one); None when the user cancels."""
    names = [video.video_id for video in videos]
    if len(names) == 1:
        return videos[0]
    name, ok = QInputDialog.getItem(parent, title, f"{len(names)} videos in {root.name}:", names, 0, False)
    return videos[names.index(name)] if ok else None


def _discard(result: object) -> None:
    """The result of an open nobody wants any more (a newer open or Cancel came): release what it opened."""
    if isinstance(result, Opened):
        result.close()


class Opener(QObject):
    """Opens video files, image folders, projects and VIPSeg videos into `session`, one at a time."""

    picture = Signal(object)  # the first frame (np.ndarray) of a video being opened in the background
    progress = Signal(object)  # app.core.progress.Progress of the background open
    status = Signal(str)  # what the status bar says about it
    shown = Signal(object)  # Path: the document opened from it is shown now (a recent file)
    ended = Signal()  # the background open ended, whatever its outcome: the view shows the open document again

    def __init__(self, session: Session, window: QWidget, confirm: Callable[[], bool]):
        super().__init__(window)
        self.session = session
        self.worker = Worker(self)
        self._window = window
        self._confirm = confirm  # asked once the new document has loaded; it also stops the work on the old one
        self._then: Callable[[object], None] | None = None  # what to do with the running job's result
        self._next: tuple[Job, Callable[[object], None]] | None = None  # started once the stopped job has ended
        self.worker.yielded.connect(self._on_item)
        self.worker.progress.connect(self.progress)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_errored)
        self.worker.aborted.connect(self._on_aborted)
        self.worker.finished.connect(self._on_finished)

    @property
    def running(self) -> bool:
        """Whether an open is in progress in the background."""
        return (self._then is not None and self._then is not _discard) or self._next is not None

    def open(self, path: str | Path, kind: str | None = None) -> None:
        """Open whatever `path` is (`kind` as `jobs.kind_of` says, unless a menu item chose it). An unreadable
        file is an error (raised here for an open in place) and the open document stays."""
        path = Path(path)
        kind = kind or jobs.kind_of(path)
        self.abandon()
        background = opening.in_background(path, kind)
        text = f"Opening {path.name}…"
        if kind == "vipseg":
            self._run(text, jobs.read_vipseg(path), lambda dataset: self._import_vipseg(path, *dataset), background)
        elif kind == "project":
            ask = True
            if self.session.is_open_project(path):  # reopening it: ask before letting go of our lock
                if not self._confirm():
                    return
                self.session.release_project()
                ask = False
            self._run(text, opening.open_project(path), lambda opened: self._project_read(opened, ask, background),
                      background)
        else:
            self._run(text, opening.open_video(path), self._show, background)

    def cancel(self) -> None:
        """Stop the open in progress (Cancel); the open document stays."""
        if self.running:
            self.abandon()
            self.status.emit("Opening cancelled.")

    def abandon(self) -> None:
        """Forget the open in progress: its job is stopped, and what it opens anyway is closed."""
        self._next = None
        if self.worker.running:
            self._then = _discard
            self.worker.quit()

    def stop(self) -> None:
        """Stop the open in progress and wait for its thread (the window closes)."""
        self.abandon()
        self.worker.stop()
        self._then = None

    def locate_moved_video(self, missing: Path) -> Path | None:
        """Ask where a project's video went (it was moved or renamed)."""
        QMessageBox.information(self._window, "Video moved",
                                f"The project's video {missing} is missing. Please locate it.")
        path, _ = QFileDialog.getOpenFileName(self._window, f"Locate {missing.name}", str(missing.parent), VIDEO_FILTER)
        return Path(path) if path else None

    # ------------------------------------------------------------------ steps
    def _run(self, text: str, job: Job, then: Callable[[object], None], background: bool) -> None:
        """Run one step of an open: on the worker (then `then(result)` on the UI thread), or here and now."""
        if not background:
            then(run_job(job))
            return
        self.status.emit(text)
        if self.worker.running:  # the abandoned job has not noticed yet: this one starts when it has ended
            self._next = (job, then)
        else:
            self._then = then
            self.worker.start(job)

    def _show(self, opened: Opened, ask: bool = True) -> bool:
        """Show `opened` once `confirm()` allowed it (unless already asked); False when the user kept the open one."""
        shown = self.session.show(opened, self._confirm if ask else None)
        if shown:
            self.shown.emit(opened.path)
        return shown

    def _project_read(self, opened: Opened, ask: bool, background: bool) -> None:
        """The project is open; its video next (asking where it went if it moved)."""
        if opened.video is not None:
            self._show(opened, ask)
            return
        try:
            moved = self.locate_moved_video(opened.project.video_path)
        except BaseException:
            opened.close()
            raise
        self._run(f"Opening {opened.path.name}…", opening.project_video(opened, moved),
                  lambda document: self._show(document, ask), background)

    def _import_vipseg(self, root: Path, categories, videos: list) -> None:
        video = choose_vipseg_video(self._window, root, "Open VIPSeg video", videos)
        if video is None:
            self.status.emit("Ready.")
            return

        def imported(opened: Opened) -> None:
            self.status.emit(f"Opened {video.video_id} from {root}" if self._show(opened) else "Ready.")

        self._run(f"Importing {video.video_id}…", opening.import_vipseg(root, categories, video), imported, True)

    # --------------------------------------------------------- worker signals
    def _on_item(self, item: object) -> None:
        if isinstance(item, FirstFrame):
            self.picture.emit(item.picture)

    def _on_returned(self, result: object) -> None:
        then, self._then = self._then, None
        if then is not None:
            try:
                then(result)
            except Exception as error:  # noqa: BLE001 - the end of a background step: shown like an action's error
                report_exception(self._window, "Open", error)

    def _on_errored(self, error: object) -> None:
        then, self._then = self._then, None
        if then is not _discard:
            self.status.emit("Opening failed.")
            report_exception(self._window, "Open", error)

    def _on_aborted(self) -> None:
        self._then = None

    def _on_finished(self) -> None:
        if self._next is not None and not self.worker.running:
            job, then = self._next
            self._next = None
            self._then = then
            self.worker.start(job)
        elif not self.worker.running:
            self.ended.emit()
