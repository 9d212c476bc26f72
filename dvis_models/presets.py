"""Named model configurations and the builder that turns a ``ModelConfig`` into a ``DVISModel``.

The four DVIS VIPSeg presets reproduce the official DVIS configs
(``configs/VIPSeg/DVIS_{Online,Offline}_R50_720p.yaml``, ``configs/VIPSeg/swin/DVIS_{Online,Offline}_SwinL.yaml``); the
two DVIS++ presets the official DVIS_Plus ``configs/dvis_Plus/VIPSeg/DVIS_Plus_{Online,Offline}_R50.yaml`` (the same
segmenter sizes, test resize and thresholds, plus a 3-layer re-id branch). ``bundled_small`` is our
CPU-friendly model trained by ``dvis_models.training``: the same architecture, scaled down, with the
full VIPSeg 124-class head so its output exports to VIPSeg unchanged.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import torch
from torch.overrides import TorchFunctionMode

from dvis_models.backbones import ResNet50, SmallBackbone, SwinTransformer
from dvis_models.categories import vipseg_categories
from dvis_models.errors import PresetError
from dvis_models.model import DVISModel, ModelConfig
from dvis_models.refiner import TemporalRefiner
from dvis_models.segmenter_head import build_maskformer_head
from dvis_models.tracker import ReferringTracker
from dvis_models.tracker_plus import ReferringTrackerPlus


def things_first_labels(categories: list[dict]) -> list[int]:
    """Model label -> category id in the official order: thing ids ascending, then stuff ids ascending."""
    things = sorted(int(c["id"]) for c in categories if c["isthing"])
    stuff = sorted(int(c["id"]) for c in categories if not c["isthing"])
    return things + stuff


def _vipseg_config(name: str, backbone: str, num_queries: int, refiner_layers: int,
                   family: str = "DVIS") -> ModelConfig:
    categories = vipseg_categories().to_json()
    return ModelConfig(
        name=name,
        backbone=backbone,
        family=family,
        num_classes=len(categories),
        num_thing_classes=sum(1 for c in categories if c["isthing"]),
        num_queries=num_queries,
        refiner_layers=refiner_layers,
        label_to_category=things_first_labels(categories),
        categories=categories,
    )


def _bundled_small() -> ModelConfig:
    """Scaled-down DVIS for CPU use; the training helper trains exactly this config.

    About 3.8 M parameters: 14 MB in float32, 7 MB saved with ``save_checkpoint(..., half=True)``.
    """
    return replace(
        _vipseg_config("bundled_small", "small", num_queries=30, refiner_layers=2),
        backbone_kwargs={"channels": [24, 48, 96, 192], "blocks": [1, 1, 2, 1], "norm_groups": 8},
        hidden_dim=128,
        mask_dim=128,
        nheads=8,
        dim_feedforward=256,
        enc_layers=2,
        enc_dim_feedforward=256,
        dec_layers=3,
        tracker_layers=2,
        test_short_edge=128,  # the scale it is trained at (synthetic 128x160 clips, short sides 112-144)
        test_max_size=320,
    )


REID_LAYERS = 3  # DVIS++ re-id branch depth (DVIS_Plus ``add_ctvis_config``: NUM_REID_HEAD_LAYERS)

_PRESETS = {
    "r50_vipseg_online": lambda: _vipseg_config("r50_vipseg_online", "resnet50", 100, refiner_layers=0),
    "r50_vipseg_offline": lambda: _vipseg_config("r50_vipseg_offline", "resnet50", 100, refiner_layers=6),
    "swinl_vipseg_online": lambda: _vipseg_config("swinl_vipseg_online", "swinl", 200, refiner_layers=0),
    "swinl_vipseg_offline": lambda: _vipseg_config("swinl_vipseg_offline", "swinl", 200, refiner_layers=6),
    "dvispp_r50_vipseg_online": lambda: _vipseg_config("dvispp_r50_vipseg_online", "resnet50", 100, refiner_layers=0,
                                                       family="DVIS++"),
    "dvispp_r50_vipseg_offline": lambda: _vipseg_config("dvispp_r50_vipseg_offline", "resnet50", 100,
                                                        refiner_layers=6, family="DVIS++"),
    "bundled_small": _bundled_small,
}


def list_presets() -> list[str]:
    return list(_PRESETS)


def preset_config(name: str) -> ModelConfig:
    try:
        return _PRESETS[name]()
    except KeyError:
        raise PresetError(f"Unknown model preset {name!r}; choose one of {', '.join(_PRESETS)}.") from None


def _build_backbone(config: ModelConfig) -> torch.nn.Module:
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in config.backbone_kwargs.items()}
    if config.backbone == "resnet50":
        return ResNet50(**kwargs)
    if config.backbone == "swinl":
        return SwinTransformer(**kwargs)
    return SmallBackbone(**kwargs)


# The writes weight initialisers make: ``torch.nn.init`` functions arrive whole (those that dispatch to torch-function
# modes) or as these in-place Tensor methods (``zeros_`` is zero_, ``xavier_uniform_`` uniform_, ``trunc_normal_`` a
# normal_ followed by a bounds check that zeros pass).
_INIT_METHODS = frozenset(getattr(torch.Tensor, name) for name in ("normal_", "uniform_", "zero_", "fill_"))


class _ZeroParameterInit(TorchFunctionMode):
    """While building, weight initialisers write zeros into ``nn.Parameter`` tensors instead of random values.

    For builds whose parameter values are never read: on the meta device (the meta kernel of ``normal_`` is a
    Python decomposition whose first call imports ``torch._dynamo`` and ``sympy``, several seconds of a cold
    load), and a model whose every parameter a checkpoint overwrites right after (random initialisation of Swin-L
    is seconds of CPU work; writing zeros is a memset). Zeros, not skipping: a model never holds uninitialised
    memory, and an initialiser that checks its draw (``trunc_normal_`` redraws values out of bounds) finds none
    to redraw. Only parameters are touched: buffers (BatchNorm statistics, Swin's relative position index) are
    computed exactly as always. Simpler to get right than building on meta and assigning the file's tensors,
    which would leave every buffer a file may lack (a non-persistent one, always) to be recomputed by hand.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        initialiser = func in _INIT_METHODS or getattr(func, "__module__", None) == "torch.nn.init"
        tensor = args[0] if args else kwargs.get("tensor")  # torch.nn.init passes it by keyword
        if initialiser and isinstance(tensor, torch.nn.Parameter):
            with torch.no_grad():
                return tensor.zero_()
        return func(*args, **kwargs)


def build_model(preset: str | ModelConfig, device: torch.device | str | None = None, init: bool = True) -> DVISModel:
    """A model with freshly initialised weights, in eval mode.

    ``device="meta"`` builds shapes only (no memory, instant), e.g. to compare key lists. ``init=False`` sets the
    parameters to zero instead of random values, for a caller that overwrites them all right after, as
    ``load_checkpoint`` does when the file holds every one.
    """
    config = preset_config(preset) if isinstance(preset, str) else preset
    config.validate()
    plus = config.family == "DVIS++"
    meta = device is not None and torch.device(device).type == "meta"
    zero_init = _ZeroParameterInit() if meta or not init else nullcontext()
    with torch.device(device) if device is not None else nullcontext(), zero_init:
        backbone = _build_backbone(config)
        head = build_maskformer_head(
            backbone.out_channels,
            num_classes=config.num_classes,
            num_queries=config.num_queries,
            hidden_dim=config.hidden_dim,
            enc_layers=config.enc_layers,
            dec_layers=config.dec_layers,
            nheads=config.nheads,
            dim_feedforward=config.dim_feedforward,
            enc_dim_feedforward=config.enc_dim_feedforward,
            mask_dim=config.mask_dim,
            reid_layers=REID_LAYERS if plus else 0,
        )
        common = dict(hidden_dim=config.query_dim, num_classes=config.num_classes, nheads=config.nheads,
                      dim_feedforward=config.dim_feedforward, mask_dim=config.mask_dim)
        tracker = (ReferringTrackerPlus if plus else ReferringTracker)(num_layers=config.tracker_layers, **common)
        refiner = TemporalRefiner(num_layers=config.refiner_layers, **common) if config.refiner_layers else None
    return DVISModel(backbone, head, tracker, refiner, config).eval()

