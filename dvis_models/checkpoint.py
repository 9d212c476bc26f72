"""Reading and writing model weights safely, and telling the user plainly when a file does not fit.

Three kinds of files:
- official DVIS and DVIS++ ``.pth`` (detectron2 checkpointer: ``{"model": state_dict, ...}`` or a bare state
  dict; old files name the refiner ``offline_tracker.``); the variant is inferred from the keys;
- Mask2Former COCO ``.pkl`` (pickled numpy arrays), used only to initialise the segmenter for training;
  read with an unpickler that can build numpy arrays and nothing else;
- our own files: ``{"format": FORMAT, "version": 1, "config": ModelConfig dict, "state_dict": ...}``.
Every ``.pth`` is read with ``torch.load(weights_only=True)`` under a torch where that cannot be bypassed
(``weights_file``): a file that needs code to load is refused.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from dvis_models import weights_file
from dvis_models.errors import CheckpointError, PresetError
from dvis_models.model import DVISModel, ModelConfig
from dvis_models.presets import build_model, preset_config

FORMAT = "dvis-studio-checkpoint"
FORMAT_VERSION = 1
IGNORED_KEYS = ("criterion.empty_weight",)  # the training loss's class weights, not part of the model
LEGACY_PREFIXES = {"offline_tracker.": "refiner."}
SEGMENTER_PREFIXES = ("backbone.", "sem_seg_head.")
DVIS_PLUS_PREFIXES = ("sem_seg_head.predictor.reid_embed.", "tracker.ref_proj.")  # keys only DVIS++ has
NUMERIC_KINDS = "biuf"  # numpy dtype kinds weights may have: bool, int, unsigned, float
MODULE_SIZE_FIELDS = ("num_classes", "num_thing_classes", "num_queries", "hidden_dim", "mask_dim", "nheads",
                      "dim_feedforward", "enc_layers", "enc_dim_feedforward", "dec_layers", "tracker_layers",
                      "refiner_layers")

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What did not fit when loading weights, in words a user understands."""

    source: str
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, file shape, model shape
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 8) -> str:
        lines = []
        for key, file_shape, model_shape in self.mismatched[:limit]:
            lines.append(f"key {key!r} has shape {tuple(file_shape)} in the file but the model needs "
                         f"{tuple(model_shape)}")
        lines += _listing("missing from the file", self.missing, limit)
        lines += _listing("in the file but unknown to the model", self.unexpected, limit)
        return "\n".join(lines + self.notes)


def _listing(what: str, keys: list[str], limit: int) -> list[str]:
    if not keys:
        return []
    shown = ", ".join(keys[:limit]) + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")
    return [f"{len(keys)} keys {what}: {shown}"]


# ---------------------------------------------------------------------------------------------- reading


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for Mask2Former ``.pkl`` weights: builds numpy arrays, refuses every other global."""

    def find_class(self, module: str, name: str):
        allowed = _numpy_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def _numpy_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    found = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found[(module, "_reconstruct")] = multiarray._reconstruct
        found[(module, "scalar")] = multiarray.scalar
    found[("numpy", "ndarray")] = np.ndarray
    found[("numpy", "dtype")] = np.dtype
    return found


def _load_numpy_pickle(path: Path) -> dict[str, torch.Tensor]:
    head = weights_file.check_file(path)
    try:
        with open(path, "rb") as handle:
            data = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except OSError as error:
        raise CheckpointError(f"Cannot read the weights file {path}: {error.strerror or error}.") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        if weights_file.is_text(head):
            raise CheckpointError(f"{path} is a text file, not a checkpoint; point to the .pkl weights file.") from None
        raise CheckpointError(
            f"{path} is not a plain pickle of numpy arrays ({error}); only Mask2Former/detectron2 .pkl weight "
            "files are accepted, and nothing in them is executed."
        ) from None
    weights = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no weight dictionary; expected a detectron2 .pkl with a 'model' entry.")
    arrays = {key: value for key, value in weights.items() if isinstance(value, np.ndarray)}
    odd = [f"{key} ({value.dtype})" for key, value in arrays.items() if value.dtype.kind not in NUMERIC_KINDS]
    if odd:
        raise CheckpointError(
            f"{path} holds {len(odd)} arrays that are not numbers, e.g. {', '.join(odd[:3])}; weights are numeric "
            "arrays, so this is not a Mask2Former/detectron2 weights file (or it is damaged)."
        )
    return {key: torch.as_tensor(value) for key, value in arrays.items()}


def _normalise_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename legacy prefixes and drop entries that are not model weights."""
    result = {}
    for key, value in state_dict.items():
        if key in IGNORED_KEYS:
            continue
        for old, new in LEGACY_PREFIXES.items():
            if key.startswith(old):
                key = new + key[len(old):]
        result[key] = value
    return result


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
    """State dict (official key names) and, for our own files, the stored config, checked against each other."""
    path = Path(path)
    config = None
    if path.suffix == ".pkl":
        tensors = _load_numpy_pickle(path)
    else:
        tensors, config = _read_pth(path)
    if not tensors:
        raise CheckpointError(f"{path} contains no weight tensors; it is not a DVIS checkpoint.")
    _check_tensors(tensors, path)
    tensors = _normalise_keys(tensors)
    if config is not None:
        _check_config_fits(config, tensors, path)
    return tensors, config


def _read_pth(path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
    data = weights_file.torch_load(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a dictionary of weights; it is not a DVIS checkpoint.")
    config = None
    if data.get("format") == FORMAT:
        try:
            config = ModelConfig.from_dict(data.get("config"))
        except PresetError as error:
            raise CheckpointError(f"{path}: the stored model configuration is unusable ({error}).") from None
        data = data.get("state_dict")
    elif isinstance(data.get("model"), dict):
        data = data["model"]
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} has no dictionary of weights under 'state_dict'; the file is damaged.")
    return {key: value for key, value in data.items() if isinstance(value, torch.Tensor)}, config


def _check_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse tensors that hold no values (meta) or are not dense; warn about NaN/Inf values, which still load."""
    odd = [f"{key} ({'meta' if value.is_meta else value.layout})" for key, value in tensors.items()
           if value.is_meta or value.layout != torch.strided]
    if odd:
        raise CheckpointError(
            f"{path} holds {len(odd)} tensors without ordinary dense values, e.g. {', '.join(odd[:3])}; it was saved "
            "from a model that was not materialised (meta) or converted to sparse. Re-save it from a loaded model."
        )
    for warning in nonfinite_warnings(tensors, str(path)):
        log.warning(warning)


def nonfinite_warnings(tensors: dict[str, torch.Tensor], source: str) -> list[str]:
    """One line per tensor holding NaN or Inf values: the model loads, but its outputs may be garbage."""
    bad = {key: int((~torch.isfinite(value)).sum()) for key, value in tensors.items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())}
    return [f"{source}: weight {key!r} has {count} NaN/Inf values; the model loads, but its masks may be "
            "empty or wrong. Use another copy of the checkpoint if results look broken."
            for key, count in bad.items()]


def _check_config_fits(config: ModelConfig, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Every size a stored config declares must match the tensors, checked before anything is allocated.

    A damaged or hostile config (hidden_dim 1e7, num_queries 1e9) would otherwise ask for terabytes when the
    model is built. First every declared size is bounded by the largest tensor dimension or key count in the
    file (no module can need more), then the model is built on the meta device (shapes only, no memory) and
    its key list and shapes are compared with the file's.
    """
    limit = max(max((max(value.shape, default=1) for value in tensors.values()), default=1), len(tensors))
    for name, value in _declared_sizes(config):
        if value > limit:
            raise CheckpointError(
                f"{path}: its stored configuration declares {name}={value}, but no tensor in the file is that large "
                f"(largest: {limit}); the configuration does not describe these weights. The file is damaged or was "
                "edited; use the original checkpoint."
            )
    try:
        skeleton = build_model(config, device="meta")
    except (TypeError, ValueError, AssertionError) as error:  # e.g. backbone_kwargs or widths the modules reject
        raise CheckpointError(f"{path}: its stored model configuration cannot be built ({error}).") from None
    report = compare_state(skeleton, tensors, str(path))
    if not report.ok:
        raise CheckpointError(f"{path} does not fit the model its stored configuration describes:\n{report.describe()}")


def _declared_sizes(config: ModelConfig) -> list[tuple[str, int]]:
    """(name, value) of every integer that sizes a module: the config's own fields and the backbone's arguments."""
    sizes = [(name, getattr(config, name)) for name in MODULE_SIZE_FIELDS]
    for name, value in config.backbone_kwargs.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        sizes += [(f"backbone_kwargs.{name}", item) for item in values if isinstance(item, int)]
    return [(name, value) for name, value in sizes if isinstance(value, int)]


# ------------------------------------------------------------------------------------- variant inference


def _layer_count(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({match.group(1) for key in state_dict if (match := pattern.match(key))})


def _backbone_of(state_dict: dict[str, torch.Tensor], source: str) -> str:
    if any(key.startswith("backbone.") and (".interactions." in key or ".injector." in key) for key in state_dict):
        raise CheckpointError(
            f"{source} has a ViT-Adapter backbone (DVIS++ / DVIS-DAQ ViT-Adapter-L), which this version cannot run "
            "yet; use an R50 DVIS++ checkpoint or a DVIS R50 / Swin-L one."
        )
    if "backbone.patch_embed.proj.weight" in state_dict and any(k.startswith("backbone.layers.") for k in state_dict):
        return "swinl"
    if "backbone.stem.conv1.weight" in state_dict:
        return "r50"
    sample = ", ".join(list(state_dict)[:4])
    raise CheckpointError(
        f"{source} has neither ResNet-50 nor Swin-L backbone keys (it starts with {sample}); "
        "it is not an official DVIS or DVIS++ VIPSeg checkpoint."
    )


def infer_config(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> ModelConfig:
    """The official variant a state dict holds: family (DVIS++ has the segmenter's re-id branch and the tracker's
    ``ref_proj``), backbone from its keys, offline iff refiner keys, query count."""
    backbone = _backbone_of(state_dict, source)
    plus = any(key.startswith(DVIS_PLUS_PREFIXES) for key in state_dict)
    tracker_layers = _layer_count(state_dict, "tracker.transformer_ffn_layers.")
    if tracker_layers == 0:
        raise CheckpointError(
            f"{source} holds only a segmenter (a MinVIS checkpoint, no 'tracker.' keys). DVIS needs the tracker: "
            "load a DVIS online/offline checkpoint, or use this file to initialise training."
        )
    refiner_layers = _layer_count(state_dict, "refiner.transformer_ffn_layers.")
    preset = f"{'dvispp_' if plus else ''}{backbone}_vipseg_{'offline' if refiner_layers else 'online'}"
    try:
        config = preset_config(preset)
    except PresetError:
        raise CheckpointError(f"{source} is a DVIS++ checkpoint with a {backbone} backbone; only DVIS++ R50 "
                              "is supported.") from None
    class_key = "sem_seg_head.predictor.class_embed.weight"
    if class_key in state_dict and state_dict[class_key].shape[0] != config.num_classes + 1:
        raise CheckpointError(
            f"{source}: key {class_key!r} has {state_dict[class_key].shape[0]} classes (incl. no-object); "
            f"official VIPSeg checkpoints have {config.num_classes + 1}. Other datasets' checkpoints are not supported."
        )
    query_key = "sem_seg_head.predictor.query_feat.weight"
    num_queries = int(state_dict[query_key].shape[0]) if query_key in state_dict else config.num_queries
    return replace(config, num_queries=num_queries, tracker_layers=tracker_layers,
                   refiner_layers=refiner_layers)


# ---------------------------------------------------------------------------------------------- loading


def compare_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> LoadReport:
    expected = model.state_dict()
    report = LoadReport(source)
    report.missing = [key for key in expected if key not in state_dict]
    report.unexpected = [key for key in state_dict if key not in expected]
    report.mismatched = [
        (key, tuple(value.shape), tuple(expected[key].shape))
        for key, value in state_dict.items()
        if key in expected and value.shape != expected[key].shape
    ]
    return report


def load_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str,
               strict: bool = True) -> LoadReport:
    """Copy the fitting weights into ``model``; with ``strict`` any misfit raises ``CheckpointError`` first."""
    report = compare_state(model, state_dict, source)
    if strict and not report.ok:
        raise CheckpointError(f"{source} does not fit the model:\n{report.describe()}")
    bad = {key for key, _, _ in report.mismatched}
    model.load_state_dict({k: v for k, v in state_dict.items() if k not in bad}, strict=False)
    return report


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu", strict: bool = True) -> DVISModel:
    """Build the model a file holds (official DVIS / DVIS++ .pth or our own file) and load its weights.

    When the file holds every weight, the model is built without the random initialisation the file overwrites
    anyway (``build_model(init=False)``; most of a Swin-L load). A strict load refuses any other file before the
    model is returned, so only a partial ``strict=False`` load needs the full initialisation: the weights the
    file lacks then have the values of a fresh build.
    """
    state_dict, config = read_checkpoint(path)
    if config is None:
        config = infer_config(state_dict, str(path))
    try:
        model = build_model(config, init=not strict and _lacks_weights(config, state_dict, str(path)))
    except (TypeError, ValueError) as error:  # e.g. backbone_kwargs or widths the modules reject
        raise CheckpointError(f"{path}: its stored model configuration cannot be built ({error}).") from None
    load_state(model, state_dict, str(path), strict=strict)
    return model.to(device).eval()


def _lacks_weights(config: ModelConfig, state_dict: dict[str, torch.Tensor], source: str) -> bool:
    """Whether some weight of the model is missing from ``state_dict`` or has another shape there."""
    report = compare_state(build_model(config, device="meta"), state_dict, source)
    return bool(report.missing or report.mismatched)


def init_segmenter_from(model: DVISModel, path: str | os.PathLike) -> LoadReport:
    """Initialise the segmenter from Mask2Former/MinVIS weights (.pkl or .pth) before training.

    Only ``backbone.``/``sem_seg_head.`` keys are used; keys whose shape differs (the COCO class head,
    another query count) are skipped and named in ``report.notes``.
    """
    state_dict, _ = read_checkpoint(path)
    segmenter = {k: v for k, v in state_dict.items() if k.startswith(SEGMENTER_PREFIXES)}
    model_keys = {k for k in model.state_dict() if k.startswith(SEGMENTER_PREFIXES)}
    report = compare_state(model, segmenter, str(path))
    report.missing = [key for key in report.missing if key in model_keys]
    report.notes = [
        f"skipped {key}: shape {file_shape} in the file, {model_shape} in the model (left at its initial value)"
        for key, file_shape, model_shape in report.mismatched
    ]
    load_state(model, segmenter, str(path), strict=False)
    return report


def save_checkpoint(model: DVISModel, path: str | os.PathLike, half: bool = False) -> None:
    """Write our own format atomically (temp file in the same folder, fsync, rename).

    ``half`` stores floating-point tensors as float16 (half the size, e.g. for the bundled model); loading
    copies them back into the float32 model.
    """
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(), "state_dict": state}
    try:
        weights_file.torch_save(payload, path)
    except OSError as error:
        raise CheckpointError(f"Cannot write the checkpoint {path}: {error.strerror or error}. "
                              "Free some disk space or choose another folder; any previous file there is "
                              "unchanged.") from None
