"""The three DVIS training stages: what is trained, what is frozen, how predictions are matched.

1. ``segmenter``: backbone + Mask2Former head; every frame is an independent image (MinVIS).
2. ``tracker``: segmenter frozen (eval, no_grad). Each object is matched once, on its first
   appearance in the clip, and keeps that query for all frames. For the first ``match_switch_iter``
   iterations the matching is done on the frozen segmenter's predictions re-ordered by the tracker's
   pre-matching (stable early targets) and shared by all layers; afterwards on the tracker's own
   outputs, layer by layer.
3. ``refiner``: segmenter and tracker frozen. A clip is one image of stacked frames (T*h, w) and one
   video-level class; matching first on the frozen tracker's outputs, then on the refiner's own.

A stage is an ``nn.Module`` whose ``forward(clip, iteration)`` returns the weighted losses, so one
``DistributedDataParallel`` wrapper covers every stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dvis_models.training.criterion import Prediction, SetCriterion
from dvis_models.training.distributed import average
from dvis_models.training.matcher import HungarianMatcher, Targets

STAGES = ("segmenter", "tracker", "refiner")


@dataclass
class Clip:
    """One training clip: what a process consumes per iteration.

    ``images`` (T, 3, H, W) normalised and zero-padded model input; ``labels`` (N,) model labels of
    the clip's objects; ``masks`` (N, T, H, W) {0, 1}, padded like the images (empty where absent).
    """

    images: Tensor
    labels: Tensor
    masks: Tensor

    def to(self, device: torch.device) -> Clip:
        return Clip(self.images.to(device), self.labels.to(device), self.masks.to(device))

    def frame_targets(self, present_only: bool) -> list[Targets]:
        """One Targets per frame; ``present_only`` drops objects whose mask is empty in that frame."""
        targets = []
        for t in range(self.images.shape[0]):
            masks = self.masks[:, t]
            if present_only:
                keep = masks.flatten(1).any(1)
                targets.append(Targets(self.labels[keep], masks[keep]))
            else:
                targets.append(Targets(self.labels, masks))
        return targets


@dataclass
class LossConfig:
    """Matching costs and loss weights (DVIS ``configs/VIPSeg/*.yaml``, MASK_FORMER section); ``num_points`` per
    frame."""

    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75

    def matcher(self, frames: int = 1) -> HungarianMatcher:
        return HungarianMatcher(self.class_weight, self.mask_weight, self.dice_weight, self.num_points * frames)

    def criterion(self, num_classes: int, frames: int = 1) -> SetCriterion:
        return SetCriterion(
            num_classes, self.class_weight, self.mask_weight, self.dice_weight, self.no_object_weight,
            self.num_points * frames, self.oversample_ratio, self.importance_sample_ratio,
        )


def layer_predictions(output) -> list[Prediction]:
    """Auxiliary layers then the final layer, as (logits, masks) pairs."""
    aux = [(layer["pred_logits"], layer["pred_masks"]) for layer in output.aux_outputs]
    return aux + [(output.pred_logits, output.pred_masks)]


class TrainingStage(nn.Module):
    """Base: owns the model, freezes everything outside ``trainable``, keeps frozen parts in eval."""

    name = ""

    def __init__(self, model: nn.Module, loss: LossConfig, match_switch_iter: int):
        super().__init__()
        self.model = model
        self.loss = loss
        self.match_switch_iter = match_switch_iter
        trainable = set(self.trainable_prefixes())
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.split(".")[0] in trainable)

    def trainable_prefixes(self) -> tuple[str, ...]:
        raise NotImplementedError

    def frozen_modules(self) -> list[nn.Module]:
        names = {"backbone", "sem_seg_head", "tracker", "refiner"} - set(self.trainable_prefixes())
        return [getattr(self.model, name) for name in sorted(names) if getattr(self.model, name, None) is not None]

    def train(self, mode: bool = True) -> TrainingStage:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()  # frozen parts run as at inference (DVIS ``dvis/meta_architecture.py`` DVIS_online.forward)
        return self

    def num_masks(self, count: int, device: torch.device) -> float:
        """GT mask count averaged over processes, at least 1: the loss normaliser."""
        return max(average(float(count), device), 1.0)


class SegmenterStage(TrainingStage):
    name = "segmenter"

    def trainable_prefixes(self) -> tuple[str, ...]:
        return ("backbone", "sem_seg_head")

    def forward(self, clip: Clip, iteration: int) -> dict[str, Tensor]:
        output = self.model.segment(clip.images)
        targets = clip.frame_targets(present_only=True)
        matcher = self.loss.matcher()
        layers = layer_predictions(output)
        matches = [matcher(logits, masks, targets) for logits, masks in layers]
        num_masks = self.num_masks(sum(len(t.labels) for t in targets), clip.images.device)
        return self.loss.criterion(self.model.config.num_classes)(layers, targets, matches, num_masks)


class TrackerStage(TrainingStage):
    name = "tracker"

    def trainable_prefixes(self) -> tuple[str, ...]:
        return ("tracker",)

    def forward(self, clip: Clip, iteration: int) -> dict[str, Tensor]:
        with torch.no_grad():
            segmented = self.model.segment(clip.images)
        output = _track_clip(self.model.tracker, segmented, return_aux=True)
        targets = clip.frame_targets(present_only=False)
        matcher = self.loss.matcher()
        layers = layer_predictions(output)
        if iteration < self.match_switch_iter:
            reordered = _reorder_by_frame(segmented.pred_logits, segmented.pred_masks, output.match_indices)
            shared = matcher.match_first_appearance(*reordered, targets)
            matches = [[shared] * len(targets)] * len(layers)
        else:
            matches = [[matcher.match_first_appearance(logits, masks, targets)] * len(targets)
                       for logits, masks in layers]
        num_masks = self.num_masks(len(clip.labels) * len(targets), clip.images.device)
        return self.loss.criterion(self.model.config.num_classes)(layers, targets, matches, num_masks)


class RefinerStage(TrainingStage):
    name = "refiner"

    def trainable_prefixes(self) -> tuple[str, ...]:
        return ("refiner",)

    def forward(self, clip: Clip, iteration: int) -> dict[str, Tensor]:
        with torch.no_grad():
            segmented = self.model.segment(clip.images, with_masks=False)  # the refiner makes its own masks
            tracked = _track_clip(self.model.tracker, segmented)
            frame_embeds = self.model.tracker.frame_forward(segmented.pred_embds)
        output = self.model.refiner(tracked.pred_embds, frame_embeds, segmented.mask_features, return_aux=True)
        frames = clip.images.shape[0]
        targets = [Targets(clip.labels, clip.masks.flatten(1, 2))]  # (N, T*H, W): one stacked image
        layers = [(logits[None], _stack_frames(masks)) for logits, masks in layer_predictions(output)]
        matcher = self.loss.matcher(frames)
        if iteration < self.match_switch_iter:
            shared = matcher(tracked.pred_logits.mean(0)[None], _stack_frames(tracked.pred_masks), targets)
            matches = [shared] * len(layers)
        else:
            matches = [matcher(logits, masks, targets) for logits, masks in layers]
        num_masks = self.num_masks(len(clip.labels), clip.images.device)
        return self.loss.criterion(self.model.config.num_classes, frames)(layers, targets, matches, num_masks)


def _track_clip(tracker: nn.Module, segmented, return_aux: bool = False):
    """Track one clip as a new video: start from no state and leave none behind."""
    tracker.reset()
    output = tracker(segmented.pred_embds, segmented.mask_features, return_aux=return_aux)
    tracker.reset()
    return output


def _reorder_by_frame(logits: Tensor, masks: Tensor, indices: list) -> tuple[Tensor, Tensor]:
    """Gather each frame's segmenter predictions with the tracker's pre-matching index of that frame."""
    index = torch.stack([torch.as_tensor(i, dtype=torch.long) for i in indices]).to(logits.device)  # (T, Q)
    frames = torch.arange(index.shape[0], device=logits.device)[:, None]
    return logits[frames, index], masks[frames, index]


def _stack_frames(masks: Tensor) -> Tensor:
    """(T, Q, h, w) -> (1, Q, T*h, w): a clip as one tall image (frames stacked vertically)."""
    frames, queries, height, width = masks.shape
    return masks.permute(1, 0, 2, 3).reshape(1, queries, frames * height, width)


def build_stage(name: str, model: nn.Module, loss: LossConfig, match_switch_iter: int) -> TrainingStage:
    """The stage module for ``name`` (one of STAGES), freezing the parts that stage does not train."""
    classes = {cls.name: cls for cls in (SegmenterStage, TrackerStage, RefinerStage)}
    if name not in classes:
        raise ValueError(f"unknown training stage {name!r}; choose one of {', '.join(STAGES)}")
    if name == "refiner" and getattr(model, "refiner", None) is None:
        raise ValueError("the refiner stage needs an offline model (a preset with refiner layers)")
    return classes[name](model, loss, match_switch_iter)
