"""One training run from plain options: build (or initialise) the model, the clip data and the trainer.

This is what ``dvis train`` calls, in every process that ``torchrun`` starts. The stages chain through
files: stage 1 writes ``model_final.pth``, which ``--init`` hands to stage 2, and so on. ``--init`` also
takes an official DVIS / MinVIS checkpoint (fine-tuning on an exported dataset) or Mask2Former ``.pkl``
weights (segmenter only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dvis_models.checkpoint import infer_config, init_segmenter_from, load_state, read_checkpoint, save_checkpoint
from dvis_models.data.clip_dataset import VIPSegClipDataset
from dvis_models.data.clips import STAGE_REVERSE_PROBS
from dvis_models.data.transforms import OFFICIAL_MAX_SIZE, OFFICIAL_SHORT_EDGES, AugmentationConfig
from dvis_models.errors import CheckpointError
from dvis_models.model import DVISModel, ModelConfig
from dvis_models.presets import build_model, preset_config
from dvis_models.training import distributed
from dvis_models.training.data import DatasetClips
from dvis_models.training.stages import STAGES
from dvis_models.training.trainer import TrainConfig, Trainer
from dvis_models.training.training_state import TrainingStateError

# Parts that must already be trained when a stage starts (they are frozen during it).
PREREQUISITES = {"segmenter": (), "tracker": ("backbone.", "sem_seg_head."),
                 "refiner": ("backbone.", "sem_seg_head.", "tracker.")}
DEFAULT_FRAMES = {"segmenter": 1, "tracker": 5, "refiner": 21}


@dataclass
class TrainOptions:
    """Everything ``dvis train`` accepts; defaults follow the official recipe (DVIS ``configs/VIPSeg/``)."""

    stage: str
    data: Path
    out: Path
    split: str = "train"
    preset: str | None = None  # default: the --init file's own config, else "bundled_small"
    init: Path | None = None
    frames: int | None = None  # clip length; default per stage
    short_edges: tuple[int, ...] = OFFICIAL_SHORT_EDGES
    max_size: int = OFFICIAL_MAX_SIZE
    crop: tuple[int, int] | None = None
    data_seed: int = 0
    device: str | None = None
    resume: bool = True
    train: TrainConfig = field(default_factory=lambda: TrainConfig(stage="segmenter"))


def build_initial_model(options: TrainOptions) -> DVISModel:
    """The model to train: ``--preset`` or the ``--init`` file's architecture, with ``--init``'s weights."""
    preset = options.preset
    if options.init is None:
        if PREREQUISITES[options.stage]:
            raise CheckpointError(
                f"The {options.stage} stage trains on top of a trained "
                f"{', '.join(p.rstrip('.') for p in PREREQUISITES[options.stage])}: pass --init with the previous "
                "stage's model_final.pth (or an official DVIS checkpoint)."
            )
        return build_model(preset or "bundled_small")
    if Path(options.init).suffix == ".pkl":  # Mask2Former COCO weights: segmenter only
        if options.stage != "segmenter":
            raise CheckpointError(f"{options.init} holds only segmenter weights; use it with 'dvis train segmenter'.")
        model = build_model(preset or "bundled_small")
        init_segmenter_from(model, options.init)
        return model
    state_dict, config = read_checkpoint(options.init)
    if preset:
        config = preset_config(preset)
    elif config is None:
        config = _official_config(state_dict, options)
    if options.stage == "refiner" and config.refiner_layers == 0:
        config = replace(config, refiner_layers=config.tracker_layers)  # a refiner on top of an online model
    if config.family == "DVIS++" and options.stage != "segmenter":
        raise CheckpointError(
            f"{options.init} is a DVIS++ model; training its {options.stage} (query denoising, re-id inputs) is not "
            "supported yet. Fine-tune its segmenter, or start from a DVIS checkpoint."
        )
    model = build_model(config)
    missing_needed = [k for k in model.state_dict()
                      if k.startswith(PREREQUISITES[options.stage]) and k not in state_dict]
    if missing_needed:
        raise CheckpointError(
            f"{options.init} lacks {len(missing_needed)} weights the {options.stage} stage needs trained "
            f"(e.g. {missing_needed[0]!r}); train the earlier stage first and pass its model_final.pth."
        )
    report = load_state(model, state_dict, str(options.init), strict=False)
    if report.mismatched or report.unexpected:
        raise CheckpointError(f"{options.init} does not fit the model being trained:\n{report.describe()}")
    return model


def _official_config(state_dict: dict, options: TrainOptions) -> ModelConfig:
    """The architecture of an official checkpoint, inferred from its keys."""
    try:
        return infer_config(state_dict, str(options.init))
    except CheckpointError as error:
        raise CheckpointError(f"{error}\nName the architecture to train with --preset (e.g. "
                              "r50_vipseg_online).") from None


def build_dataset(options: TrainOptions, model: DVISModel, world_size: int) -> VIPSegClipDataset:
    frames = options.frames or DEFAULT_FRAMES[options.stage]
    augmentation = AugmentationConfig(short_edges=tuple(options.short_edges), max_size=options.max_size,
                                      crop=options.crop)
    return VIPSegClipDataset(
        options.data, options.split, label_to_category=model.config.label_to_category, num_frames=frames,
        reverse_prob=STAGE_REVERSE_PROBS[options.stage], augmentation=augmentation, seed=options.data_seed,
        length=options.train.max_iter * world_size,
    )


def run(options: TrainOptions, log: Callable[[str], None] = print) -> Path:
    """Train one stage (in this process; under torchrun, in every process); returns model_final.pth."""
    if options.stage not in STAGES:
        raise ValueError(f"unknown stage {options.stage!r}; choose one of {', '.join(STAGES)}")
    options.train.stage = options.stage
    context = distributed.setup(options.device)
    try:
        model = build_initial_model(options)
        dataset = build_dataset(options, model, context.world_size)
        config = model.config
        clips = DatasetClips(dataset, context.world_size, config.pixel_mean, config.pixel_std, config.size_divisibility)
        trainer = Trainer(model, options.train, clips, options.out, context, save_checkpoint, log)
        if options.resume:
            trainer.resume()
        elif trainer.state_path.exists():
            raise TrainingStateError(f"{options.out} already holds a training run ({trainer.state_path.name}); "
                                     "resume it, or choose another output folder.")
        log(f"training {options.stage} of {config.name} on {len(dataset.videos)} videos from {options.data}, "
            f"{context.world_size} process(es) on {context.device}")
        return trainer.run()
    finally:
        distributed.teardown()
