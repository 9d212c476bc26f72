"""Official DVIS test-time input preparation: resize, normalise, pad.

Mirrors detectron2's ``ResizeShortestEdge`` + ``ImageList.from_tensors`` as DVIS uses them, because the released
weights were trained and evaluated on exactly this input. PIL's bilinear resize antialiases when shrinking; torch's
``interpolate(..., antialias=True)`` reproduces it (to within one grey level), so no PIL dependency is needed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dvis_models.transfer import to_device

PIXEL_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255 (ImageNet)
PIXEL_STD = (58.395, 57.12, 57.375)


def resized_size(height: int, width: int, short_edge: int, max_size: int) -> tuple[int, int]:
    """Output (h, w) of ResizeShortestEdge: short side to ``short_edge``, long side capped at ``max_size``."""
    scale = short_edge / min(height, width)
    if height < width:
        new_h, new_w = short_edge, scale * width
    else:
        new_h, new_w = scale * height, short_edge
    longest = max(new_h, new_w)
    if longest > max_size:
        shrink = max_size / longest
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


@dataclass
class PreparedFrames:
    """A batch of frames ready for the backbone, plus the sizes post-processing needs to undo the transform."""

    images: torch.Tensor  # (T, 3, Hp, Wp) float32, normalised, zero-padded after normalisation
    resized_size: tuple[int, int]  # (h, w) before padding
    original_size: tuple[int, int]  # (H, W) of the source frames

    @property
    def padded_size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])


def prepare_frames(
    frames: Sequence[np.ndarray],
    short_edge: int = 720,
    max_size: int = 1333,
    pixel_mean: Sequence[float] = PIXEL_MEAN,
    pixel_std: Sequence[float] = PIXEL_STD,
    size_divisibility: int = 32,
    device: torch.device | str = "cpu",
) -> PreparedFrames:
    """Turn RGB uint8 frames (all the same size) into the model's normalised, padded input batch."""
    if len(frames) == 0:
        raise ValueError("prepare_frames needs at least one frame")
    height, width = frames[0].shape[:2]
    if any(frame.shape != frames[0].shape for frame in frames):
        raise ValueError("all frames of a batch must have the same size")
    target = resized_size(height, width, short_edge, max_size)

    batch = to_device(np.ascontiguousarray(np.stack(frames)), torch.device(device))
    batch = batch.permute(0, 3, 1, 2).float()
    if target != (height, width):
        batch = F.interpolate(batch, size=target, mode="bilinear", align_corners=False, antialias=True)
        batch = batch.round_().clamp_(0, 255)  # PIL resizes uint8 -> uint8

    mean, std = _normalization(tuple(pixel_mean), tuple(pixel_std), batch.device)
    batch = (batch - mean) / std

    pad_h = (-target[0]) % size_divisibility
    pad_w = (-target[1]) % size_divisibility
    if pad_h or pad_w:
        batch = F.pad(batch, (0, pad_w, 0, pad_h), value=0.0)
    return PreparedFrames(batch, target, (height, width))


@functools.lru_cache(maxsize=4)
def _normalization(pixel_mean: tuple[float, ...], pixel_std: tuple[float, ...],
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, 1, 1) mean and std on ``device``, made once: each is a blocking host-to-device copy on a GPU."""
    return (torch.tensor(pixel_mean, device=device).view(1, 3, 1, 1),
            torch.tensor(pixel_std, device=device).view(1, 3, 1, 1))
