"""Point sampling for mask losses (PointRend style): losses on a few thousand points, not whole masks.

Mask2Former computes both its matching costs and its mask losses on sampled points instead of full
resolution masks, which makes training memory independent of the image size. Coordinates are in
[0, 1] x [0, 1] as (x, y), sampled with ``grid_sample`` (bilinear, ``align_corners=False``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(masks: Tensor, coords: Tensor) -> Tensor:
    """Bilinearly sample ``masks`` (N, C, H, W) at ``coords`` (N, P, 2) in [0, 1]; returns (N, C, P)."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)  # (N, P, 1, 2) in grid_sample's [-1, 1]
    return F.grid_sample(masks, grid.to(masks.dtype), mode="bilinear", align_corners=False).squeeze(3)


def uncertainty(logits: Tensor) -> Tensor:
    """Points whose logit is closest to 0 are the most uncertain: score = -|logit|."""
    return -logits.abs()


def uncertain_point_coords(
    logits: Tensor, num_points: int, oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75
) -> Tensor:
    """Choose ``num_points`` points per mask of ``logits`` (N, 1, H, W), biased towards uncertain ones.

    ``oversample_ratio`` x ``num_points`` uniform candidates are scored with :func:`uncertainty`;
    the ``importance_sample_ratio`` most uncertain part of the budget is taken from them and the rest
    is drawn uniformly, so the loss still sees easy regions. Returns (N, num_points, 2).
    """
    num_masks = logits.shape[0]
    num_candidates = int(num_points * oversample_ratio)
    candidates = torch.rand(num_masks, num_candidates, 2, device=logits.device)
    scores = uncertainty(point_sample(logits.float(), candidates))[:, 0]  # (N, candidates)
    num_uncertain = int(importance_sample_ratio * num_points)
    top = scores.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, top.unsqueeze(-1).expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        chosen = torch.cat([chosen, torch.rand(num_masks, num_random, 2, device=logits.device)], dim=1)
    return chosen
