"""The open document and the work running on it, without Qt.

A `Session` owns what the user has open (video, annotation, project) from opening to replacing or
closing it, its edit history (undo, redo, "modified"), the model run writing into it and whether
edits must wait (`busy`). The GUI shows it and forwards the user's intents; tests drive it directly.
Observers subscribe to its `Notifier`s: `loaded`, `annotation_changed`, `busy_changed`, and the
history's `changed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.edits import Edit
from app.core.errors import StudioError
from app.core.history import EditHistory
from app.core.notify import Notifier
from dvis_models.categories import CategoryTable, vipseg_categories

BUSY_INFERENCE = "DVIS is running"  # why edits wait while a model run writes into the annotation

Confirm = Callable[[], bool]


class UserActionError(StudioError):
    """An action was asked for in a state where it cannot run (e.g. nothing selected, a run in progress)."""


@dataclass
class ModelRun:
    """A model run writing into the annotation: what was asked and the merger writing its results."""

    request: object  # the run request (video, model, frame range, options...)
    merger: object  # app.core.result_merger.ResultMerger


@dataclass(frozen=True)
class RunEnd:
    """How a finished or cancelled run left the document."""

    frames: list[int]  # frames the run wrote, ascending
    cancelled: bool
    resume_at: int | None  # a cancelled run's first frame not done (None: nothing left to do)


class Session:
    """One open document, its history, its model run and its busy state."""

    def __init__(self) -> None:
        self.video = None  # app.core.video.VideoSource
        self.annotation = None  # app.core.annotation.Annotation
        self.project = None  # app.core.project.Project (None: not saved as a project yet)
        self.history = EditHistory()
        self.diagnostics: list = []  # stability markers of the annotation as of `_diagnosed_version`
        self.run: ModelRun | None = None
        self.resume_at: int | None = None  # where the next run continues after a cancelled one
        self.last_model: str | None = None  # the model source of this session's last run
        self.version = 0  # counts changes of the annotation and documents: tells stale diagnostics
        self._diagnosed_version = 0
        self._job: str | None = None  # the name of the export / evaluation / propagation reading the annotation
        self.closing = Notifier()  # () before the open document's video and project are released
        self.loaded = Notifier()  # () a new document replaced the old one
        self.annotation_changed = Notifier()  # (frames, tracks): set or None (= all)
        self.busy_changed = Notifier()  # (busy text or None)

    # ---------------------------------------------------------------- document
    @property
    def categories(self) -> CategoryTable:
        return self.annotation.categories if self.annotation is not None else vipseg_categories()

    @property
    def num_frames(self) -> int:
        return self.video.num_frames if self.video is not None else 0

    def open_video(self, path: str | Path, confirm: Confirm | None = None) -> bool:
        """Open a video file or an image folder with an empty annotation, here and now.

        `confirm()` is asked once the file has opened, before the open document is replaced (unsaved edits);
        an unreadable file raises before anyone is asked. Returns whether the new document was shown.
        """
        from app.core.opening import open_video
        from app.core.progress import run_job

        return self.show(run_job(open_video(Path(path))), confirm)

    def show(self, opened, confirm: Confirm | None = None) -> bool:
        """Show a document an `app.core.opening` job opened (on any thread) if `confirm` allows (as for
        `open_video`); otherwise close it and keep the open one."""
        from app.core.annotation import Annotation

        video, annotation = opened.video, opened.annotation
        if annotation is None:
            annotation = Annotation(video.num_frames, video.height, video.width, vipseg_categories())
        if confirm is not None and not confirm():
            opened.close()
            return False
        self._set_document(video, annotation, opened.project)
        return True

    def is_open_project(self, folder: str | Path) -> bool:
        """Whether `folder` is the open project: reopening it must `release_project` (its lock) first."""
        return self.project is not None and self.project.folder == Path(folder).absolute()

    def release_project(self) -> None:
        """Let go of the open project's lock (before reopening it); the document stays shown, unsaved as a project."""
        self.closing.emit()
        self._release_project()

    def open_recovered(self, video_path: Path, annotation) -> None:
        """Show work recovered after a crash: the video with the autosaved annotation, unsaved until saved
        as a project."""
        from app.core.video import VideoSource

        self._set_document(VideoSource.open(Path(video_path)), annotation, None)
        self.history.mark_modified()

    def save_project(self, folder: str | Path | None = None) -> Path:
        """Save into the open project, or create one in `folder` (first save / "save as")."""
        from app.core.project import Project

        if folder is not None:
            state = self.history.state
            self.adopt_project(Project.create(Path(folder), self.video.path, annotation=self.annotation), state)
            return self.project.folder
        if self.project is None:
            raise UserActionError("This video has no project yet; use File → Save Project As… to choose a folder.")
        self.project.save()
        self.history.set_clean()
        return self.project.folder

    def adopt_project(self, project, state: int) -> None:
        """`project` was created from this document ("save as", maybe on another thread) as it was at history
        state `state`: it is the open project from now on, and the open one's lock is let go."""
        self._release_project()
        self._follow_project(project)
        self.history.set_clean(state)

    def mark_saved(self, state: int) -> None:
        """A save of history state `state` finished in the background (an autosave): that state is saved."""
        self.history.set_clean(state)

    @property
    def modified(self) -> bool:
        """Edits or model results not yet saved to a project."""
        return self.video is not None and self.history.modified

    def work_note(self) -> str:
        """Where the user's work stands, for error dialogs: what is safe and what to do to keep it."""
        if self.video is None:
            return ""
        if not self.modified:
            return "The project has no unsaved changes." if self.project is not None else ""
        if self.project is not None:
            return "Your edits are still open in this window; save the project (Ctrl+S) to keep them."
        return ("Your edits are still open in this window and not saved anywhere yet; "
                "use File → Save Project As… to keep them.")

    def _set_document(self, video, annotation, project) -> None:
        if self.annotation is not None and self._on_annotation_change in self.annotation.listeners:
            self.annotation.listeners.remove(self._on_annotation_change)
        self.closing.emit()
        if self.project is not project:
            self._release_project()
            self._follow_project(project)
        if self.video is not None and self.video is not video:
            self.video.close()
        self.video, self.annotation = video, annotation
        self.history.reset(annotation)
        if project is not None and project.dirty:  # opening repaired it (e.g. dropped orphaned marks): save that
            self.history.mark_modified()
        annotation.listeners.append(self._on_annotation_change)
        self.diagnostics = []
        self.version += 1  # diagnostics of the previous document are stale
        self.loaded.emit()

    def _follow_project(self, project) -> None:
        """`project` logs the edits of the history from now on."""
        self.project = project
        if project is not None:
            self.history.applied.connect(project.record)

    def _release_project(self) -> None:
        if self.project is not None:
            self.history.applied.disconnect(self.project.record)
            self.project.close()  # releases its lock
            self.project = None

    def _on_annotation_change(self, frames, tracks) -> None:
        self.version += 1
        self.annotation_changed.emit(frames, tracks)

    # ------------------------------------------------------------------- edits
    @property
    def busy(self) -> str | None:
        """Why edits are refused right now (a run writes or a job reads the annotation); None when they are not."""
        if self.run is not None:
            return BUSY_INFERENCE
        return f"{self._job} is running" if self._job is not None else None

    def check_idle(self) -> None:
        if self.busy is not None:
            raise UserActionError(f"{self.busy}; edits are possible again when it has finished (or cancel it).")

    def edit(self, edit: Edit, label: str) -> Edit:
        """Apply a user edit as one undo step (the project logs it); returns its inverse."""
        self.check_idle()
        return self.history.do(edit, label)

    def undo(self) -> None:
        self.check_idle()
        self.history.undo()

    def redo(self) -> None:
        self.check_idle()
        self.history.redo()

    # -------------------------------------------------------------------- jobs
    def begin_job(self, name: str) -> None:
        """A job called `name` (e.g. "Propagation") starts reading or writing the annotation: edits wait until
        `end_job`, and a refused edit names it."""
        if self._job is not None:
            raise UserActionError(f"{self._job} is still running; wait for it to finish (or cancel it).")
        before, self._job = self.busy, name
        self._busy_changed(before)

    def end_job(self) -> None:
        before, self._job = self.busy, None
        self._busy_changed(before)

    def _busy_changed(self, before: str | None) -> None:
        if self.busy != before:
            self.busy_changed.emit(self.busy)

    # -------------------------------------------------------------- model runs
    def begin_run(self, request):
        """Start writing a model run's results into the annotation; returns the request to compute.

        A run resumed after a cancel computes one frame early, on the last finished frame, which carries
        the object ids over (`resume_start`); results before `request.start` only match ids.
        """
        from app.core.result_merger import ResultMerger, resume_start

        if self.run is not None:
            raise UserActionError("DVIS is already running; cancel it first to start another run.")
        merger = ResultMerger(self.annotation, keep_edited=request.keep_edited, write_from=request.start)
        before, self.run, self.resume_at = self.busy, ModelRun(request, merger), None
        self.last_model = str(request.model)
        self._busy_changed(before)
        return dataclasses.replace(request, start=resume_start(self.annotation, request.start))

    def model_in_use(self) -> str | None:
        """The model source of this session's last run, else the one the project was made with (None: none)."""
        if self.last_model is not None:
            return self.last_model
        return (self.project.model or {}).get("model") if self.project is not None else None

    def add_result(self, result, offset: int = 0) -> None:
        """Write one frame's result (frame `result.index + offset`) of the running model."""
        if self.run is not None:
            self.run.merger.add(result, offset)

    def finish_run(self, cancelled: bool) -> RunEnd:
        """The run completed or was cancelled: everything it wrote becomes one undo step and the project
        records which model made the annotation. A cancelled run's finished frames stay."""
        if self.run is None:  # abandoned meanwhile (`abandon_work`): nothing is left to close
            return RunEnd([], cancelled, self.resume_at)
        request = self.run.request
        frames = self._close_run()
        if self.project is not None:
            self.project.model = {"model": str(request.model), "offline": request.offline,
                                  "short_edge": request.short_edge, "frames": [request.start, request.stop],
                                  "fast": request.fast}
        if cancelled:
            stop = self.num_frames if request.stop is None else request.stop
            resume = frames[-1] + 1 if frames else request.start
            self.resume_at = resume if resume < stop else None
        return RunEnd(frames, cancelled, self.resume_at)

    def fail_run(self) -> list[int]:
        """The run failed: what it wrote so far stays, as one undo step. Returns the frames it wrote."""
        return self._close_run()

    def abandon_work(self) -> None:
        """The runs and jobs were stopped without reporting back (the document is being replaced or closed)."""
        before, self.run, self._job = self.busy, None, None
        self._busy_changed(before)

    def _close_run(self) -> list[int]:
        """Finish the run's merge and make all it wrote one undo step; returns the frames it wrote."""
        run = self.run
        if run is None:
            return []
        try:
            run.merger.finish()
            undo = run.merger.undo_edit()
            frames = run.merger.frames
            if undo is not None:
                span = f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}-{frames[-1]}"
                self.history.push_applied(undo, f"Run DVIS on {span}")
        finally:
            before, self.run = self.busy, None
            self._busy_changed(before)
        return frames

    # ------------------------------------------------------------- diagnostics
    def begin_diagnostics(self) -> None:
        """Stability diagnostics start on the annotation as it is now."""
        self._diagnosed_version = self.version

    @property
    def diagnostics_stale(self) -> bool:
        """The annotation changed since the diagnostics were started: recompute them."""
        return self._diagnosed_version != self.version

    def set_diagnostics(self, diagnostics: list) -> bool:
        """Keep finished diagnostics unless the annotation changed meanwhile; returns whether they were kept."""
        if self.diagnostics_stale:
            return False
        self.diagnostics = diagnostics
        return True
