"""`dvis infer` takes every option of the app's Run dialog: model source, preset, mode, resolution, frame range,
score threshold, chunk size, threads, device. Real PyAV videos in, real VIPSeg folders out."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from videos import make_video, read_index

from app.cli import main

SMALL = ["--online", "--short-edge", "48"]  # a small resolution keeps each run quick


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=6, size=(96, 64))


def frames_of(out, video_id: str = "clip") -> list[dict]:
    """The ground-truth JSON's annotation entries of one video."""
    data = json.loads((out / "panoptic_gt_VIPSeg_val.json").read_text())
    (entry,) = [a for a in data["annotations"] if a["video_id"] == video_id]
    return entry["annotations"]


def masks_of(out, video_id: str = "clip") -> dict[str, np.ndarray]:
    return {p.stem: cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            for p in sorted((out / "panomasksRGB" / video_id).glob("*.png"))}


def test_frame_range_resolution_device_and_threads(clip, tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        code, stdout, _ = run(capsys, "infer", clip, "--out", tmp_path / "out", *SMALL, "--start", 2, "--stop", 5,
                              "--device", "cpu", "--threads", 1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert code == 0 and "on cpu, frames resized to short edge 48 (long edge at most 89)" in stdout, stdout  # 720:1333
    stems = ["00000002", "00000003", "00000004"]  # named as in the whole video
    assert [frame["image_id"] for frame in frames_of(tmp_path / "out")] == stems
    assert list(masks_of(tmp_path / "out")) == stems
    images = sorted((tmp_path / "out" / "images" / "clip").glob("*.jpg"))
    assert [p.stem for p in images] == stems
    assert [read_index(cv2.imread(str(p))[..., ::-1]) for p in images] == [2, 3, 4]  # the pixels of those frames


def test_score_threshold_and_chunk_size(clip, tmp_path, capsys):
    assert run(capsys, "infer", clip, "--out", tmp_path / "default", *SMALL, "--stop", 3)[0] == 0
    default = frames_of(tmp_path / "default")
    assert any(frame["segments_info"] for frame in default)
    code, _, _ = run(capsys, "infer", clip, "--out", tmp_path / "none", *SMALL, "--stop", 3, "--score-threshold", 1.0)
    assert code == 0 and not any(frame["segments_info"] for frame in frames_of(tmp_path / "none"))
    assert all(not mask.any() for mask in masks_of(tmp_path / "none").values())  # no object reaches score 1
    # Online, the chunk is the post-processing unit (classes are decided per unit, as the official long-video demo):
    # 16 (the default) equals the default run, 1 does not.
    for chunk_size in (16, 1):
        out = tmp_path / f"chunk{chunk_size}"
        assert run(capsys, "infer", clip, "--out", out, *SMALL, "--stop", 3, "--chunk-size", chunk_size)[0] == 0
        chunked, whole = masks_of(out), masks_of(tmp_path / "default")
        assert list(chunked) == list(whole)
        same = all(np.array_equal(chunked[stem], whole[stem]) for stem in whole)
        assert same == (chunk_size == 16), chunk_size


def test_preset_by_option_or_by_source_string(clip, tmp_path, capsys):
    code, stdout, _ = run(capsys, "infer", clip, "--out", tmp_path / "a", *SMALL, "--stop", 2,
                          "--preset", "bundled_small")
    assert code == 0 and stdout.startswith("model bundled_small (online)"), stdout
    code, _, _ = run(capsys, "infer", clip, "--out", tmp_path / "b", *SMALL, "--stop", 2,
                     "--model", "preset:bundled_small")
    assert code == 0
    a, b = masks_of(tmp_path / "a"), masks_of(tmp_path / "b")
    assert list(a) == list(b) == ["00000000", "00000001"]
    assert all(np.array_equal(a[stem], b[stem]) for stem in a)  # the same seeded fresh weights


def test_bad_choices_are_user_errors(clip, tmp_path, capsys):
    code, _, err = run(capsys, "infer", clip, "--out", tmp_path / "out", *SMALL, "--start", 6)
    assert code == 1 and "frames 0-5" in err and "--start 6" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "panoptic_gt_VIPSeg_val.json").exists()
    code, _, err = run(capsys, "infer", clip, "--out", tmp_path / "out", "--model", "preset:nope")
    assert code == 1 and "Unknown model preset 'nope'" in err
    with pytest.raises(SystemExit) as exit_:
        main(["infer", str(clip), "--out", str(tmp_path / "out"), "--preset", "nope"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
