"""Session without Qt: the open document's lifetime, saving and "modified", the busy state, model runs."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.core import opening
from app.core.edits import MergeTracks, SetTrackLocked
from app.core.progress import run_job
from app.core.session import BUSY_INFERENCE, Session, UserActionError
from tests.test_project import logged
from tests.test_result_merger import CAR, PERSON, result
from tests.videos import make_video

FRAMES = 6


@dataclass(frozen=True)
class Request:
    """The run request fields a session reads (the GUI's request has more)."""

    model: str = "bundled"
    offline: bool = False
    short_edge: int | None = None
    start: int = 0
    stop: int | None = None
    keep_edited: bool = True
    fast: bool = False


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    make_video(path, num_frames=FRAMES, size=(40, 20))  # the size of test_result_merger's results
    return path


def run(session: Session, frames: range, request: Request = Request()) -> Request:
    """Feed a person and a car in `frames` through a run; returns the request the model would compute."""
    computed = session.begin_run(request)
    for index in frames:
        session.add_result(result(index - computed.start, [(7, PERSON, 2, 10), (9, CAR, 20, 30)]), computed.start)
    return computed


def test_opening_editing_saving_and_undo_past_the_save(clip, tmp_path):
    session = Session()
    loaded = []
    session.loaded.connect(lambda: loaded.append(session.video.path.name))
    assert session.open_video(clip) and loaded == ["clip.mp4"] and not session.modified
    run(session, range(FRAMES))
    session.finish_run(cancelled=False)
    assert session.modified and session.work_note().startswith("Your edits are still open")
    session.save_project(tmp_path / "project")
    assert not session.modified
    session.edit(MergeTracks(2, 1), "Merge 2 into 1")
    assert session.modified
    session.save_project()
    session.undo()
    assert session.modified and 2 in session.annotation.tracks  # undone past the save point
    session.redo()
    assert not session.modified
    session.undo()
    session.save_project()
    assert session.is_open_project(tmp_path / "project")
    session.release_project()  # reopening releases and takes the lock again
    assert session.show(run_job(opening.open_project(tmp_path / "project")))
    assert [entry["label"] for entry in logged(session.project)] == ["Merge 2 into 1", "Undo Merge 2 into 1",
                                                                      "Merge 2 into 1", "Undo Merge 2 into 1"]
    assert 2 in session.annotation.tracks and not session.modified and len(session.history) == 0


def test_a_refused_replacement_keeps_the_open_document(clip, tmp_path):
    session = Session()
    session.open_video(clip)
    run(session, range(2))
    session.finish_run(cancelled=False)
    other = tmp_path / "other.mp4"
    make_video(other, num_frames=3, size=(40, 20))
    closing = []
    session.closing.connect(lambda: closing.append(True))
    assert not session.open_video(other, confirm=lambda: False)
    assert session.video.path.name == "clip.mp4" and session.modified and not closing
    assert session.open_video(other, confirm=lambda: True)
    assert session.num_frames == 3 and not session.modified and closing == [True]


def test_busy_is_read_only_and_announced(clip):
    session = Session()
    session.open_video(clip)
    heard = []
    session.busy_changed.connect(heard.append)
    session.begin_job("Propagation")
    with pytest.raises(UserActionError, match="Propagation is running; edits are possible again"):
        session.edit(SetTrackLocked(1, True), "Lock")
    with pytest.raises(UserActionError, match="Propagation is still running"):
        session.begin_job("Export")
    run(session, range(1))  # a VIPSeg import may read while DVIS runs: the run is what edits wait for
    session.end_job()
    assert session.busy == BUSY_INFERENCE
    session.finish_run(cancelled=False)
    assert heard == ["Propagation is running", BUSY_INFERENCE, None] and session.busy is None
    with pytest.raises(AttributeError):
        session.busy = None


def test_a_cancelled_run_is_one_undo_step_and_the_next_run_resumes(clip):
    session = Session()
    session.open_video(clip)
    run(session, range(3))
    end = session.finish_run(cancelled=True)
    assert (end.frames, end.resume_at, session.resume_at) == ([0, 1, 2], 3, 3)
    assert session.history.undo_text == "Run DVIS on frames 0-2" and session.busy is None
    computed = run(session, range(2, FRAMES), Request(start=3))  # frame 2 is computed again to carry the ids over
    assert computed.start == 2 and session.resume_at is None
    end = session.finish_run(cancelled=False)
    assert end.frames == [3, 4, 5] and len(session.annotation.tracks) == 2  # the same person and car
    assert session.annotation.track_frames(1) == list(range(FRAMES))
    session.undo()
    assert not session.annotation.frame_track_ids(3) and session.annotation.frame_track_ids(2)
    session.undo()
    assert not session.annotation.tracks


def test_a_failed_or_abandoned_run_ends_the_busy_state(clip):
    session = Session()
    session.open_video(clip)
    run(session, range(2))
    assert session.fail_run() == [0, 1] and session.busy is None and session.history.can_undo
    run(session, range(2, 4))
    session.abandon_work()  # stopped without reporting back (the window closes)
    assert session.busy is None and session.run is None
    assert session.finish_run(cancelled=True).frames == []  # its late end changes nothing
    session.add_result(result(5, [(7, PERSON, 2, 10)]), 0)  # a late result of the stopped run is dropped
    assert not session.annotation.frame_track_ids(5)


def test_diagnostics_of_a_changed_annotation_are_stale(clip):
    session = Session()
    session.open_video(clip)
    run(session, range(FRAMES))
    session.finish_run(cancelled=False)
    session.begin_diagnostics()
    assert session.set_diagnostics(["marker"]) and session.diagnostics == ["marker"]
    session.begin_diagnostics()
    session.edit(MergeTracks(2, 1), "Merge")
    assert session.diagnostics_stale and not session.set_diagnostics([])
    assert session.diagnostics == ["marker"]
    session.open_video(clip)
    assert session.diagnostics == [] and session.diagnostics_stale


def test_the_session_imports_no_qt():
    code = ("import sys, app.core.session, app.core.history; "
            "sys.exit(any(name.startswith(('PySide6', 'shiboken6')) for name in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1]).returncode == 0


def test_the_model_info_is_what_the_run_used(clip, tmp_path):
    session = Session()
    session.open_video(clip)
    session.save_project(tmp_path / "project")
    run(session, range(2), Request(model="preset:r50_vipseg_online", offline=True, short_edge=360, stop=2, fast=True))
    session.finish_run(cancelled=False)
    assert session.project.model == {"model": "preset:r50_vipseg_online", "offline": True, "short_edge": 360,
                                     "frames": [0, 2], "fast": True}
    assert np.count_nonzero(session.annotation.track_map(1)) > 0


def test_a_project_repaired_on_opening_is_modified(clip, tmp_path):
    """Orphaned frame marks (a hand-edited or old project) are dropped on opening: the document needs a save."""
    import json

    def saved_marks(folder: Path) -> dict:
        tracks = json.loads((folder / "project.json").read_text())["annotation"]["tracks"]
        return json.loads((folder / tracks).read_text())["marks"]

    session = Session()
    session.open_video(clip)
    run(session, range(FRAMES))
    session.finish_run(cancelled=False)
    folder = session.save_project(tmp_path / "project")
    session.release_project()
    assert session.show(run_job(opening.open_project(folder))) and not session.modified
    session.release_project()
    tracks = folder / json.loads((folder / "project.json").read_text())["annotation"]["tracks"]
    tracks.write_text(json.dumps({**json.loads(tracks.read_text()), "marks": {"99": [[1, "key"]]}}))
    assert session.show(run_job(opening.open_project(folder)))
    assert session.modified and session.annotation.marks.of(99) == {}
    session.save_project()
    assert not session.modified and saved_marks(folder) == {}
