"""Saving and crash recovery in the window: an autosave timer, one writer thread and the recovery prompt.

The decisions live in `app.core.recovery` (schedule, recovery folder) and `app.core.project`
(a save snapshotted on the UI thread, written elsewhere): here only the wiring. Every save, automatic or
asked for (Ctrl+S, Save As), is written on the one writer thread, one after another, so no fsync runs on
the UI thread and two saves never write the same project at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.errors import StudioError
from app.core.project import Project
from app.core.recovery import (
    AutosaveSchedule,
    CrashedSession,
    RecoveryError,
    RecoverySession,
    crashed_sessions,
    discard,
    recover_unsaved,
)

TICK_MS = 250


BUSY_SAVING = "Saving the project"  # why edits wait while "save as" writes a new project from the annotation


class Autosaver(QObject):
    """Saves the open document after edit bursts (into its project, or into a recovery copy when it has none),
    and when the user asks (`save`)."""

    saved = Signal(str)  # status text of an autosave
    failed = Signal(str)
    stored = Signal(object)  # Path: a save the user asked for was written into this project
    store_failed = Signal(object)  # the StudioError that stopped a save the user asked for
    _written = Signal()  # (from the writer thread) a job ended: finish it now rather than at the next tick

    def __init__(self, controller, can_save: Callable[[], bool], root: Path | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.controller = controller
        self.session = RecoverySession(root)
        self.schedule = AutosaveSchedule()
        self._can_save = can_save
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autosave")
        self._job: tuple[Future, Callable[[object], None], Callable[[BaseException], None]] | None = None
        self._asked: tuple[Path | None] | None = None  # a save the user asked for, waiting for the job to end
        self._document: tuple[object, object] = (None, None)
        controller.annotation_changed.connect(self._on_edit)
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._written.connect(self._tick, Qt.ConnectionType.QueuedConnection)

    # ------------------------------------------------------------------ scheduling
    def _on_edit(self, *_) -> None:
        self.schedule.changed(time.monotonic())

    def _tick(self) -> None:
        if not self._timer.isActive():  # the session finished (a job's end may still be queued): nothing starts
            return
        self._collect(wait=False)
        if self._job is None and self._asked is not None:
            self._start_asked()
        elif self._job is None and not self._follow_document():
            if self.controller.video is not None and self.schedule.due(time.monotonic()) and self._can_save():
                self._guarded(self._start)

    def save_now(self) -> None:
        """Autosave at once and wait for it (after recovering a crash: the old copy may go only when this one
        exists)."""
        self.flush()
        self._follow_document()
        self.flush()
        self._guarded(self._start)
        self.flush()

    def flush(self) -> None:
        """Wait for the saves being written or asked for, and finish them (before opening another document,
        closing)."""
        while self._job is not None or self._asked is not None:
            if self._job is None:
                self._start_asked()
            else:
                self._collect(wait=True)

    def finish_session(self) -> None:
        """A clean exit: finish writing, then delete the recovery folder (nothing to recover)."""
        self._timer.stop()
        self.flush()
        self.session.discard()
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ saving
    def save(self, folder: Path | None = None) -> None:
        """Save the document into its project, or into a new project in `folder` ("save as"), on the writer thread;
        `stored` or `store_failed` says how it went. Asked while another save writes, it starts when that one
        has finished (and then also saves the edits made meanwhile)."""
        self._asked = (folder,)
        if self._job is None:
            self._start_asked()

    def _start_asked(self) -> None:
        (folder,), self._asked = self._asked, None
        try:
            if folder is None:
                self._save_into(self.controller.project, self._stored, self.store_failed.emit)
            else:
                self._create(folder)
        except StudioError as error:
            self.store_failed.emit(error)

    def _follow_document(self) -> bool:
        """A new document, or unsaved work saved into a project: the recovery notes follow (old copy dropped).

        Returns whether that started a job (it writes files, so it runs on the worker like the saves).
        """
        c = self.controller
        if self._document[0] is c.video and self._document[1] is c.project:
            return False
        self._document = (c.video, c.project)
        video, project = Path(c.video.path) if c.video is not None else None, c.project.folder if c.project else None
        self._run(lambda: self.session.track(video, project), lambda _: None)
        return True

    def _start(self) -> None:
        c = self.controller
        if c.project is not None:
            target = c.project
        elif not c.session.modified:
            target = None  # nothing that is not on disk already
        elif self.session.project is None:
            self._create_recovery_copy()
            return
        else:
            target = self.session.project
        if target is None or not target.dirty:
            self.schedule.started()
            return
        self._save_into(target, self._saved, self._failed)

    def _save_into(self, target, done: Callable[[object, RecoveryError | None], None],
                   failed: Callable[[BaseException], None]) -> None:
        """Snapshot a save of `target` (the open project or the recovery copy) here, write it on the writer thread,
        then finish it and call `done(target, note)` (`note`: the save is done, the recovery notes are not), or
        call `failed(error)` with the save abandoned (what it held is unsaved again)."""
        c = self.controller
        plan = target.prepare_save()
        self.schedule.started()
        state = c.session.history.state  # what this save holds
        folder = target.folder if target is c.project else None  # None: the recovery copy

        def write() -> RecoveryError | None:
            target.write_save(plan)
            try:
                self.session.autosaved(folder)
            except RecoveryError as error:  # the save itself is done: finish it, then say what is missing
                return error
            return None

        def finish(note: RecoveryError | None) -> None:
            target.finish_save(plan)
            if target is c.project:
                c.session.mark_saved(state)
            done(target, note)

        def abandon(error: BaseException) -> None:
            target.abandon_save(plan)
            failed(error)

        self._run(write, finish, abandon)

    def _create(self, folder: Path) -> None:
        """"Save as": create the project in `folder` from the document on the writer thread, while edits wait
        (creating it reads the whole annotation), then make it the open project."""
        c = self.controller
        session, annotation, video = c.session, c.annotation, Path(c.video.path)
        session.begin_job(BUSY_SAVING)
        state = session.history.state

        def created(project: Project) -> None:
            session.end_job()
            session.adopt_project(project, state)
            self.schedule.started()
            self.stored.emit(project.folder)

        def failed(error: BaseException) -> None:
            session.end_job()
            self.store_failed.emit(error)

        self._run(lambda: Project.create(folder, video, annotation=annotation), created, failed)

    def _create_recovery_copy(self) -> None:
        """The first autosave of unsaved work: create the recovery project on the worker, then save into it."""
        c = self.controller
        annotation, video = c.annotation, Path(c.video.path)
        size = (annotation.num_frames, annotation.height, annotation.width)

        def adopt(project) -> None:
            if c.annotation is not annotation or c.project is not None:  # the document changed meanwhile
                project.close()
                self.session.drop_project()
                return
            project.adopt(annotation)
            self.session.project = project
            self._guarded(self._start)

        self._run(lambda: self.session.create_project(video, *size, annotation.categories), adopt)

    def _saved(self, target, note: RecoveryError | None) -> None:
        if target is self.controller.project:
            self.saved.emit(f"Autosaved {target.folder}")
        else:
            self.saved.emit("Autosaved a recovery copy (not yet saved as a project)")
        if note is not None:
            self.failed.emit(str(note))

    def _stored(self, target, note: RecoveryError | None) -> None:
        self.stored.emit(target.folder)
        if note is not None:
            self.failed.emit(str(note))

    def _run(self, work: Callable[[], object], done: Callable[[object], None],
             failed: Callable[[BaseException], None] | None = None) -> None:
        """Run `work` on the writer thread; then, here, `done(its result)` or `failed(its error)` (default: an
        autosave's failure note)."""
        self._job = (self._pool.submit(work), done, failed or self._failed)
        self._job[0].add_done_callback(lambda _: self._written.emit())

    def _collect(self, wait: bool) -> None:
        if self._job is None or not (wait or self._job[0].done()):
            return
        future, done, failed = self._job
        self._job = None
        try:
            result = future.result()
        except Exception as error:  # noqa: BLE001 - any failure of a save must end it (a saving project stays locked)
            failed(error)
            return
        self._guarded(lambda: done(result))

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except StudioError as error:
            self._failed(error)

    def _failed(self, error: BaseException) -> None:
        self.schedule.failed(time.monotonic())
        self.failed.emit(f"Autosave failed: {error}")


# ---------------------------------------------------------------------- recovery prompt
def ask_to_recover(parent: QWidget, session: CrashedSession) -> QMessageBox.StandardButton:
    """Recover (Yes), throw away (Discard) or decide next time (Cancel)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Recover work", "DVIS Studio did not close properly last time.",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Discard
                      | QMessageBox.StandardButton.Cancel,
                      parent)
    box.setInformativeText(f"It had {session.describe()}.\n\nRecover it now?")
    box.button(QMessageBox.StandardButton.Yes).setText("Recover")
    box.button(QMessageBox.StandardButton.Cancel).setText("Ask Next Time")
    box.setDefaultButton(QMessageBox.StandardButton.Yes)
    return QMessageBox.StandardButton(box.exec())


def offer_recovery(window, root: Path | None = None,
                   ask: Callable[[QWidget, CrashedSession], QMessageBox.StandardButton] = ask_to_recover) -> bool:
    """On start: offer what crashed sessions left (newest first); True when something was recovered into `window`."""
    for session in crashed_sessions(root):
        answer = ask(window, session)
        if answer == QMessageBox.StandardButton.Discard:
            discard(session)
        elif answer == QMessageBox.StandardButton.Yes:
            if session.project is not None:
                window.open_path(session.project, kind="project")
            else:
                window.session.open_recovered(session.video, recover_unsaved(session))
                window.autosaver.save_now()  # this session's copy exists before the old one goes
            discard(session)
            return True
    return False
