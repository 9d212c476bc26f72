"""DVIS (segmenter + referring tracker + temporal refiner) in plain PyTorch. Never imports Qt or `app`.

Public entry points are imported lazily, so ``import dvis_models.types`` (used by the app) does not load torch.
"""

from importlib import import_module

_PUBLIC = {
    "build_model": "dvis_models.presets",
    "list_presets": "dvis_models.presets",
    "preset_config": "dvis_models.presets",
    "load_checkpoint": "dvis_models.checkpoint",
    "save_checkpoint": "dvis_models.checkpoint",
    "init_segmenter_from": "dvis_models.checkpoint",
    "DVISModel": "dvis_models.model",
    "ModelConfig": "dvis_models.model",
    "VideoSegmenter": "dvis_models.pipeline",
    "Cancelled": "dvis_models.errors",
    "DVISError": "dvis_models.errors",
    "CheckpointError": "dvis_models.errors",
    "PresetError": "dvis_models.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'dvis_models' has no attribute {name!r}")
