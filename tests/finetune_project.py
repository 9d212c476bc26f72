"""A tiny project to fine-tune: one synthetic VIPSeg video imported as a project (imported tracks count as
corrected), recorded as run with the bundled model at a small size so training and scoring are quick."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.core.annotation import Provenance
from app.core.progress import run_job
from app.core.project import Project
from app.core.vipseg import import_vipseg
from dvis_models.data.synthetic import generate_dataset

FRAMES = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, 1, FRAMES, (96, 128), seed=3, split="ft")
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """Training on one thread: quicker than several on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_project(dataset: Path, folder: Path, model: dict | None = None, corrected: bool = True,
                 locked: int | None = None) -> Path:
    """``corrected=False``: every track as the model left it; ``locked``: a track id the user locked."""
    (video,) = run_job(import_vipseg(dataset, "ft"))
    annotation = video.annotation
    if not corrected:  # as the model left it: nothing vouched for
        annotation.put_tracks([t.replace(provenance=Provenance.MODEL) for t in annotation.tracks.values()])
    if locked is not None:
        annotation.put_tracks([annotation.tracks[locked].replace(locked=True)])
    model = {"model": "bundled", "offline": False, "short_edge": 64} if model is None else model  # small: fast tests
    Project.create(folder, dataset / "images" / video.video_id, annotation=annotation, model=model).close()
    return folder


def other_base(path: Path) -> Path:
    """A trained base model that is not the bundled one: the bundled model with its backbone's weights shifted, so
    a model fine-tuned from it (segmenter frozen) shows which base it started from."""
    from dvis_models import load_checkpoint
    from dvis_models.checkpoint import save_checkpoint
    from dvis_models.resources import BUNDLED_CHECKPOINT

    model = load_checkpoint(BUNDLED_CHECKPOINT)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.startswith("backbone."):
                weight.add_(0.01)
    save_checkpoint(model, path)
    return path
