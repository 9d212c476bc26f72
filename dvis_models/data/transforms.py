"""Training augmentation for clips: one random transform drawn per clip, applied identically to every frame.

The same as DVIS's ``PanopticDatasetVideoMapper``: ResizeShortestEdge (short side chosen from a list,
long side capped), an optional random crop (offline/refiner stage; a plain random crop, since DVIS's
``RandomCrop_CategoryAreaConstraint`` runs with max area 1.0), then a horizontal flip with p = 0.5.
Images are resized bilinearly with antialiasing (PIL's uint8 bilinear, like :mod:`dvis_models.preprocess`),
segment-id maps with nearest neighbour (pixel centres), so ids never blend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dvis_models.preprocess import resized_size

OFFICIAL_SHORT_EDGES = tuple(range(480, 801, 32))  # (480, 512, ..., 800), INPUT.MIN_SIZE_TRAIN of the VIPSeg configs
OFFICIAL_MAX_SIZE = 1333
OFFICIAL_CROP = (608, 608)  # offline stage only


@dataclass(frozen=True)
class AugmentationConfig:
    """What a clip transform may do. The defaults are DVIS's online (tracker) VIPSeg settings."""

    short_edges: tuple[int, ...] = OFFICIAL_SHORT_EDGES
    max_size: int = OFFICIAL_MAX_SIZE
    crop: tuple[int, int] | None = None  # (h, w); larger than the resized image -> that side is kept whole
    flip_prob: float = 0.5


@dataclass(frozen=True)
class ClipTransform:
    """One drawn transform: resize to ``size``, crop the box (top, left, h, w) if any, flip if ``flip``."""

    size: tuple[int, int]
    crop_box: tuple[int, int, int, int] | None
    flip: bool

    def apply_images(self, images: torch.Tensor) -> torch.Tensor:
        """(T, 3, H, W) float32 RGB 0..255 -> transformed, same layout."""
        if tuple(images.shape[-2:]) != self.size:
            images = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False, antialias=True)
            images = images.round_().clamp_(0, 255)  # like PIL resizing uint8 -> uint8
        return self._crop_flip(images)

    def apply_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """(T, H, W) integer segment ids -> transformed with nearest-neighbour resizing."""
        height, width = ids.shape[-2:]
        if (height, width) != self.size:
            rows = _nearest_indices(height, self.size[0])
            cols = _nearest_indices(width, self.size[1])
            ids = ids[:, rows][:, :, cols]
        return self._crop_flip(ids)

    def _crop_flip(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.crop_box:
            top, left, h, w = self.crop_box
            tensor = tensor[..., top:top + h, left:left + w]
        if self.flip:
            tensor = tensor.flip(-1)
        return tensor.contiguous()


def _nearest_indices(source: int, target: int) -> torch.Tensor:
    """Source index of each target pixel centre (PIL / torch 'nearest-exact')."""
    centres = (torch.arange(target, dtype=torch.float64) + 0.5) * (source / target)
    return centres.floor().long().clamp_(max=source - 1)


def sample_transform(height: int, width: int, config: AugmentationConfig, rng: np.random.Generator) -> ClipTransform:
    """Draw the transform for a clip whose frames are ``height`` x ``width``."""
    short_edge = int(config.short_edges[int(rng.integers(len(config.short_edges)))])
    size = resized_size(height, width, short_edge, config.max_size)
    crop_box = None
    if config.crop is not None:
        crop_h, crop_w = min(config.crop[0], size[0]), min(config.crop[1], size[1])
        top = int(rng.integers(size[0] - crop_h + 1))
        left = int(rng.integers(size[1] - crop_w + 1))
        crop_box = (top, left, crop_h, crop_w)
    flip = bool(rng.random() < config.flip_prob)
    return ClipTransform(size, crop_box, flip)
