"""Project folders: atomic writes, persistence round trip, autosave, lock, crash recovery with a
really killed subprocess, damaged files, moved videos."""

import errno
import gc
import json
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

from app.core import atomic
from app.core.annotation import Annotation, AnnotationError
from app.core.categories import vipseg_categories
from app.core.edits import AddTrack, MergeTracks, Paint, RelabelTrack, SplitTrack
from app.core.project import LOCK, MANIFEST, Project, ProjectError

PERSON, CAR, SKY = 60, 48, 28
F, H, W = 6, 16, 20


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
    Project.create(tmp_path / "project", video, annotation=make_annotation(), model={"preset": "r50_vipseg_online"}).close()
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
    project.apply(split)
    project.apply(RelabelTrack(2, 62, start=2))
    before_paint = project.annotation.track_at(4, 10, 10)
    project.apply(Paint(4, 3, "brush", [[10, 10]], 2))
    expected = state(project.annotation)
    project.save()
    project.close()
    with Project.open(tmp_path / "p") as reopened:
        assert_state(expected, state(reopened.annotation))
        assert [entry["label"] for entry in reopened.history()] == ["split track", "relabel track", "paint"]
        assert reopened.model == {"preset": "r50_vipseg_online"}
        assert reopened.video_ref["size"] == 3000 and reopened.video_path == video
        assert reopened.annotation.categories.to_json() == vipseg_categories().to_json()
        assert not reopened.dirty
        # undo from the saved history restores the state before the paint
        from app.core.edits import Edit

        reopened.annotation.apply(Edit.from_json(list(reopened.history())[-1]["inverse"]))
        assert reopened.annotation.track_at(4, 10, 10) == before_paint != 3


def test_autosave_writes_only_what_changed(project_dir):
    with Project.open(project_dir) as project:
        masks_before = sorted(os.listdir(project_dir / "masks"))
        assert masks_before == [f"{i:08d}.g1.png" for i in range(F)]
        assert project.autosave() is False  # nothing changed

        project.apply(MergeTracks(2, 1))  # table-only edit: no mask file is rewritten
        assert project.autosave() is True
        assert sorted(os.listdir(project_dir / "masks")) == masks_before
        assert {p.name for p in project_dir.glob("tables.g*.npz")} == {"tables.g2.npz"}  # old generation removed

        project.apply(Paint(4, 1, "brush", [[2, 2]], 1))
        assert project.autosave() is True
        masks_after = sorted(os.listdir(project_dir / "masks"))
        assert masks_after == sorted([f"{i:08d}.g1.png" for i in range(F) if i != 4] + ["00000004.g3.png"])


def test_save_as_copies_every_frame(project_dir, tmp_path, video):
    with Project.open(project_dir) as original:
        original.apply(Paint(2, 2, "brush", [[3, 3]], 2))
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
    project.apply(Paint(0, 1, "brush", [[15, 2]], 2))

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
    project.apply(Paint(0, 1, "brush", [[15, 2]], 2))
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
from app.core.edits import MergeTracks, Paint
from app.core.project import Project

folder, action, step, marker = sys.argv[1:5]
project = Project.open(folder)
project.apply(MergeTracks(2, 1))
project.apply(Paint(1, 1, "brush", [[5, 5]], 3))

def hook(name):
    if name != step:
        return
    if action == "exit":
        os._exit(3)
    Path(marker).write_text(name)  # tell the parent we are mid-save, then wait to be killed
    time.sleep(120)

project.save_hook = hook
project.save()
project.close()
"""


def run_child(project_dir: Path, action: str, step: str, tmp_path: Path) -> int:
    marker = tmp_path / "mid-save"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(project_dir), action, step, str(marker)], cwd=Path(__file__).resolve().parents[1])
    if action == "kill":
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the child exited before reaching the save step"
            assert time.monotonic() < deadline, "the child never reached the save step"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    return child.wait(timeout=60)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_during_save_reopens_to_the_last_good_state(project_dir, tmp_path):
    saved = state(make_annotation())
    assert run_child(project_dir, "kill", "tables", tmp_path) == -signal.SIGKILL
    assert list(project_dir.glob("tables.g2.npz")), "the killed save had written its new files"
    with Project.open(project_dir) as project:  # the dead child's lock is taken over
        assert_state(saved, state(project.annotation))
        assert project.generation == 1 and list(project.history()) == []
        assert not list(project_dir.glob("*.g2.*")) and not list((project_dir / "masks").glob("*.g2.png"))  # garbage gone
        project.apply(MergeTracks(2, 1))
        project.save()
    with Project.open(project_dir) as project:
        assert 2 not in project.annotation.tracks


@pytest.mark.parametrize("step", ["masks", "history"])
def test_process_dying_mid_save_leaves_the_last_good_state(project_dir, tmp_path, step):
    saved = state(make_annotation())
    assert run_child(project_dir, "exit", step, tmp_path) == 3
    with Project.open(project_dir) as project:
        assert_state(saved, state(project.annotation))
        assert list(project.history()) == []
        assert (project_dir / "history.jsonl").stat().st_size == 0  # the unvouched append was cut off


def test_completed_save_in_a_child_is_seen(project_dir, tmp_path):
    assert run_child(project_dir, "exit", "no-such-step", tmp_path) == 0
    with Project.open(project_dir) as project:
        assert 2 not in project.annotation.tracks and project.annotation.track_at(1, 5, 5) == 1
        assert [entry["label"] for entry in project.history()] == ["merge tracks", "paint"]


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
    with pytest.raises(ProjectError, match=r"project.json is damaged: entry 'tracks'"):
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


def test_missing_or_damaged_mask_file_is_named(project_dir):
    mask = project_dir / "masks" / "00000003.g1.png"
    data = mask.read_bytes()
    mask.unlink()
    with pytest.raises(ProjectError, match="00000003.g1.png"):
        Project.open(project_dir)
    mask.write_bytes(data[:40])
    with Project.open(project_dir) as project:
        with pytest.raises(AnnotationError, match="00000003.g1.png"):
            project.annotation.track_map(3)


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
            project.video
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
            project.video


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
        undo_add = project.apply(add)
        undo_paint = project.apply(Paint(0, add.track_id, "brush", [[10, 3]], 2))
        project.apply(undo_paint)
        project.apply(undo_add)
        expected = state(project.annotation)
        project.save()
    with Project.open(project_dir) as project:
        assert_state(expected, state(project.annotation))
