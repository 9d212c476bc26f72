"""Which model a run uses, where it runs and at what size: the one resolver the GUI and the CLI share.

A model source is one string, so a run request, a project's record of its model and the CLI all say it the
same way: ``"bundled"`` (the small model shipped with the app), ``"preset:NAME"`` (an architecture with fresh
seeded weights, for testing), ``"model:NAME"`` (a model installed in the library, ``app.core.models``) or the
path of a checkpoint file. Importing this module is cheap: torch and ``dvis_models`` load when a model does.
"""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED = "bundled"
PRESET_PREFIX = "preset:"
MODEL_PREFIX = "model:"
# The architectures a run can build with fresh weights (``dvis_models.list_presets()``; kept here so that listing
# them loads no torch). The Run dialog and ``dvis infer --preset`` offer exactly these.
PRESETS = ("r50_vipseg_online", "r50_vipseg_offline", "swinl_vipseg_online", "swinl_vipseg_offline",
           "dvispp_r50_vipseg_online", "dvispp_r50_vipseg_offline", "bundled_small")
# DVIS tests at short edge 720 with the long edge capped at 1333: another short edge keeps that ratio.
TEST_SHORT_EDGE, TEST_MAX_SIZE = 720, 1333


def source_for(model: str | None = None, preset: str | None = None, checkpoint: str | os.PathLike | None = None) -> str:
    """The source string for the CLI's choice: ``model`` an installed name (or already a source string),
    ``preset`` an architecture, ``checkpoint`` a file; none of them: the bundled model."""
    if preset is not None:
        return PRESET_PREFIX + preset
    if checkpoint is not None:
        return str(checkpoint)
    if model is None or model == BUNDLED or model.startswith((PRESET_PREFIX, MODEL_PREFIX)):
        return model or BUNDLED
    return MODEL_PREFIX + model


def checkpoint_path(source: str, library=None) -> Path | None:
    """The file a source loads (None for a preset's fresh weights); installed names are looked up in ``library``
    (an ``app.core.models.ModelLibrary``; default: the user's)."""
    if source == BUNDLED:
        from dvis_models.resources import BUNDLED_CHECKPOINT

        return BUNDLED_CHECKPOINT
    if source.startswith(PRESET_PREFIX):
        return None
    if source.startswith(MODEL_PREFIX):
        if library is None:
            from app.core.models import ModelLibrary

            library = ModelLibrary()
        return library.path(source[len(MODEL_PREFIX):])  # an unknown name: a ModelLibraryError saying what to do
    return Path(source)  # a missing file is a CheckpointError once loaded


_cache: dict[tuple, object] = {}  # (source, file mtime or seed) -> model: re-runs start at once


def load_model(source: str, seed: int = 0):
    """The model of ``source``, built or loaded once and cached while its file is unchanged.

    A preset's fresh weights come from ``seed``, so test runs are reproducible. Only the last model is kept.
    """
    path = checkpoint_path(source)
    key = (source, path.stat().st_mtime if path is not None and path.exists() else seed)
    if key not in _cache:
        import dvis_models

        if path is None:
            import torch

            torch.manual_seed(seed)
            model = dvis_models.build_model(source[len(PRESET_PREFIX):])
        else:
            model = dvis_models.load_checkpoint(path)
        _cache.clear()
        _cache[key] = model
    return _cache[key]


def pick_device(device: str | None = None) -> str:
    """``device`` when given, else CUDA when available (under torchrun the process's own GPU), else the CPU."""
    if device:
        return device
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    local_rank = os.environ.get("LOCAL_RANK")
    return "cuda" if local_rank is None else f"cuda:{local_rank}"


def max_size_for(short_edge: int | None) -> int | None:
    """The long-edge cap that goes with ``short_edge`` (None: the model's own test size)."""
    return None if short_edge is None else round(short_edge * TEST_MAX_SIZE / TEST_SHORT_EDGE)


def build_segmenter(model, *, device: str | None = None, offline: bool | None = None, short_edge: int | None = None,
                    chunk_size: int | None = None, score_threshold: float | None = None, fast: bool = False,
                    spill_dir: str | os.PathLike | None = None):
    """A ``dvis_models.VideoSegmenter`` for ``model`` under the device and resolution policies above.

    None leaves a setting at the segmenter's own default (``offline``: the refiner when the model has one).
    """
    from dvis_models import VideoSegmenter

    options = {} if chunk_size is None else {"chunk_size": chunk_size}
    return VideoSegmenter(model, device=pick_device(device), offline=offline, object_mask_threshold=score_threshold,
                          short_edge=short_edge, max_size=max_size_for(short_edge), fast=fast, spill_dir=spill_dir,
                          **options)


def phase_text(phase: str, done: int, total: int | None) -> str | None:
    """A run's progress report as a status line while frames are not yet handed out (an offline run refines whole
    windows first), e.g. 'Refining window 1/2'; None for the reports of finished frames."""
    from dvis_models.pipeline import FINISHED, progress_text

    return None if phase == FINISHED else progress_text(phase, done, total).capitalize()


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch (None: torch's own choice; 1 is fastest on a busy machine)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
