"""`dvis` end to end with the bundled model: infer on real encoded videos, eval, export, user errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from videos import make_video

from app.cli import main
from app.core.frame_range import format_frame_ranges
from app.core.jobs import evaluate_model
from app.core.progress import run_job
from app.core.video import VideoSource
from dvis_models.categories import vipseg_categories
from dvis_models.data.synthetic import generate_dataset
from dvis_models.resources import BUNDLED_CHECKPOINT

# Measured VPQ of the bundled model on this one held-out clip is in the README; the bar sits a bit below it.
HELD_OUT_VPQ_MIN = {"online": 0.40, "offline": 0.37}  # measured 0.478 / 0.443


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """One synthetic video the bundled model never saw: the generator's 'val' split (train used 'train')."""
    root = tmp_path_factory.mktemp("heldout")
    generate_dataset(root, num_videos=1, num_frames=8, size=(128, 160), seed=7, split="val")
    return root


def test_infer_writes_a_vipseg_folder_that_eval_reads(tmp_path, capsys):
    video = make_video(tmp_path / "street.mp4", num_frames=8, size=(160, 128))
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "infer", video, "--out", out, "--online")
    assert code == 0, stdout
    assert "warning" not in stderr
    data = json.loads((out / "panoptic_gt_VIPSeg_val.json").read_text())
    assert [v["video_id"] for v in data["videos"]] == ["street"]
    assert len(data["annotations"][0]["annotations"]) == 8
    assert len(list((out / "panomasksRGB" / "street").glob("*.png"))) == 8
    assert len(list((out / "images" / "street").glob("*.jpg"))) == 8
    code, stdout, _ = run(capsys, "eval", out, out)  # a prediction scored against itself
    assert code == 0 and "STQ" in stdout


def test_infer_names_the_frames_it_could_not_decode(tmp_path, capsys):
    """Random bytes in the middle of an H.264 mp4: the run completes, and says which frames were substituted."""
    video = make_video(tmp_path / "scratched.mp4", num_frames=12, size=(96, 64), gop=4)
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 300] = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    video.write_bytes(bytes(data))
    with VideoSource.open(video) as source:
        list(source.iter_frames())
        damaged = source.damaged_frames
    assert 0 < len(damaged) < 12
    code, stdout, stderr = run(capsys, "infer", video, "--out", tmp_path / "out", "--online", "--format", "pred")
    assert code == 0, stdout  # the results are complete; the warning says which frames are substitutes
    expected = f"{len(damaged)} of 12 frames could not be decoded (frames {format_frame_ranges(damaged)}, 0-based)"
    assert expected in stderr
    assert "1 video(s) had undecodable frames" in stderr and "scratched" in stderr.splitlines()[-1]


def test_offline_infer_shows_every_phase_from_the_start(tmp_path, capsys):
    video = make_video(tmp_path / "walk.mp4", num_frames=8, size=(160, 128))
    code, stdout, _ = run(capsys, "infer", video, "--out", tmp_path / "out", "--offline")
    assert code == 0, stdout
    progress = [line.strip() for line in stdout.splitlines() if line.startswith("  walk: ")]
    assert progress[0] == "walk: segmenting 0/8 frames"
    assert "walk: refining window 1/1" in progress
    phases = [line.split()[1] for line in progress]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == [
        "segmenting", "refining", "post-processing", "finished"]
    assert progress[-1] == "walk: finished 8/8 frames"


def test_infer_fast_runs_the_fast_cpu_mode(held_out, tmp_path, capsys):
    frames = held_out / "images" / "syn_val_0000"
    pred = tmp_path / "pred"
    code, stdout, _ = run(capsys, "infer", frames, "--out", pred, "--format", "pred", "--online", "--fast")
    assert code == 0 and "on cpu in fast mode" in stdout
    code, stdout, _ = run(capsys, "eval", pred, held_out, "--split", "val")
    vpq = float(re.search(r"^\s*mean\s+([\d.]+)", stdout, re.MULTILINE).group(1)) / 100
    assert code == 0 and vpq >= HELD_OUT_VPQ_MIN["online"]


def test_infer_on_an_image_folder_copies_its_jpegs(held_out, tmp_path, capsys):
    (folder,) = (held_out / "images").iterdir()
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "infer", folder, "--out", out, "--online")
    assert code == 0, stdout
    sources = sorted(folder.glob("*.jpg"))
    written = sorted((out / "images" / folder.name).glob("*.jpg"))
    assert [p.name for p in written] == [p.name for p in sources]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(sources, written))  # no re-encoding loss


def test_infer_shards_by_rank_and_resumes(tmp_path, capsys, monkeypatch):
    videos = [make_video(tmp_path / f"clip{i}.mp4", num_frames=4, size=(96, 64)) for i in range(2)]
    out = tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    code, stdout, _ = run(capsys, "infer", *videos, "--out", out, "--format", "pred")
    assert code == 0 and "clip1.mp4" in stdout and "clip0.mp4" not in stdout
    assert not (out / "pred.json").exists()  # rank 0 has not finished yet
    monkeypatch.setenv("RANK", "0")
    code, stdout, _ = run(capsys, "infer", *videos, "--out", out, "--format", "pred")
    assert code == 0 and "clip0.mp4" in stdout
    predicted = json.loads((out / "pred.json").read_text())
    assert sorted(v["video_id"] for v in predicted["annotations"]) == ["clip0", "clip1"]
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    code, stdout, _ = run(capsys, "infer", *videos, "--out", out, "--format", "pred")
    assert code == 0 and "skipping 2 video(s)" in stdout


def test_infer_runs_into_one_folder_merge_into_its_json(tmp_path, capsys):
    from app.core.annotation import Annotation
    from app.core.vipseg import export_vipseg
    from dvis_models.categories import CategoryTable

    clips = [make_video(tmp_path / f"clip{i}.mp4", num_frames=4, size=(96, 64)) for i in range(3)]
    out = tmp_path / "out"
    earlier = Annotation(2, 64, 96, vipseg_categories())
    run_job(export_vipseg([("clip0", earlier, None)], out, split="val"))  # an earlier clip0
    code, stdout, _ = run(capsys, "infer", clips[0], "--out", out, "--online")
    assert code == 0 and "(1 video; replaced the earlier version of 'clip0')" in stdout, stdout
    code, stdout, _ = run(capsys, "infer", clips[1], "--out", out, "--online")
    assert code == 0 and "(2 videos)" in stdout, stdout
    data = json.loads((out / "panoptic_gt_VIPSeg_val.json").read_text())
    assert [v["video_id"] for v in data["videos"]] == [a["video_id"] for a in data["annotations"]] == ["clip0", "clip1"]
    assert [len(v["images"]) for v in data["videos"]] == [4, 4]  # clip0 inferred (4 frames) replaced the 2-frame one

    for clip in clips[:2]:
        code, stdout, _ = run(capsys, "infer", clip, "--out", tmp_path / "pred", "--format", "pred", "--online")
        assert code == 0, stdout
    predicted = json.loads((tmp_path / "pred" / "pred.json").read_text())
    assert [a["video_id"] for a in predicted["annotations"]] == ["clip0", "clip1"]

    entries = vipseg_categories().to_json()
    entries[0] = dict(entries[0], name="renamed")
    other = tmp_path / "other"
    mine = Annotation(2, 64, 96, CategoryTable.from_json(entries))
    run_job(export_vipseg([("mine", mine, None)], other, split="val"))
    before = {p: p.read_bytes() if p.is_file() else None for p in other.rglob("*")}
    code, stdout, err = run(capsys, "infer", clips[2], "--out", other, "--online")
    assert code != 0 and "different category table" in err and "Traceback" not in err
    assert {p: p.read_bytes() if p.is_file() else None for p in other.rglob("*")} == before  # not even a folder added


def test_bundled_model_vpq_on_held_out_clip(held_out, tmp_path, capsys):
    """Through the CLI (image folder in, pred.json out, dvis eval) and through evaluate_model, both modes."""
    pred = tmp_path / "pred"
    frames = held_out / "images" / "syn_val_0000"
    code, _, _ = run(capsys, "infer", frames, "--out", pred, "--format", "pred", "--offline")
    assert code == 0
    code, stdout, _ = run(capsys, "eval", pred, held_out, "--split", "val")
    assert code == 0
    vpq_cli = float(re.search(r"^\s*mean\s+([\d.]+)", stdout, re.MULTILINE).group(1)) / 100
    from dvis_models import load_checkpoint

    model = load_checkpoint(BUNDLED_CHECKPOINT)
    for mode, offline in (("online", False), ("offline", True)):
        evaluation = run_job(evaluate_model(model, held_out, "val", offline=offline))
        assert evaluation.vpq.all >= HELD_OUT_VPQ_MIN[mode], (mode, evaluation.vpq.all)
        if offline:
            assert evaluation.vpq.all == pytest.approx(vpq_cli, abs=1e-4)


def test_export_project_masks_and_vipseg(tmp_path, capsys):
    from app.core.annotation import Annotation
    from app.core.project import Project

    video = make_video(tmp_path / "walk.mp4", num_frames=4, size=(64, 48))
    annotation = Annotation(4, 48, 64, vipseg_categories())
    person = annotation.add_track(vipseg_categories().by_name("person").id)
    for index in range(4):
        track_map = np.zeros((48, 64), np.int32)
        track_map[10:30, 5 + 5 * index : 25 + 5 * index] = person.id
        annotation.set_frame(index, track_map)
    project = Project.create(tmp_path / "project", video, annotation=annotation)
    project.save()
    # exporting reads the last saved state, also while the project is open (locked) in the GUI
    code, stdout, _ = run(capsys, "export", tmp_path / "project", "--out", tmp_path / "masks", "--format", "masks",
                          "--frames", "1-2")
    project.close()
    assert code == 0, stdout
    written = sorted((tmp_path / "masks" / f"track_{person.id:04d}_person").glob("*.png"))
    assert [p.name for p in written] == ["00000001.png", "00000002.png"]
    code, _, err = run(capsys, "export", tmp_path / "project", "--out", tmp_path / "cut", "--format", "cutouts",
                       "--tracks", "99")
    assert code == 1 and "no track [99]" in err
    code, _, err = run(capsys, "export", tmp_path / "project", "--out", tmp_path / "m2", "--format", "masks",
                       "--frames", "2-9")
    assert code == 1 and "outside the video" in err
    code, _, err = run(capsys, "export", tmp_path / "project", "--out", tmp_path / "d2", "--frames", "0-1")
    assert code == 1 and "whole videos" in err and not (tmp_path / "d2").exists()
    code, _, _ = run(capsys, "export", tmp_path / "project", "--out", tmp_path / "dataset")
    assert code == 0
    gt = json.loads((tmp_path / "dataset" / "panoptic_gt_VIPSeg_train.json").read_text())
    assert len(gt["annotations"][0]["annotations"]) == 4


def test_user_errors_print_a_message_and_exit_1(tmp_path, capsys):
    code, _, err = run(capsys, "infer", tmp_path / "missing.mp4", "--out", tmp_path / "out")
    assert code == 1 and err.startswith("error:") and "missing.mp4" in err
    code, _, err = run(capsys, "train", "tracker", "--data", tmp_path, "--out", tmp_path / "run")
    assert code == 1 and "--init" in err
    code, _, err = run(capsys, "infer", tmp_path / "x.mp4", "--out", tmp_path / "o",
                       "--checkpoint", tmp_path / "no.pth")
    assert code == 1 and "error:" in err
    code, _, err = run(capsys, "eval", tmp_path / "nothing", tmp_path / "nothing")
    assert code == 1 and err.startswith("error:")
