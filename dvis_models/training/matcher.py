"""Hungarian matching of predictions to ground-truth objects (Mask2Former / DVIS semantics).

Every matcher here works on "images": one prediction set ``(Q, K+1)`` logits + ``(Q, h, w)`` mask
logits and one target set ``labels (N,)`` + ``masks (N, H, W)``. A video clip is either a batch of
frames (segmenter, tracker) or one image of stacked frames ``(T*h, w)`` (refiner); the stages do
that reshaping, so the costs stay one piece of code.

Cost = class_weight * (-p[label]) + mask_weight * mean BCE + dice_weight * dice, the mask terms on
``num_points`` uniformly random points shared by all masks of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from dvis_models.training.point_sampling import point_sample

Match = tuple[Tensor, Tensor]  # (prediction indices, target indices), int64, same length
_FORBIDDEN = 1e6  # cost of queries that are already taken (consistent matching)


@dataclass
class Targets:
    """Ground truth of one image: ``labels`` (N,) model labels, ``masks`` (N, H, W) {0, 1}."""

    labels: Tensor
    masks: Tensor


def pairwise_bce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean sigmoid BCE between every prediction (Q, P) and every target (N, P) -> (Q, N)."""
    positive = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    negative = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (positive @ targets.t() + negative @ (1 - targets).t()) / logits.shape[1]


def pairwise_dice(logits: Tensor, targets: Tensor) -> Tensor:
    """Dice loss (+1 smoothed) between every prediction (Q, P) and every target (N, P) -> (Q, N)."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.t()
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher:
    """One-to-one assignment of queries to targets minimising the Mask2Former cost."""

    def __init__(
        self, class_weight: float = 2.0, mask_weight: float = 5.0, dice_weight: float = 5.0, num_points: int = 12544
    ):
        self.class_weight = class_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.num_points = num_points

    @torch.no_grad()
    def cost(self, logits: Tensor, masks: Tensor, targets: Targets) -> Tensor:
        """Cost matrix (Q, N) for one image, float32 on the CPU.

        Autocast is off: under fp16 the BCE matmul sums over ``num_points`` points and overflows to inf.
        """
        with torch.autocast(masks.device.type, enabled=False):
            probs = logits.float().softmax(-1)
            class_cost = -probs[:, targets.labels.long()]
            coords = torch.rand(1, self.num_points, 2, device=masks.device)
            pred_points = point_sample(masks[None].float(), coords)[0]  # (Q, P)
            tgt_points = point_sample(targets.masks[None].to(masks.device).float(), coords)[0]  # (N, P)
            cost = (
                self.class_weight * class_cost
                + self.mask_weight * pairwise_bce(pred_points, tgt_points)
                + self.dice_weight * pairwise_dice(pred_points, tgt_points)
            )
        return torch.nan_to_num(cost.cpu(), nan=_FORBIDDEN)

    def match_image(self, logits: Tensor, masks: Tensor, targets: Targets) -> Match:
        """Match one image's predictions ``logits`` (Q, K+1), ``masks`` (Q, h, w) to ``targets``."""
        if len(targets.labels) == 0:
            return _empty_match()
        rows, cols = linear_sum_assignment(self.cost(logits, masks, targets).numpy())
        return _as_match(rows, cols)

    def __call__(self, pred_logits: Tensor, pred_masks: Tensor, targets: list[Targets]) -> list[Match]:
        """Match a batch: ``pred_logits`` (B, Q, K+1), ``pred_masks`` (B, Q, h, w), one Targets per image."""
        return [self.match_image(pred_logits[b], pred_masks[b], targets[b]) for b in range(len(targets))]

    def match_first_appearance(self, pred_logits: Tensor, pred_masks: Tensor, targets: list[Targets]) -> Match:
        """DVIS's consistent matching for a clip whose frames are the batch (tracker training).

        ``targets[t]`` lists the same N objects in every frame t (empty masks where absent). Each
        object is matched once, on the first frame where its mask is non-empty, to a query not
        already taken by an object matched earlier; the single assignment then holds for every
        frame, which is what teaches the tracker to keep an object in its slot. Objects absent from
        the whole clip are matched on the first frame.
        """
        num_objects = len(targets[0].labels)
        if num_objects == 0:
            return _empty_match()
        present = torch.stack([t.masks.flatten(1).any(1) for t in targets])  # (T, N)
        first_frame = present.float().argmax(0)  # first True; 0 when never present
        used_queries: list[int] = []
        rows_all: list[int] = []
        cols_all: list[int] = []
        for frame in sorted(set(first_frame.tolist())):
            objects = torch.nonzero(first_frame == frame).flatten()
            frame_targets = Targets(targets[frame].labels[objects], targets[frame].masks[objects])
            cost = self.cost(pred_logits[frame], pred_masks[frame], frame_targets)
            cost[used_queries] = _FORBIDDEN
            rows, cols = linear_sum_assignment(cost.numpy())
            used_queries += rows.tolist()
            rows_all += rows.tolist()
            cols_all += objects[cols].tolist()
        return _as_match(np.asarray(rows_all), np.asarray(cols_all))


def _as_match(rows: np.ndarray, cols: np.ndarray) -> Match:
    order = np.argsort(rows, kind="stable")
    return torch.as_tensor(rows[order], dtype=torch.int64), torch.as_tensor(cols[order], dtype=torch.int64)


def _empty_match() -> Match:
    return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
