"""AdamW parameter groups and the learning-rate schedule of the DVIS recipe (DVIS ``train_net_video.py``
``build_optimizer`` and the SOLVER section of ``configs/VIPSeg/Base-VIPSeg-VideoInstanceSegmentation.yaml``).

No weight decay on normalisation layers, embeddings and Swin's position tables (decaying them only
fights their scale); the backbone learns 10x slower because it starts pretrained. The schedule is a
plain function of the iteration, so resuming needs nothing but the iteration number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

_NO_DECAY_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                     nn.Embedding)
_NO_DECAY_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def parameter_groups(
    model: nn.Module, lr: float, weight_decay: float, backbone_lr_multiplier: float
) -> list[dict]:
    """Trainable parameters split by (backbone or not) x (decayed or not), each with its base lr."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            full_name = f"{module_name}.{name}" if module_name else name
            in_backbone = full_name.startswith("backbone.") or ".backbone." in full_name
            decayed = not isinstance(module, _NO_DECAY_MODULES) and not any(key in full_name for key in _NO_DECAY_NAMES)
            groups.setdefault((in_backbone, decayed), []).append(parameter)
    return [
        {
            "params": params,
            "lr": lr * (backbone_lr_multiplier if in_backbone else 1.0),
            "initial_lr": lr * (backbone_lr_multiplier if in_backbone else 1.0),
            "weight_decay": weight_decay if decayed else 0.0,
        }
        for (in_backbone, decayed), params in sorted(groups.items())
    ]


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float = 0.05, backbone_lr_multiplier: float = 0.1
) -> torch.optim.AdamW:
    groups = parameter_groups(model, lr, weight_decay, backbone_lr_multiplier)
    if not groups:
        raise ValueError("the model has no trainable parameters for this stage")
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


@dataclass
class LRSchedule:
    """Linear warm-up, then multi-step decay (detectron2's WarmupMultiStepLR) or cosine to zero."""

    max_iter: int
    kind: str = "multistep"  # "multistep" | "cosine"
    warmup_iters: int = 10
    warmup_factor: float = 1.0  # the DVIS configs use 1.0: no warm-up effect
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def factor(self, iteration: int) -> float:
        """Multiplier of every group's base lr at ``iteration`` (0-based)."""
        warmup = 1.0
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            warmup = self.warmup_factor * (1 - alpha) + alpha
        if self.kind == "cosine":
            return warmup * 0.5 * (1.0 + math.cos(math.pi * iteration / self.max_iter))
        if self.kind == "multistep":
            return warmup * self.gamma ** sum(1 for step in self.milestones if iteration >= step)
        raise ValueError(f"unknown lr schedule {self.kind!r}; use 'multistep' or 'cosine'")

    def apply(self, optimizer: torch.optim.Optimizer, iteration: int) -> float:
        """Set every group's lr for ``iteration``; returns the factor used."""
        factor = self.factor(iteration)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        return factor
