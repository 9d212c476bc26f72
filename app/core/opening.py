"""Opening a document as a job: a video file, an image folder, a project (and its video) or a VIPSeg video.

Opening a video file builds its frame index, which reads every packet (about 10 s for an hour of 1080p), so
an open is a job (``app.core.progress``): the GUI runs a large one on a worker and stays responsive, small ones
run in place with ``run_job``. A job first yields the video's ``FirstFrame`` (shown while the index builds),
then ``Progress`` while indexing, and returns an ``Opened`` document that nobody shows yet: the caller asks
about unsaved edits and hands it to ``Session.show``, or closes it. A job stopped midway (``Cancelled``) closes
what it had opened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.core.progress import Job, Progress, threaded

BACKGROUND_OPEN_BYTES = 64 * 1024**2  # smaller videos index in well under a second: opened in place
INDEX_STEPS = 1000  # progress units of indexing one video


@dataclass(frozen=True)
class FirstFrame:
    """The first frame of the video being opened, decoded before its index is built."""

    picture: np.ndarray


@dataclass(frozen=True)
class Opened:
    """A document read from disk and not shown yet: ``annotation`` None is an empty one for ``video``;
    ``video`` None is a project whose video is missing (locate it, then ``project_video``)."""

    path: Path  # what the user opened: the recent-files entry
    video: object | None  # app.core.video.VideoSource
    annotation: object | None = None  # app.core.annotation.Annotation
    project: object | None = None  # app.core.project.Project

    def close(self) -> None:
        """Release what was opened (a project closes its video and its lock) when it is not shown after all."""
        if self.project is not None:
            self.project.close()
        elif self.video is not None:
            self.video.close()


def in_background(path: Path, kind: str) -> bool:
    """Whether opening ``path`` (a ``jobs.kind_of`` kind) indexes enough video to be worth a worker thread.

    A project counts the video its manifest names (the size recorded when it was linked); a dataset's JSON
    can take a minute to parse, so VIPSeg imports always run in the background."""
    if kind == "vipseg":
        return True
    if kind == "project":
        return _recorded_video_bytes(path) >= BACKGROUND_OPEN_BYTES
    return path.is_file() and path.stat().st_size >= BACKGROUND_OPEN_BYTES


def _recorded_video_bytes(folder: Path) -> int:
    from app.core.project import MANIFEST

    try:
        size = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["video"]["size"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # a damaged manifest: opening it in place says what is wrong
    return size if isinstance(size, int) else 0


def open_video(path: Path) -> Job[Opened]:
    """A video file or an image folder, with an empty annotation."""
    from app.core.video import VideoSource

    video = yield from _indexed(path, lambda progress: VideoSource.open(path, progress=progress))
    return Opened(path, video)


def open_project(folder: Path) -> Job[Opened]:
    """A project and its video; the video is None when it is missing (it was moved or renamed)."""
    from app.core.project import Project

    yield Progress(0, None, f"Reading the project {folder.name}…")
    project = Project.open(folder)
    _warm(project.annotation)
    opened = Opened(folder, None, project.annotation, project)
    if not project.video_path.exists():
        return opened
    return (yield from project_video(opened))


def project_video(opened: Opened, moved: Path | None = None) -> Job[Opened]:
    """``opened`` with its project's video, first relinked to ``moved`` when given. A video still missing is
    the project's error saying how to relink it; the project is closed on any failure."""
    project = opened.project
    try:
        if moved is not None:
            project.relink_video(moved)
        video = yield from _indexed(project.check_video(), project.open_video)
    except BaseException:
        project.close()
        raise
    return replace(opened, video=video)


def import_vipseg(root: Path, categories, video) -> Job[Opened]:
    """One video of a VIPSeg dataset read by ``jobs.read_vipseg``: its images with its masks, for correction."""
    from app.core.jobs import import_vipseg_video

    source, annotation = yield from import_vipseg_video(categories, video)
    _warm(annotation)
    return Opened(root, source, annotation)


def _warm(annotation) -> None:
    """Work out which frames each track is in while nobody else has the annotation: the panels need it when it is
    shown (a few tens of ms for hundreds of tracks) and, done here, the UI thread finds it cached."""
    for track_id in annotation.tracks:
        annotation.presence(track_id)


def _indexed(path: Path, open_source: Callable[[Callable[[float], None]], object]) -> Job:
    """``open_source(progress)`` on a helper thread, after the first frame of ``path`` (a video file) was yielded;
    whatever it opened is closed again if the job is stopped before returning it."""
    from app.core.video import first_frame

    if path.is_file():
        picture = first_frame(path)
        if picture is not None:
            yield FirstFrame(picture)
    text = f"Opening {path.name}…"
    made: list = []

    def work(report: Callable[[object], None], cancelled: Callable[[], bool]) -> object:
        source = open_source(lambda fraction: report(Progress(round(INDEX_STEPS * fraction), INDEX_STEPS, text)))
        made.append(source)
        return source

    yield Progress(0, INDEX_STEPS, text)
    try:
        return (yield from threaded(work))
    except BaseException:
        for source in made:  # opened, but the job ended without handing it over
            source.close()
        raise
