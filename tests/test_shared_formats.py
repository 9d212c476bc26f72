"""The formats both packages use exist once, in torch-free ``dvis_models`` modules the app imports."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from app.core import errors as app_errors
from dvis_models import atomic, errors, weights_file
from dvis_models import vipseg_format as fmt
from dvis_models.arguments import frame_size
from dvis_models.categories import vipseg_categories

SHARED = ["dvis_models.errors", "dvis_models.atomic", "dvis_models.categories", "dvis_models.vipseg_format",
          "dvis_models.arguments"]


def test_shared_modules_do_not_load_torch():
    code = f"import importlib, sys; [importlib.import_module(m) for m in {SHARED!r}]; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_one_base_for_every_error_the_user_can_cause():
    assert app_errors.DatasetError is errors.DatasetError and app_errors.CategoryTableError is errors.CategoryTableError
    for kind in (errors.DatasetError, errors.CategoryTableError, errors.CheckpointError, app_errors.StudioError,
                 app_errors.AnnotationError):
        assert issubclass(kind, errors.UserError)
    assert not issubclass(errors.Cancelled, errors.UserError)  # stopping is not an error


def test_torch_files_are_written_atomically_with_the_folder_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync_dir = atomic.fsync_dir
    monkeypatch.setattr(atomic, "fsync_dir", lambda folder: (synced.append(folder), real_fsync_dir(folder)))
    path = tmp_path / "runs" / "last.pth"
    weights_file.torch_save({"w": torch.arange(3)}, path)
    assert synced == [path.parent] and [p.name for p in path.parent.iterdir()] == ["last.pth"]
    assert torch.equal(weights_file.torch_load(path)["w"], torch.arange(3))


def test_color_allocator_follows_panopticapi_with_the_given_generator():
    table = vipseg_categories()
    person, sky = table.by_name("person").id, table.by_name("sky").id
    first = fmt.ColorAllocator(table, np.random.default_rng(3))
    colors = [first.color(person) for _ in range(3)]
    assert colors[0] == table[person].color and len(set(colors)) == 3
    assert all(max(abs(a - b) for a, b in zip(c, table[person].color)) <= fmt.JITTER for c in colors)
    assert first.color(sky) == table[sky].color  # stuff: one colour per category
    again = fmt.ColorAllocator(table, np.random.default_rng(3))
    assert [again.color(person) for _ in range(3)] == colors
    assert fmt.rgb_to_id(np.array([[colors[1]]], np.uint8))[0, 0] == fmt.color_to_id(colors[1])


def test_frame_size_parses_height_x_width():
    import argparse

    assert frame_size("96x128") == (96, 128) and frame_size("608X608") == (608, 608)
    with pytest.raises(argparse.ArgumentTypeError, match="HEIGHTxWIDTH"):
        frame_size("96-128")
