"""The top-level DVIS model and its configuration.

``DVISModel``'s attribute names (``backbone``, ``sem_seg_head``, ``tracker``, ``refiner``) are the
official state-dict prefixes, so released checkpoints load key for key. ``ModelConfig`` holds both the
architecture (to rebuild the model from a file) and the label semantics (to turn model labels into
VIPSeg categories); it is plain JSON-able data so our own checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import Tensor, nn

from dvis_models.errors import PresetError
from dvis_models.preprocess import PIXEL_MEAN, PIXEL_STD
from dvis_models.refiner import TemporalRefiner
from dvis_models.tracker import ReferringTracker

BACKBONES = ("resnet50", "swinl", "small")
FAMILIES = ("DVIS", "DVIS++")  # DVIS++: segmenter with a re-id branch, tracker/refiner over 2x hidden-wide queries


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and to interpret its outputs."""

    name: str
    backbone: str  # one of BACKBONES
    family: str = "DVIS"  # one of FAMILIES
    num_classes: int = 124
    num_thing_classes: int = 58  # model labels < this are things (official label order: things first)
    num_queries: int = 100
    hidden_dim: int = 256
    mask_dim: int = 256
    nheads: int = 8
    dim_feedforward: int = 2048
    enc_layers: int = 6
    enc_dim_feedforward: int = 1024
    dec_layers: int = 9
    tracker_layers: int = 6
    refiner_layers: int = 6  # 0: online model, no refiner
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. SmallBackbone widths
    label_to_category: list[int] = field(default_factory=list)  # model label -> category id
    categories: list[dict[str, Any]] = field(default_factory=list)  # {id, name, isthing, color}
    pixel_mean: tuple[float, float, float] = PIXEL_MEAN
    pixel_std: tuple[float, float, float] = PIXEL_STD
    test_short_edge: int = 720
    test_max_size: int = 1333
    size_divisibility: int = 32
    object_mask_threshold: float = 0.8
    overlap_threshold: float = 0.8

    @property
    def query_dim(self) -> int:
        """Width of the queries the tracker and refiner work on: DVIS++ appends a re-id embedding to each query."""
        return 2 * self.hidden_dim if self.family == "DVIS++" else self.hidden_dim

    @property
    def mode(self) -> str:
        """'offline' when the model has a temporal refiner, else 'online'."""
        return "offline" if self.refiner_layers > 0 else "online"

    def validate(self) -> None:
        if self.backbone not in BACKBONES:
            raise PresetError(f"Unknown backbone {self.backbone!r} in model config {self.name!r}; use one of "
                              f"{BACKBONES}.")
        if self.family not in FAMILIES:
            raise PresetError(f"Unknown model family {self.family!r} in model config {self.name!r}; use one of "
                              f"{FAMILIES}.")
        if len(self.label_to_category) != self.num_classes:
            raise PresetError(
                f"Model config {self.name!r}: label_to_category has {len(self.label_to_category)} entries "
                f"but the model has {self.num_classes} classes."
            )
        known = {int(c["id"]) for c in self.categories}
        unknown = sorted(set(self.label_to_category) - known)
        if unknown:
            raise PresetError(f"Model config {self.name!r}: category ids {unknown} are not in its category table.")

    def category_of(self, label: int) -> dict[str, Any]:
        """The category entry for a model label."""
        category_id = self.label_to_category[label]
        return next(c for c in self.categories if int(c["id"]) == category_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pixel_mean"], data["pixel_std"] = list(self.pixel_mean), list(self.pixel_std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from ``to_dict`` output; unknown keys are an error so a newer file is not half-read.

        Any malformed value (wrong type, missing category id) is a ``PresetError``, never a bare TypeError."""
        if not isinstance(data, dict):
            raise PresetError(f"Model config must be a dictionary, not {type(data).__name__}.")
        names = {f.name for f in fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            raise PresetError(f"Model config has unknown fields {extra}; this file needs a newer DVIS Studio.")
        try:
            values = dict(data)
            for key in ("pixel_mean", "pixel_std"):
                if key in values:
                    values[key] = tuple(float(v) for v in values[key])
            config = cls(**values)
            config.validate()
        except (KeyError, TypeError, ValueError) as error:
            raise PresetError(f"Model config is malformed ({type(error).__name__}: {error}).") from None
        return config


class DVISModel(nn.Module):
    """Segmenter (backbone + Mask2Former head) -> referring tracker -> optional temporal refiner."""

    def __init__(
        self,
        backbone: nn.Module,
        sem_seg_head: nn.Module,
        tracker: ReferringTracker | None,
        refiner: TemporalRefiner | None,
        config: ModelConfig,
    ):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.tracker = tracker
        self.refiner = refiner
        self.config = config

    def segment(self, images: Tensor, with_masks: bool = True):
        """Per-frame Mask2Former on normalised, padded images (T, 3, Hp, Wp) -> ``SegmenterOutput``.

        ``with_masks=False`` leaves out the last layer's ``pred_masks`` (video inference never uses them)."""
        return self.sem_seg_head(self.backbone(images), with_masks=with_masks)

    def track(self, segmented, mask_features: Tensor | None = None, return_aux: bool = False):
        """The tracker on a ``SegmenterOutput``, continuing its carried state -> ``TrackerOutput``.

        DVIS++'s tracker also reads the queries before ``decoder_norm``; masks only when ``mask_features`` is given.
        """
        if segmented.pred_embds_without_norm is None:
            return self.tracker(segmented.pred_embds, mask_features, return_aux=return_aux)
        return self.tracker(segmented.pred_embds, mask_features, return_aux=return_aux,
                            frame_embeds_no_norm=segmented.pred_embds_without_norm)

    def refiner_memory(self, segmented) -> Tensor:
        """What the refiner cross-attends to per frame (T, Q, C), in the segmenter's query order.

        DVIS: each frame's queries through the tracker alone (``tracker.frame_forward``); DVIS++: the segmenter's
        queries before ``decoder_norm`` (DVIS_Plus ``DVIS_Plus_offline.run_window_inference``). Frames are
        independent, so it can be computed a few frames at a time.
        """
        if segmented.pred_embds_without_norm is None:
            return self.tracker.frame_forward(segmented.pred_embds)
        return segmented.pred_embds_without_norm
