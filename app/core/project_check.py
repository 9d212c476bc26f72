"""Check a project folder thoroughly and repair what can be repaired (``dvis project check|repair``).

Opening a project already works around damage (see :mod:`app.core.project`) but reads only the
mask files' headers; a check decodes every frame, so it also finds masks whose pixels are cut off
or disagree with the frame tables. A repair keeps everything intact and makes the rest consistent:
lost frames become empty (their tracks stay where other frames have them), a damaged manifest is
rewritten from the previous save, a lost edit history starts empty.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from app.core.project import Project, ProjectError


def _read_every_frame(project: Project) -> None:
    """Decode every frame: frames that cannot be read join ``annotation.damaged_frames``."""
    store = project.annotation.mask_store
    for index in range(project.annotation.num_frames):
        store.get(index)
    store.clear_cache()


def _problems(project: Project) -> list[str]:
    _read_every_frame(project)
    problems = project.problems
    try:
        project.check_video()
    except ProjectError as error:
        problems.append(str(error))
    return problems


def check_project(folder: str | os.PathLike) -> list[str]:
    """The problems of the project at ``folder``, in words; empty when it is healthy.

    Reads without taking the lock, so a project open in the app can be checked. A project that
    cannot be opened at all raises ProjectError.
    """
    with Project.open(Path(folder), read_only=True) as project:
        return _problems(project)


def repair_project(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Repair the project at ``folder`` and save it; returns (problems found, problems left).

    What is left needs the user (e.g. a moved video: relink it). Takes the project's lock, so the
    project must not be open in the app.
    """
    with Project.open(Path(folder)) as project:
        found = _problems(project)
        annotation = project.annotation
        for index in sorted(annotation.damaged_frames):
            annotation.set_frame(index, np.zeros((annotation.height, annotation.width), np.int32))
        project.save()  # a fresh manifest (and a fresh fallback) naming only intact files
    return found, check_project(folder)
