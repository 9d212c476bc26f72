"""The use-cases GUI and CLI share (app.core.jobs) and the one model resolver (app.core.model_source)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from job_helpers import cancel_after, run_reporting
from synthetic_vipseg import CAR, SKY
from videos import make_video

from app.core import jobs, model_source
from app.core.annotation import Annotation
from app.core.errors import Cancelled
from app.core.progress import run_job
from app.core.project import Project
from dvis_models import list_presets
from dvis_models.categories import vipseg_categories
from dvis_models.resources import BUNDLED_CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]


def test_source_strings_for_the_cli_choices():
    assert model_source.source_for() == model_source.BUNDLED
    assert model_source.source_for(model="bundled") == "bundled"
    assert model_source.source_for(model="mine") == "model:mine"  # a bare name is an installed model
    assert model_source.source_for(model="model:mine") == "model:mine"
    assert model_source.source_for(model="preset:r50_vipseg_online") == "preset:r50_vipseg_online"
    assert model_source.source_for(preset="bundled_small") == "preset:bundled_small"
    assert model_source.source_for(checkpoint=Path("/x/w.pth")) == "/x/w.pth"


def test_the_presets_offered_are_the_model_packages():
    assert set(model_source.PRESETS) == set(list_presets())


def test_resolution_and_device_policy():
    assert model_source.max_size_for(None) is None
    assert model_source.max_size_for(720) == 1333 and model_source.max_size_for(360) == 666  # round(666.5), even
    assert model_source.pick_device("cpu") == "cpu"
    assert model_source.pick_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_models_are_cached_until_their_file_changes(tmp_path):
    checkpoint = tmp_path / "weights.pth"
    shutil.copy(BUNDLED_CHECKPOINT, checkpoint)
    first = model_source.load_model(str(checkpoint))
    assert model_source.load_model(str(checkpoint)) is first
    os.utime(checkpoint, (1, 1))  # replaced by another file
    reloaded = model_source.load_model(str(checkpoint))
    assert reloaded is not first and reloaded.config.name == first.config.name == "bundled_small"
    fresh = [model_source.load_model("preset:bundled_small", seed) for seed in (0, 1, 0)]
    weights = [next(model.parameters()).detach().clone() for model in fresh]
    assert torch.equal(weights[0], weights[2]) and not torch.equal(weights[0], weights[1])  # seeded


def test_kind_of(tmp_path):
    video = make_video(tmp_path / "clip.mp4", num_frames=2)
    assert jobs.kind_of(video) == "video" and jobs.kind_of(tmp_path) == "video"  # an image folder
    dataset = tmp_path / "dataset"
    run_job(jobs.export(Annotation(2, 64, 96, vipseg_categories()), video, jobs.ExportRequest("vipseg", dataset)))
    assert jobs.kind_of(dataset) == "vipseg"
    Project.create(tmp_path / "project", video, annotation=Annotation(2, 64, 96, vipseg_categories())).close()
    assert jobs.kind_of(tmp_path / "project") == "project"
    with pytest.raises(jobs.OpenError, match="does not exist"):
        jobs.kind_of(tmp_path / "missing")


def _annotation(frames: int) -> Annotation:
    annotation = Annotation(frames, 64, 96, vipseg_categories())
    car, sky = annotation.make_track(CAR), annotation.make_track(SKY)
    annotation.put_tracks([car, sky])
    for index in range(frames):
        mask = np.zeros((64, 96), np.int32)
        mask[:8] = sky.id
        mask[10:30, 5 + 4 * index:25 + 4 * index] = car.id
        annotation.set_frame(index, mask)
    return annotation


def test_export_dispatch_reports_and_stops(tmp_path):
    video = make_video(tmp_path / "clip.mp4", num_frames=6)
    annotation = _annotation(6)
    alpha = jobs.ExportRequest("alpha", tmp_path / "a.mp4", start=1, stop=5)
    result, reports = run_reporting(jobs.export(annotation, video, alpha))
    assert result.paths == [tmp_path / "a.mp4"] and result.frames == 4 and reports == [(i, 4) for i in range(1, 5)]
    written, reports = run_reporting(jobs.export(annotation, video, jobs.ExportRequest("vipseg", tmp_path / "ds")))
    assert written.videos == ["clip"] and reports == [(i, 6) for i in range(1, 7)]
    with pytest.raises(Cancelled):
        cancel_after(jobs.export(annotation, video, jobs.ExportRequest("overlay", tmp_path / "o.mp4")), 2)
    assert not list(tmp_path.glob("*o.mp4*"))  # no partial video, no temporary file
    with pytest.raises(Cancelled):
        cancel_after(jobs.export(annotation, video, jobs.ExportRequest("predictions", tmp_path / "pred")), 2)
    assert not (tmp_path / "pred" / "pred.json").exists()


def test_read_and_import_a_vipseg_video(tmp_path):
    video = make_video(tmp_path / "clip.mp4", num_frames=8)
    annotation = _annotation(8)
    run_job(jobs.export(annotation, video, jobs.ExportRequest("vipseg", tmp_path / "ds")))
    categories, (dataset_video,) = run_job(jobs.read_vipseg(tmp_path / "ds"))
    (source, imported), reports = run_reporting(jobs.import_vipseg_video(categories, dataset_video))
    with source:
        assert source.num_frames == 8 and reports == [(i, 8) for i in range(1, 9)]
        category_maps = [np.vectorize(lambda t, a=a: a.tracks[t].category_id if t else 0)(a.track_map(i))
                         for a in (imported, annotation) for i in range(8)]
        assert all(np.array_equal(category_maps[i], category_maps[8 + i]) for i in range(8))  # ids renumbered
    scores, reports = run_reporting(jobs.evaluate_annotation(annotation, categories, dataset_video))
    assert scores["VPQ"] == scores["STQ"] == 1.0 and reports == [(i, 8) for i in range(1, 9)]


def test_diagnostics_report_per_frame_and_stop():
    annotation = _annotation(6)
    annotation.set_frame(3, np.where(annotation.track_map(3) == 1, 0, annotation.track_map(3)))  # the car vanishes once
    diagnostics, reports = run_reporting(jobs.diagnose_annotation(annotation))
    assert reports == [(i, 6) for i in range(1, 7)]
    assert [(d.kind, d.track_id, d.frame) for d in diagnostics] == [("fragment", 1, 4)]  # back at frame 4
    with pytest.raises(Cancelled):
        cancel_after(jobs.diagnose_annotation(annotation), 2)
