"""Feeding dataset clips to the trainer: one deterministic clip per (iteration, process rank).

The dataset (``dvis_models.data.VIPSegClipDataset``) gives RGB 0..255 clips of any size; the model wants
them normalised and zero-padded to its size divisibility, with the target masks padded the same way
(point sampling works in normalised coordinates of the padded image).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dvis_models.training.stages import Clip


def to_model_input(
    images: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor,
    pixel_mean: Sequence[float], pixel_std: Sequence[float], size_divisibility: int,
) -> Clip:
    """Normalise (T, 3, H, W) 0..255 images, then zero-pad images and (N, T, H, W) masks to the divisibility."""
    mean = torch.tensor(pixel_mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(pixel_std, dtype=torch.float32).view(1, 3, 1, 1)
    images = (images.float() - mean) / std
    pad_h = (-images.shape[-2]) % size_divisibility
    pad_w = (-images.shape[-1]) % size_divisibility
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
        masks = F.pad(masks, (0, pad_w, 0, pad_h))
    return Clip(images, labels.long(), masks.float())


class DatasetClips:
    """``(iteration, rank) -> Clip``: sample ``iteration * world_size + rank`` of a clip dataset.

    Each sample of the dataset depends only on its index, so a run (and a resumed run) sees the same
    clips whatever the timing; different ranks read different clips.
    """

    def __init__(self, dataset, world_size: int, pixel_mean: Sequence[float], pixel_std: Sequence[float],
                 size_divisibility: int = 32):
        self.dataset = dataset
        self.world_size = world_size
        self.pixel_mean = pixel_mean
        self.pixel_std = pixel_std
        self.size_divisibility = size_divisibility

    def __call__(self, iteration: int, rank: int) -> Clip:
        sample = self.dataset[(iteration * self.world_size + rank) % len(self.dataset)]
        return to_model_input(sample.images, sample.masks, sample.labels,
                              self.pixel_mean, self.pixel_std, self.size_divisibility)
