"""Checkpoints are not trusted: an unsafe torch, files that are not weights, stored configs that lie about
sizes, odd arrays and tensors are each a clear CheckpointError; NaN/Inf weights load with a warning."""

import logging
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from videos import make_video

from dvis_models import build_model, load_checkpoint, save_checkpoint
from dvis_models.checkpoint import FORMAT, init_segmenter_from, read_checkpoint
from dvis_models.errors import CheckpointError
from dvis_models.training.training_state import load_state
from dvis_models.weights_file import MIN_TORCH

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
MISLEADING = "Python objects"  # the diagnosis for a real pickle with code in it; wrong for everything below


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model("bundled_small")


@pytest.fixture(scope="module")
def own_file(small_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own") / "mine.pth"
    save_checkpoint(small_model, path)
    return path


def save_own(model, path: Path, config_changes: dict | None = None, state: dict | None = None) -> Path:
    config = {**model.config.to_dict(), **(config_changes or {})}
    torch.save({"format": FORMAT, "version": 1, "config": config, "state_dict": state or model.state_dict()}, path)
    return path


# ------------------------------------------------------------------------------------------ security floor


def test_pyproject_requires_a_torch_not_affected_by_cve_2025_32434():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_requirement = next(d for d in dependencies if d.replace(" ", "").startswith("torch>="))
    floor = tuple(int(part) for part in torch_requirement.split(">=")[1].split(",")[0].split(".")[:2])
    assert floor >= MIN_TORCH == (2, 6)


@pytest.mark.parametrize("version", ["2.5.1", "2.1.0+cu121", "1.13.1"])
def test_an_affected_torch_refuses_every_load_path(monkeypatch, own_file, tmp_path, version):
    (tmp_path / "init.pkl").write_bytes(pickle.dumps({"model": {"w": np.zeros(3, np.float32)}}))
    monkeypatch.setattr(torch, "__version__", version)
    for load in (read_checkpoint, load_checkpoint, load_state):  # model, CLI/GUI, training resume
        with pytest.raises(CheckpointError, match=f"torch {re.escape(version)}.*CVE-2025-32434.*torch>=2.6"):
            load(own_file)
    with pytest.raises(CheckpointError, match="CVE-2025-32434"):
        init_segmenter_from(build_model("bundled_small"), tmp_path / "init.pkl")


def test_a_fixed_torch_loads(monkeypatch, own_file):
    monkeypatch.setattr(torch, "__version__", "2.6.0")
    assert load_checkpoint(own_file).config.name == "bundled_small"


# ------------------------------------------------------------------------ files that are not weights at all

NOT_WEIGHTS = {
    "lfs": (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 10547587\n",
            "Git LFS pointer, not the weights: download the real file"),
    "html": (b"\n<!DOCTYPE html>\n<html lang='en'><head><title>Sign in</title></head><body>...</body></html>",
             "web page, not a checkpoint.*login/landing page"),
    "html_no_doctype": (b"<html><body>Redirecting</body></html>", "web page"),
    "json": (b'{"model": {"backbone.stem.conv1.weight": [1, 2, 3]}}', "JSON file, not a checkpoint"),
    "text": (b"This file has been removed by its owner.\n", "text file, not a checkpoint"),
    "empty": (b"", "empty \\(0 bytes\\)"),
}


@pytest.mark.parametrize("suffix", [".pth", ".pkl"])
@pytest.mark.parametrize("kind", NOT_WEIGHTS)
def test_files_that_are_not_weights_are_named_for_what_they_are(tmp_path, kind, suffix):
    content, expected = NOT_WEIGHTS[kind]
    path = tmp_path / f"model_final{suffix}"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected) as error:
        load_checkpoint(path)
    assert MISLEADING not in str(error.value) and "trust" not in str(error.value)


# ------------------------------------------------------------------------- stored configs that lie about sizes


@pytest.mark.parametrize("changes, named", [
    ({"hidden_dim": 10_000_000}, "hidden_dim=10000000"),
    ({"num_queries": 1_000_000_000}, "num_queries=1000000000"),
    ({"dec_layers": 100_000}, "dec_layers=100000"),
    ({"backbone_kwargs": {"channels": [24, 48, 96, 10**8], "blocks": [1, 1, 2, 1], "norm_groups": 8}},
     "backbone_kwargs.channels=100000000"),
])
def test_absurd_stored_sizes_are_refused_before_allocating(small_model, tmp_path, changes, named):
    path = save_own(small_model, tmp_path / "absurd.pth", changes)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=f"absurd.pth.*{named}.*does not describe these weights"):
        load_checkpoint(path)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("changes, key", [
    ({"dim_feedforward": 320}, "ffn"),  # within bounds, but the tensors say 256
    ({"dec_layers": 5}, "missing from the file"),  # more layers than the file has weights for
    ({"num_queries": 31}, "query"),
])
def test_plausible_but_wrong_stored_sizes_are_compared_with_the_tensors(small_model, tmp_path, changes, key):
    path = save_own(small_model, tmp_path / "wrong.pth", changes)
    with pytest.raises(CheckpointError, match="stored configuration describes") as error:
        read_checkpoint(path)
    assert key in str(error.value)


# ------------------------------------------------------------------------------- odd arrays and tensors


@pytest.mark.parametrize("array", [
    np.array([{"a": 1}, None], dtype=object),
    np.array(["conv1", "conv2"]),
    np.array([b"ab", b"cd"]),
    np.zeros(3, dtype=[("x", np.float32), ("y", np.int8)]),
], ids=["object", "str", "bytes", "structured"])
def test_pkl_arrays_that_are_not_numbers_are_refused(tmp_path, array):
    weights = {"backbone.stem.conv1.weight": np.zeros((2, 3), np.float32), "backbone.odd": array}
    (tmp_path / "model_final.pkl").write_bytes(pickle.dumps({"model": weights}))
    with pytest.raises(CheckpointError, match=r"model_final.pkl holds 1 arrays that are not numbers.*backbone.odd"):
        init_segmenter_from(build_model("bundled_small"), tmp_path / "model_final.pkl")


@pytest.mark.parametrize("make, named", [
    (lambda value: torch.empty(value.shape, device="meta"), "meta"),
    (lambda value: value.to_sparse(), "sparse"),
])
def test_meta_and_sparse_tensors_are_refused(small_model, tmp_path, make, named):
    state = dict(small_model.state_dict())
    state["tracker.class_embed.weight"] = make(state["tracker.class_embed.weight"])
    for path in (save_own(small_model, tmp_path / "own.pth", state=state), tmp_path / "bare.pth"):
        if path.name == "bare.pth":
            torch.save({"model": state}, path)
        with pytest.raises(CheckpointError, match=f"{path.name} holds 1 tensors without ordinary dense values.*"
                                                  f"tracker.class_embed.weight.*{named}"):
            load_checkpoint(path)


def nan_checkpoint(model, path: Path) -> Path:
    state = {key: value.clone() for key, value in model.state_dict().items()}
    state["refiner.class_embed.weight"][0, :3] = float("nan")  # the refiner: unused by an online run
    state["refiner.class_embed.bias"][1] = float("inf")
    return save_own(model, path, state=state)


def test_nan_and_inf_weights_warn_but_load(small_model, tmp_path, caplog):
    path = nan_checkpoint(small_model, tmp_path / "nan.pth")
    with caplog.at_level(logging.WARNING, logger="dvis_models.checkpoint"):
        model = load_checkpoint(path)
    assert torch.isnan(model.refiner.class_embed.weight).sum() == 3
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("'refiner.class_embed.weight' has 3 NaN/Inf" in m for m in messages)
    assert any("'refiner.class_embed.bias' has 1 NaN/Inf" in m for m in messages)
    assert len(messages) == 2


def test_nan_warning_is_shown_by_the_cli(small_model, tmp_path):
    checkpoint = nan_checkpoint(small_model, tmp_path / "nan.pth")
    video = make_video(tmp_path / "clip.mp4", num_frames=3, size=(64, 48))
    result = subprocess.run([sys.executable, "-m", "app.cli", "infer", str(video), "--out", str(tmp_path / "out"),
                             "--checkpoint", str(checkpoint), "--online", "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "'refiner.class_embed.weight' has 3 NaN/Inf values" in result.stderr
