"""Crash recovery: every session leaves what a crash would lose in the user's data folder.

A running session keeps ``<data>/recovery/<session>/session.json`` up to date (its process, video,
project and last autosave). A session that has never been saved to a project autosaves into a
project folder beside it (``<data>/recovery/<session>/project``); a saved project autosaves into
itself. A clean exit deletes the session's folder, so a folder whose process is gone is what a
crash left: :func:`crashed_sessions` lists them, :func:`recover` reads one back.

The autosave schedule (:class:`AutosaveSchedule`) saves after each burst of edits (a few quiet
seconds), and at the latest a minute after the first unsaved edit while edits keep coming.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.annotation import Annotation
from app.core.errors import StudioError
from app.core.paths import data_dir
from app.core.project import MANIFEST, Project, ProjectError, process_alive
from dvis_models import atomic

SESSION = "session.json"
RECOVERY_PROJECT = "project"
QUIET_S = 3.0  # save once edits have paused this long
LONGEST_S = 60.0  # ... or this long after the first unsaved edit, even while edits keep coming


class RecoveryError(StudioError):
    """A crash-recovery copy cannot be written or read back."""


def recovery_root() -> Path:
    return data_dir() / "recovery"


class AutosaveSchedule:
    """When to autosave: after a quiet pause following edits, or when unsaved edits have waited too long."""

    def __init__(self, quiet_s: float = QUIET_S, longest_s: float = LONGEST_S):
        self.quiet_s, self.longest_s = quiet_s, longest_s
        self._first: float | None = None  # first edit not yet in a save
        self._last = 0.0

    def changed(self, now: float) -> None:
        if self._first is None:
            self._first = now
        self._last = now

    def due(self, now: float) -> bool:
        return self._first is not None and (now - self._last >= self.quiet_s or now - self._first >= self.longest_s)

    def started(self) -> None:
        """A save took a snapshot: edits from now on wait for the next one."""
        self._first = None

    def failed(self, now: float) -> None:
        """The save failed: its edits are unsaved again; try again after another quiet pause."""
        self._first = self._first if self._first is not None else now
        self._last = now


class RecoverySession:
    """This process's recovery folder: its ``session.json`` and, for unsaved work, its recovery project."""

    def __init__(self, root: Path | None = None):
        self.folder = (root or recovery_root()) / f"{os.getpid()}-{time.time_ns()}"
        self.project: Project | None = None  # the recovery copy of unsaved work
        self._info: dict = {"pid": os.getpid(), "hostname": socket.gethostname(), "started": time.time(),
                            "video": None, "project": None, "autosaved": None}

    @property
    def project_folder(self) -> Path:
        return self.folder / RECOVERY_PROJECT

    def track(self, video: Path | None, project: Path | None) -> None:
        """The window shows ``video`` (saved in ``project``, None for unsaved work); an earlier recovery copy is
        dropped."""
        self.drop_project()
        self._info.update(video=str(video) if video else None, project=str(project) if project else None,
                          autosaved=None)
        self._write()

    def autosaved(self, project: Path | None) -> None:
        """An autosave finished (into ``project``, or into the recovery copy when None)."""
        self._info.update(project=str(project) if project else None, autosaved=time.time())
        if project is not None:
            self.drop_project()  # saved into a real project: that is the recovery point now
        self._write()

    def create_project(self, video: Path, num_frames: int, height: int, width: int, categories) -> Project:
        """An empty recovery project for the video (its writes and fsyncs: call from a worker thread)."""
        try:
            return Project.create(self.project_folder, video, num_frames=num_frames, height=height, width=width,
                                  categories=categories)
        except ProjectError as error:
            raise RecoveryError(f"Cannot keep a recovery copy in {self.folder}: {error}") from None

    def drop_project(self) -> None:
        """Close and delete the recovery copy (the work was saved into a project, or is gone with its document)."""
        if self.project is not None:
            self.project.close()
            self.project = None
        shutil.rmtree(self.project_folder, ignore_errors=True)

    def discard(self) -> None:
        """A clean exit: nothing to recover."""
        self.drop_project()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic.write_json(self.folder / SESSION, self._info)
        except OSError as error:
            raise RecoveryError(f"Cannot write the crash-recovery notes in {self.folder}: "
                                f"{error.strerror or error}.") from None


@dataclass(frozen=True)
class CrashedSession:
    """What a session that did not exit cleanly left behind."""

    folder: Path
    started: float
    autosaved: float | None  # time of its last autosave (None: it never autosaved)
    video: Path | None
    project: Path | None  # the project it had open (autosaved into), or None for unsaved work

    @property
    def recovery_project(self) -> Path | None:
        """The autosaved copy of unsaved work, when there is one."""
        folder = self.folder / RECOVERY_PROJECT
        return folder if self.project is None and (folder / MANIFEST).is_file() else None

    @property
    def recoverable(self) -> bool:
        return self.autosaved is not None and (self.project is not None or self.recovery_project is not None)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.autosaved or self.started))
        what = f"the project {self.project}" if self.project is not None else "unsaved work"
        return f"{what} on {self.video.name if self.video else 'a video'} (last autosaved {when})"


def crashed_sessions(root: Path | None = None) -> list[CrashedSession]:
    """Sessions whose process is gone without a clean exit, newest first; folders with nothing to recover are
    removed."""
    root = root or recovery_root()
    found = []
    for folder in sorted(root.glob("*/")) if root.is_dir() else []:
        try:
            info = json.loads((folder / SESSION).read_text(encoding="utf-8"))
            pid, host = int(info["pid"]), str(info["hostname"])
            autosaved = float(info["autosaved"]) if info.get("autosaved") is not None else None
            session = CrashedSession(folder, float(info["started"]), autosaved,
                                     Path(info["video"]) if info.get("video") else None,
                                     Path(info["project"]) if info.get("project") else None)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written right now, or not ours
        if host != socket.gethostname() or pid == os.getpid() or process_alive(pid):
            continue  # running (this window or another), or on another machine sharing this folder: not ours to judge
        if session.recoverable:
            found.append(session)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return sorted(found, key=lambda s: s.autosaved or s.started, reverse=True)


def recover_unsaved(session: CrashedSession) -> Annotation:
    """The annotation autosaved from unsaved work, held in memory (the copy can then be discarded)."""
    if session.recovery_project is None:
        raise RecoveryError(f"{session.folder} holds no recovery copy of unsaved work.")
    with Project.open(session.recovery_project) as project:
        annotation = project.annotation
        annotation.mask_store.hold_all()  # read every frame before the copy goes away
        annotation.mask_store.set_loader(None)
    return annotation


def discard(session: CrashedSession) -> None:
    """Delete what a crashed session left (recovered, or the user chose to throw it away)."""
    shutil.rmtree(session.folder, ignore_errors=True)
