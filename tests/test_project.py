"""Project folders: atomic writes, persistence round trip, autosave, lock, crash recovery with a
really killed subprocess, damaged files, moved videos."""

import errno
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.annotation import Annotation
from app.core.edits import AddTrack, Edit, MarkFrames, MergeTracks, Paint, RelabelTrack, SplitTrack
from app.core.history import EditHistory
from app.core.keyframes import KEY, PROPAGATED
from app.core.progress import run_job
from app.core.project import LOCK, MANIFEST, Project, ProjectChangedError, ProjectError
from dvis_models import atomic
from dvis_models.categories import vipseg_categories

PERSON, CAR, SKY = 60, 48, 28
F, H, W = 6, 16, 20


def edit(project: Project, op: Edit) -> Edit:
    """Apply `op` the way the app does, as a step of an edit history the project logs; returns its inverse."""
    history = EditHistory(project.annotation)
    history.applied.connect(project.record)
    try:
        return history.do(op, "")  # no label: the project logs the edit's own description
    finally:
        history.reset(None)


def logged(project: Project) -> list[dict]:
    """The edit log of a project as opened (opening cuts off entries no finished save vouches for)."""
    lines = (project.folder / "history.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def make_annotation() -> Annotation:
    annotation = Annotation(F, H, W, vipseg_categories())
    for category in (PERSON, CAR, SKY):
        annotation.add_track(category, provenance="model")
    for index in range(F):
        frame = np.zeros((H, W), np.int32)
        frame[:4] = 3
        frame[6:12, index : index + 5] = 1
        frame[8:14, 12:18] = 2
        annotation.set_frame(index, frame)
    return annotation


def state(annotation: Annotation) -> dict:
    return {
        "maps": np.stack([annotation.track_map(i) for i in range(annotation.num_frames)]),
        "tracks": dict(annotation.tracks),
        "frames": {t: annotation.track_frames(t) for t in annotation.tracks},
        "next": annotation.next_track_id,
    }


def assert_state(a: dict, b: dict) -> None:
    np.testing.assert_array_equal(a["maps"], b["maps"])
    assert a["tracks"] == b["tracks"] and a["frames"] == b["frames"] and a["next"] == b["next"]


@pytest.fixture
def video(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(3000))  # only its bytes matter for the reference (size + hash)
    return path


@pytest.fixture
def project_dir(tmp_path, video) -> Path:
    """A saved, closed project holding make_annotation()."""
    Project.create(tmp_path / "project", video, annotation=make_annotation(),
                   model={"preset": "r50_vipseg_online"}).close()
    return tmp_path / "project"


# ---------------------------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "data.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["data.json"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "data.json"
    atomic.write_json(target, {"version": 1})

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic.write_json(target, {"version": 2})
    assert json.loads(target.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["data.json"]


def test_atomic_png_is_rgb_and_npy_loads_without_pickle(tmp_path):
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 200  # red
    atomic.write_png(tmp_path / "red.png", image)
    assert tuple(cv2.imread(str(tmp_path / "red.png"))[0, 0]) == (0, 0, 200)  # OpenCV reads BGR
    atomic.write_npy(tmp_path / "a.npy", np.arange(5))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy", allow_pickle=False), np.arange(5))


# ---------------------------------------------------------------------------------- round trip / autosave


def test_round_trip_keeps_annotation_history_model_and_video(tmp_path, video):
    project = Project.create(tmp_path / "p", video, annotation=make_annotation(), model={"preset": "r50_vipseg_online"})
    split = SplitTrack(1, 3)
    edit(project, split)
    edit(project, RelabelTrack(2, 62, start=2))
    before_paint = project.annotation.track_at(4, 10, 10)
    edit(project, Paint(4, 3, "brush", [[10, 10]], 2))
    expected = state(project.annotation)
    project.save()
    project.close()
    with Project.open(tmp_path / "p") as reopened:
        assert_state(expected, state(reopened.annotation))
        assert [entry["label"] for entry in logged(reopened)] == ["split track", "relabel track", "paint"]
        assert reopened.model == {"preset": "r50_vipseg_online"}
        assert reopened.video_ref["size"] == 3000 and reopened.video_path == video
        assert reopened.annotation.categories.to_json() == vipseg_categories().to_json()
        assert not reopened.dirty
        # undo from the saved history restores the state before the paint
        reopened.annotation.apply(Edit.from_json(logged(reopened)[-1]["inverse"]))
        assert reopened.annotation.track_at(4, 10, 10) == before_paint != 3


def test_save_writes_only_what_changed(project_dir):
    with Project.open(project_dir) as project:
        masks_before = sorted(os.listdir(project_dir / "masks"))
        assert masks_before == [f"{i:08d}.g1.png" for i in range(F)]
        assert not project.dirty  # nothing changed

        edit(project, MergeTracks(2, 1))  # table-only edit: no mask file is rewritten
        assert project.dirty
        project.save()
        assert sorted(os.listdir(project_dir / "masks")) == masks_before
        # the previous generation stays as the fallback (project.prev.json names it)
        assert {p.name for p in project_dir.glob("tables.g*.npz")} == {"tables.g1.npz", "tables.g2.npz"}
        assert json.loads((project_dir / "project.prev.json").read_text())["generation"] == 1

        edit(project, Paint(4, 1, "brush", [[2, 2]], 1))
        assert project.dirty
        project.save()
        masks_after = sorted(os.listdir(project_dir / "masks"))
        assert masks_after == sorted([f"{i:08d}.g1.png" for i in range(F)] + ["00000004.g3.png"])
        # g1 is superseded
        assert {p.name for p in project_dir.glob("tables.g*.npz")} == {"tables.g2.npz", "tables.g3.npz"}

        edit(project, Paint(4, 1, "brush", [[3, 3]], 1))
        edit(project, MergeTracks(3, 1))
        project.save()  # g4 rewrites frame 4 again: g1's frame 4 is named by nobody now
        assert sorted(os.listdir(project_dir / "masks")) == sorted(
            [f"{i:08d}.g1.png" for i in range(F) if i != 4] + ["00000004.g3.png", "00000004.g4.png"])


def test_save_as_copies_every_frame(project_dir, tmp_path, video):
    with Project.open(project_dir) as original:
        edit(original, Paint(2, 2, "brush", [[3, 3]], 2))
        expected = state(original.annotation)
        Project.create(tmp_path / "copy", video, annotation=original.annotation).close()
    with Project.open(tmp_path / "copy") as copy:
        assert_state(expected, state(copy.annotation))
        assert len(os.listdir(tmp_path / "copy" / "masks")) == F


def test_create_refuses_existing_or_non_empty_folders(tmp_path, video, project_dir):
    with pytest.raises(ProjectError, match="already a DVIS Studio project"):
        Project.create(project_dir, video, annotation=make_annotation())
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not empty"):
        Project.create(tmp_path / "busy", video, annotation=make_annotation())


def test_create_reads_sizes_from_a_real_video(tmp_path):
    from tests.videos import make_video

    clip = make_video(tmp_path / "real.mp4", num_frames=5, size=(64, 48))
    with Project.create(tmp_path / "p", clip) as project:
        assert (project.annotation.num_frames, project.annotation.height, project.annotation.width) == (5, 48, 64)
        assert project.video_ref["num_frames"] == 5 and project.video_ref["fps"] == pytest.approx(25)
        assert project.video.num_frames == 5 and project.video.frame(4).shape == (48, 64, 3)


def test_failed_save_keeps_last_saved_state_and_stays_dirty(project_dir, monkeypatch):
    saved = state(make_annotation())
    project = Project.open(project_dir)
    edit(project, Paint(0, 1, "brush", [[15, 2]], 2))

    def full_disk(files, workers=8):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "write_new_files", full_disk)
    with pytest.raises(ProjectError, match="No space left on device.*Free disk space"):
        project.save()
    assert project.dirty
    monkeypatch.undo()
    edited = state(project.annotation)
    project.close()
    with Project.open(project_dir) as reopened:
        assert_state(saved, state(reopened.annotation))
    project = Project.open(project_dir)  # the edit is gone from disk; redo it and the save now works
    edit(project, Paint(0, 1, "brush", [[15, 2]], 2))
    project.save()
    project.close()
    with Project.open(project_dir) as reopened:
        assert_state(edited, state(reopened.annotation))


# ---------------------------------------------------------------------------------- lock


def test_second_open_is_refused_until_closed(project_dir):
    first = Project.open(project_dir)
    with pytest.raises(ProjectError, match=rf"open in another DVIS Studio \(process {os.getpid()} on"):
        Project.open(project_dir)
    first.close()
    assert not (project_dir / LOCK).exists()
    Project.open(project_dir).close()


def test_stale_lock_of_a_dead_process_is_taken_over(project_dir):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (project_dir / LOCK).write_text(json.dumps({"pid": dead.pid, "hostname": socket.gethostname(), "created": 0}))
    with Project.open(project_dir):
        assert json.loads((project_dir / LOCK).read_text())["pid"] == os.getpid()


def test_lock_of_another_machine_is_respected(project_dir):
    (project_dir / LOCK).write_text(json.dumps({"pid": 1234, "hostname": "other-machine", "created": 0}))
    with pytest.raises(ProjectError, match=rf"process 1234 on other-machine.*delete {LOCK}|delete .*{LOCK}"):
        Project.open(project_dir)


def test_read_only_open_works_beside_an_editor(project_dir):
    with Project.open(project_dir) as editor:
        with Project.open(project_dir, read_only=True) as reader:
            assert_state(state(editor.annotation), state(reader.annotation))
            reader.annotation.apply(MergeTracks(2, 1))
            with pytest.raises(ProjectError, match="read-only"):
                reader.save()
        assert (project_dir / LOCK).exists()  # closing the reader leaves the editor's lock alone


def test_lock_without_hard_links_falls_back_to_exclusive_create(project_dir, monkeypatch):
    def no_links(*args):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with Project.open(project_dir):
        assert json.loads((project_dir / LOCK).read_text())["pid"] == os.getpid()
        with pytest.raises(ProjectError, match="open in another"):
            Project.open(project_dir)


def test_unreadable_lock_is_replaced(project_dir):
    (project_dir / LOCK).write_text("")  # we always write a lock whole, so this one is not a live instance's
    Project.open(project_dir).close()


def test_project_dropped_without_close_releases_its_lock(project_dir):
    project = Project.open(project_dir)
    del project
    gc.collect()
    Project.open(project_dir).close()


# ---------------------------------------------------------------------------------- crash recovery

CHILD = """
import os, sys, time
from pathlib import Path
from dvis_models import atomic
from app.core.edits import MergeTracks, Paint
from app.core.project import Project
from tests.test_project import edit

folder, action, step, marker = sys.argv[1:5]
project = Project.open(folder)
edit(project, MergeTracks(2, 1))
edit(project, Paint(1, 1, "brush", [[5, 5]], 3))

def hook(name):
    if name != step:
        return
    if action == "exit":
        os._exit(3)
    Path(marker).write_text(name)  # tell the parent we are mid-save, then wait to be killed
    time.sleep(120)

def then(name, function):
    def step_done(*args, **kwargs):
        result = function(*args, **kwargs)
        hook(name)
        return result
    return step_done

def first(name, function):
    def step_next(*args, **kwargs):
        hook(name)
        return function(*args, **kwargs)
    return step_next

# A save writes the masks, then the tables, then appends the history, then the manifest: stop between them.
atomic.write_new_files = then("masks", atomic.write_new_files)
Project._append_history = first("tables", then("history", Project._append_history))
project.save()
project.close()
"""


def kill_at_marker(child: subprocess.Popen, marker: Path, timeout: float, step: str) -> None:
    """SIGKILL `child` as soon as it writes `marker` (it reached `step`); fails if it exits or times out first."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert child.poll() is None, f"the child exited before {step}"
        assert time.monotonic() < deadline, f"the child never reached {step}"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)


def run_child(project_dir: Path, action: str, step: str, tmp_path: Path) -> int:
    marker = tmp_path / "mid-save"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(project_dir), action, step, str(marker)],
                             cwd=Path(__file__).resolve().parents[1])
    if action == "kill":
        kill_at_marker(child, marker, 60, "the save step")
    return child.wait(timeout=60)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_during_save_reopens_to_the_last_good_state(project_dir, tmp_path):
    saved = state(make_annotation())
    assert run_child(project_dir, "kill", "tables", tmp_path) == -signal.SIGKILL
    assert list(project_dir.glob("tables.g2.npz")), "the killed save had written its new files"
    with Project.open(project_dir) as project:  # the dead child's lock is taken over
        assert_state(saved, state(project.annotation))
        assert project.generation == 1 and list(logged(project)) == []
        # the garbage is gone
        assert not list(project_dir.glob("*.g2.*")) and not list((project_dir / "masks").glob("*.g2.png"))
        edit(project, MergeTracks(2, 1))
        project.save()
    with Project.open(project_dir) as project:
        assert 2 not in project.annotation.tracks


@pytest.mark.parametrize("step", ["masks", "history"])
def test_process_dying_mid_save_leaves_the_last_good_state(project_dir, tmp_path, step):
    saved = state(make_annotation())
    assert run_child(project_dir, "exit", step, tmp_path) == 3
    with Project.open(project_dir) as project:
        assert_state(saved, state(project.annotation))
        assert list(logged(project)) == []
        assert (project_dir / "history.jsonl").stat().st_size == 0  # the unvouched append was cut off


def test_completed_save_in_a_child_is_seen(project_dir, tmp_path):
    assert run_child(project_dir, "exit", "no-such-step", tmp_path) == 0
    with Project.open(project_dir) as project:
        assert 2 not in project.annotation.tracks and project.annotation.track_at(1, 5, 5) == 1
        assert [entry["label"] for entry in logged(project)] == ["merge tracks", "paint"]


# ---------------------------------------------------------------------------------- damaged files


def test_damaged_manifest_names_the_file(project_dir):
    (project_dir / MANIFEST).write_text("{ not json")
    with pytest.raises(ProjectError, match=rf"{MANIFEST} is damaged"):
        Project.open(project_dir)
    assert not (project_dir / LOCK).exists()  # a failed open does not leave the project locked


def test_manifest_missing_an_entry_names_it(project_dir):
    manifest = json.loads((project_dir / MANIFEST).read_text())
    del manifest["annotation"]["tracks"]
    (project_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ProjectError, match=r"project.json is damaged: entry 'annotation.tracks' is missing"):
        Project.open(project_dir)


def test_damaged_tables_and_tracks_name_the_file(project_dir):
    tables = next(project_dir.glob("tables.g*.npz"))
    original = tables.read_bytes()
    tables.write_bytes(original[: len(original) // 2])
    with pytest.raises(ProjectError, match=rf"{tables.name} is damaged"):
        Project.open(project_dir)
    tables.write_bytes(original)
    tracks = next(project_dir.glob("tracks.g*.json"))
    tracks.write_text("[1, 2")
    with pytest.raises(ProjectError, match=rf"{tracks.name} is damaged"):
        Project.open(project_dir)


def add_orphaned_marks(project_dir: Path) -> Path:
    """Give track 1 two keyframe marks, save, then hand-edit the saved track table: marks of a track that does not
    exist (99) and of frames outside the video (-1, F + 3), as older versions could leave them. Returns the file."""
    with Project.open(project_dir) as project:
        edit(project, MarkFrames(1, [[0, "key"], [2, "propagated"]]))
        project.save()
    tracks = project_dir / json.loads((project_dir / MANIFEST).read_text())["annotation"]["tracks"]
    data = json.loads(tracks.read_text())
    data["marks"] = {"1": [[-1, "key"], [0, "key"], [2, "propagated"], [F + 3, "key"]], "99": [[1, "key"]]}
    tracks.write_text(json.dumps(data))
    return tracks


def test_orphaned_frame_marks_are_dropped_on_opening_and_the_next_save_removes_them(project_dir, caplog):
    tracks = add_orphaned_marks(project_dir)
    with caplog.at_level(logging.WARNING, logger="app.core.annotation"), Project.open(project_dir) as project:
        assert project.annotation.marks.of(1) == {0: KEY, 2: PROPAGATED} and project.annotation.marks.of(99) == {}
        assert "dropped 3 frame mark(s)" in caplog.text and "(99, 1)" in caplog.text
        assert project.dirty  # the project on disk still holds them: it needs a save
        assert "99" in json.loads(tracks.read_text())["marks"]  # opening only reads
        project.save()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.core.annotation"), Project.open(project_dir) as project:
        assert not project.dirty and caplog.text == ""
        saved = json.loads((project_dir / json.loads((project_dir / MANIFEST).read_text())["annotation"]["tracks"])
                           .read_text())
        assert saved["marks"] == {"1": [[0, "key"], [2, "propagated"]]}


def test_a_project_without_orphaned_marks_opens_unmodified(project_dir, caplog):
    with Project.open(project_dir) as project:
        edit(project, MarkFrames(1, [[0, "key"]]))
        project.save()
    with caplog.at_level(logging.WARNING, logger="app.core.annotation"), Project.open(project_dir) as project:
        assert not project.dirty and project.annotation.marks.of(1) == {0: KEY} and caplog.text == ""


def test_lost_or_damaged_mask_files_mark_only_their_frames(project_dir):
    saved = state(make_annotation())
    masks = project_dir / "masks"
    (masks / "00000003.g1.png").unlink()
    (masks / "00000002.g1.png").write_bytes(b"")  # 0 bytes: OpenCV raised on this before
    body_cut = masks / "00000005.g1.png"
    body_cut.write_bytes(body_cut.read_bytes()[:80])  # header intact, pixels cut: found when the frame is read
    beyond = np.full((H, W), 200, np.uint8)  # slot values far past the frame's table
    (masks / "00000001.g1.png").write_bytes(atomic.png_bytes(beyond, rgb=False))
    with Project.open(project_dir) as project:
        annotation = project.annotation
        assert annotation.damaged_frames == {2, 3}  # seen at open from the files' headers
        assert any("frames 2, 3" in problem for problem in project.problems)
        maps = [annotation.track_map(i) for i in range(F)]
        assert annotation.damaged_frames == {1, 2, 3, 5}
        for index in (1, 2, 3, 5):
            assert not maps[index].any()  # shown empty
        for index in (0, 4):
            np.testing.assert_array_equal(maps[index], saved["maps"][index])
        annotation.set_frame(3, saved["maps"][3])  # written again (a re-run): whole again
        assert annotation.damaged_frames == {1, 2, 5}
        project.save()
    with Project.open(project_dir) as project:
        np.testing.assert_array_equal(project.annotation.track_map(3), saved["maps"][3])
        assert project.annotation.damaged_frames == {2}  # 1 and 5 are found again when read


def test_lost_history_only_loses_the_log(project_dir):
    with Project.open(project_dir) as project:
        edit(project, MergeTracks(2, 1))
        project.save()
    (project_dir / "history.jsonl").unlink()
    with Project.open(project_dir) as project:
        assert 2 not in project.annotation.tracks
        assert list(logged(project)) == []
        assert any("history" in problem and "missing" in problem for problem in project.problems)
        edit(project, MergeTracks(3, 1))
        project.save()
    with Project.open(project_dir) as project:
        assert [entry["label"] for entry in logged(project)] == ["merge tracks"] and project.problems == []


def test_cut_history_keeps_its_whole_entries(project_dir):
    with Project.open(project_dir) as project:
        edit(project, MergeTracks(2, 1))
        edit(project, Paint(1, 1, "brush", [[2, 2]], 1))
        project.save()
    history = project_dir / "history.jsonl"
    history.write_bytes(history.read_bytes()[:-20])  # the second entry is cut in the middle
    with Project.open(project_dir) as project:
        assert [entry["label"] for entry in logged(project)] == ["merge tracks"]
        assert any("shorter than saved" in problem for problem in project.problems)
        edit(project, MergeTracks(3, 1))
        project.save()
    with Project.open(project_dir) as project:
        assert [entry["label"] for entry in logged(project)] == ["merge tracks", "merge tracks"]
        assert project.problems == []


def _saved_twice(project_dir: Path) -> dict:
    """Save a second generation (the first becomes project.prev.json); returns the first generation's state."""
    first = state(make_annotation())
    with Project.open(project_dir) as project:
        edit(project, MergeTracks(2, 1))
        edit(project, Paint(4, 1, "brush", [[2, 2]], 2))
        project.save()
    return first


@pytest.mark.parametrize("damage", ["garbage", "zeroed", "truncated", "wrong types", "deleted", "tables lost"])
def test_damaged_manifest_falls_back_to_the_previous_save(project_dir, damage):
    first = _saved_twice(project_dir)
    manifest = project_dir / MANIFEST
    text = manifest.read_text()
    if damage == "garbage":
        manifest.write_bytes(os.urandom(len(text)))
    elif damage == "zeroed":
        manifest.write_bytes(bytes(len(text)))
    elif damage == "truncated":
        manifest.write_text(text[: len(text) // 2])
    elif damage == "wrong types":
        manifest.write_text(text.replace('"generation": 2', '"generation": "two"'))
    elif damage == "deleted":
        manifest.unlink()
    else:
        (project_dir / "tables.g2.npz").unlink()
    with Project.open(project_dir) as project:
        assert project.generation == 1
        assert_state(first, state(project.annotation))
        assert any("previous save" in problem for problem in project.problems)
        edit(project, SplitTrack(1, 3))
        project.save()
    with Project.open(project_dir) as project:
        assert project.problems == [] and project.generation == 2 and len(project.annotation.tracks) == 4


@pytest.mark.parametrize("content", ['{"format": "dvis-studio-project", "version": 1, "generation": -1}', "[1, 2]",
                                     "\u0000" * 40])
def test_damaged_manifest_without_a_backup_is_a_clear_error(project_dir, content):
    (project_dir / MANIFEST).write_text(content)
    with pytest.raises(ProjectError, match=rf"{MANIFEST} (is damaged|is not a DVIS Studio project file)"):
        Project.open(project_dir)
    assert not (project_dir / LOCK).exists()


def test_manifest_with_wrong_types_names_the_entry(project_dir):
    manifest = json.loads((project_dir / MANIFEST).read_text())
    manifest["video"]["num_frames"] = "6"
    manifest["annotation"]["tables"] = "../../elsewhere.npz"
    (project_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ProjectError, match=r"entry 'video.num_frames' is not a whole number \('6'\)"):
        Project.open(project_dir)


def test_full_disk_while_locking_leaves_no_lock(project_dir, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(ProjectError, match="Free some disk space"):
        Project.open(project_dir)
    monkeypatch.undo()
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError(errno.EPERM, "no hard links")))
    monkeypatch.setattr(os, "fsync", full)  # the exclusive-create fallback fills the disk on its write
    with pytest.raises(ProjectError, match="Free some disk space"):
        Project.open(project_dir)
    monkeypatch.undo()
    assert sorted(p.name for p in project_dir.iterdir() if "lock" in p.name) == []
    Project.open(project_dir).close()


def test_full_disk_during_save_as_leaves_nothing_and_a_retry_works(project_dir, tmp_path, video, monkeypatch):
    with Project.open(project_dir) as original:
        edit(original, Paint(2, 2, "brush", [[3, 3]], 2))
        expected = state(original.annotation)
        real = atomic.write_new_files

        def full(files, *args, **kwargs):
            files = list(files)
            real(files[:2])  # some masks made it before the disk filled up
            raise OSError(errno.ENOSPC, "No space left on device", str(files[2][0]))

        monkeypatch.setattr(atomic, "write_new_files", full)
        target = tmp_path / "copy"
        with pytest.raises(ProjectError) as failure:
            Project.create(target, video, annotation=original.annotation)
        assert "Nothing was written there" in str(failure.value) and "intact" not in str(failure.value)
        assert "No space left on device" in str(failure.value)
        assert not target.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")] == []
        monkeypatch.undo()
        original.save()  # the open project is unharmed by the failed "save as"
        target.mkdir()  # an empty folder made in the file dialog is fine
        Project.create(target, video, annotation=original.annotation).close()
    with Project.open(target) as copy:
        assert_state(expected, state(copy.annotation))
        assert copy.check_video() == video
    with Project.open(project_dir) as original:
        assert_state(expected, state(original.annotation))


def test_read_only_reader_beside_two_saves_is_told_to_try_again(project_dir):
    reader = Project.open(project_dir, read_only=True)
    with Project.open(project_dir) as writer:
        for step in range(2):  # two saves that rewrite every frame: generation 1's masks are gone
            for index in range(F):
                edit(writer, Paint(index, 1, "brush", [[2 + step, 2]], 1))
            writer.save()
    with pytest.raises(ProjectChangedError,
                       match="was saved by another DVIS Studio while it was being read.*try again"):
        reader.annotation.track_map(0)
    assert reader.annotation.damaged_frames == set()
    reader.close()


def test_newer_format_is_refused_with_advice(project_dir):
    manifest = json.loads((project_dir / MANIFEST).read_text())
    manifest["version"] = 99
    (project_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ProjectError, match="newer DVIS Studio"):
        Project.open(project_dir)


# ---------------------------------------------------------------------------------- moved video


def test_moved_video_error_and_relink(project_dir, video, tmp_path):
    moved = tmp_path / "elsewhere" / "clip.mp4"
    moved.parent.mkdir()
    video.rename(moved)
    with Project.open(project_dir) as project:
        with pytest.raises(ProjectError, match=rf"missing: {video}.*[Rr]elink"):
            project.check_video()
        with pytest.raises(ProjectError, match=rf"missing: {video}.*[Rr]elink"):
            _ = project.video
        impostor = tmp_path / "other.mp4"
        impostor.write_bytes(os.urandom(3000))
        with pytest.raises(ProjectError, match="is not this project's video"):
            project.relink_video(impostor)
        project.relink_video(moved)
        assert project.check_video() == moved
    with Project.open(project_dir) as project:
        assert project.check_video() == moved


def test_video_of_other_size_is_refused(tmp_path):
    from tests.videos import make_video

    clip = make_video(tmp_path / "real.mp4", num_frames=4, size=(64, 48))
    annotation = Annotation(7, 48, 64, vipseg_categories())
    with Project.create(tmp_path / "p", clip, annotation=annotation) as project:
        with pytest.raises(ProjectError, match="has 4 frames of 64x48, but this project annotates 7 frames"):
            _ = project.video


def test_project_and_video_moved_together_still_find_it(tmp_path, video):
    Project.create(tmp_path / "project", video, annotation=make_annotation()).close()
    (tmp_path / "moved").mkdir()
    (tmp_path / "project").rename(tmp_path / "moved" / "project")
    video.rename(tmp_path / "moved" / "clip.mp4")
    with Project.open(tmp_path / "moved" / "project") as project:
        assert project.check_video() == tmp_path / "moved" / "clip.mp4"


def test_reopens_after_undoing_a_painted_new_track(project_dir):
    """Undo leaves segment keys without pixels behind; they must not make the saved tables inconsistent."""
    with Project.open(project_dir) as project:
        add = AddTrack(62)
        undo_add = edit(project, add)
        undo_paint = edit(project, Paint(0, add.track_id, "brush", [[10, 3]], 2))
        edit(project, undo_paint)
        edit(project, undo_add)
        expected = state(project.annotation)
        project.save()
    with Project.open(project_dir) as project:
        assert_state(expected, state(project.annotation))


# ---------------------------------------------------------------------------------- check / repair / exports


def _damage(project_dir: Path) -> None:
    """Two saves (history logged), then: mask 3 lost, mask 5's pixels cut off, history deleted, project.json garbage."""
    _saved_twice(project_dir)
    masks = project_dir / "masks"
    (masks / "00000003.g1.png").unlink()
    cut = masks / "00000005.g1.png"
    cut.write_bytes(cut.read_bytes()[:80])
    (project_dir / "history.jsonl").unlink()
    (project_dir / MANIFEST).write_bytes(os.urandom(200))


def test_project_check_and_repair_commands(project_dir, capsys):
    from app.cli import main

    assert main(["project", "check", str(project_dir)]) == 0
    assert "healthy" in capsys.readouterr().out
    _damage(project_dir)
    assert main(["project", "check", str(project_dir)]) == 2
    out = capsys.readouterr().out
    assert "previous save" in out and "frames 3, 5" in out
    assert (project_dir / MANIFEST).read_bytes()[:1] != b"{"  # check changes nothing
    assert main(["project", "repair", str(project_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("repaired:") == 2 and "healthy" in out.splitlines()[-1]
    assert main(["project", "check", str(project_dir)]) == 0
    first = state(make_annotation())
    with Project.open(project_dir) as project:
        maps = [project.annotation.track_map(i) for i in range(F)]
        assert project.problems == [] and project.annotation.damaged_frames == set()
    for index in range(F):
        if index in (3, 5):
            assert not maps[index].any()  # lost frames are empty now, on purpose
        else:
            np.testing.assert_array_equal(maps[index], first["maps"][index])


def test_project_check_of_an_unopenable_folder_says_why(tmp_path, capsys):
    from app.cli import main

    (tmp_path / MANIFEST).write_text("garbage")
    assert main(["project", "check", str(tmp_path)]) == 1
    assert "project.json is damaged" in capsys.readouterr().err


def test_exports_leave_out_damaged_frames(project_dir, tmp_path):
    from app.core.exports import export_track_masks
    from app.core.vipseg import export_vipseg

    masks = project_dir / "masks"
    (masks / "00000003.g1.png").unlink()
    cut = masks / "00000005.g1.png"
    cut.write_bytes(cut.read_bytes()[:80])  # found only while exporting
    with Project.open(project_dir, read_only=True) as project:
        run_job(export_vipseg([("clip", project.annotation, None)], tmp_path / "vipseg"))
        gt = json.loads((tmp_path / "vipseg" / "panoptic_gt_VIPSeg_train.json").read_text())
        assert [image["id"] for image in gt["videos"][0]["images"]] == ["00000000", "00000001", "00000002", "00000004"]
        result = run_job(export_track_masks(project.annotation, [1], range(F), tmp_path / "masks"))
        folder, = (tmp_path / "masks").iterdir()  # the one track's folder
        assert sorted(p.name for p in folder.iterdir()) == [
            f"{i:08d}.png" for i in (0, 1, 2, 4)]
        assert result.frames == 4


def test_dvis_export_reads_again_after_a_concurrent_save(monkeypatch, capsys, tmp_path):
    import app.cli as cli

    calls = []

    def export_once(args):
        calls.append(args)
        if len(calls) == 1:
            raise ProjectChangedError("saved meanwhile")
        return 0

    monkeypatch.setattr(cli, "_export_once", export_once)
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert len(calls) == 2 and "saved meanwhile; exporting again" in capsys.readouterr().err
    monkeypatch.setattr(cli, "_export_once", lambda args: (_ for _ in ()).throw(ProjectChangedError("again")))
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "export again when the app is idle" in err and "backup" not in err


def test_read_only_open_beside_a_save_reads_the_new_state(project_dir, monkeypatch):
    import app.core.project as project_module

    real = project_module._read_annotation
    calls = []

    def racing(folder, manifest):
        calls.append(manifest["generation"])
        if len(calls) == 1:  # the app saves twice between our reading project.json and its tables
            with Project.open(project_dir) as writer:
                for _ in range(2):
                    edit(writer, Paint(0, 1, "brush", [[2, 2]], 1))
                    writer.save()
            raise ProjectError(f"{folder}/tables.g1.npz is missing; the project folder is incomplete. Restore it from "
                               "a backup.")
        return real(folder, manifest)

    monkeypatch.setattr(project_module, "_read_annotation", racing)
    with Project.open(project_dir, read_only=True) as reader:
        assert reader.generation == 3 and calls[-1] == 3 and reader.problems == []  # read again, no fallback


@pytest.fixture
def small_disk(tmp_path):
    """A real 512 KiB file system (tmpfs; needs root), to fill up for real."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` until about ``leave`` bytes are free; returns the filler file."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_really_full_disk_during_save_as_and_open(small_disk, video):
    noise = Annotation(F, 64, 64, vipseg_categories())  # frames that do not compress: they cannot fit
    rng = np.random.default_rng(0)
    ids = [noise.add_track(PERSON).id for _ in range(40)]
    for index in range(F):
        noise.set_frame(index, rng.choice([0, *ids], size=(64, 64)))
    filler = fill(small_disk, 48 * 1024)
    target = small_disk / "project"
    with pytest.raises(ProjectError, match="No space left on device.*Nothing was written there"):
        Project.create(target, video, annotation=noise)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no half-written folder
    filler.unlink()
    Project.create(target, video, annotation=noise).close()  # the retry works
    fill(small_disk, 0)
    with pytest.raises(ProjectError, match="Free some disk space"):
        Project.open(target)
    assert not (target / LOCK).exists()
