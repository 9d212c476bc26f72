"""Mask2Former set losses: class cross-entropy + point-sampled mask BCE and dice, with deep supervision.

The criterion only computes losses for assignments it is given; which prediction is matched to which
object (per frame, once per clip, on another model's outputs...) is the stage's decision, see
``stages.py``. Mask losses are summed over matched masks and divided by ``num_masks``, the number of
ground-truth masks averaged over all training processes, as in the reference recipe.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dvis_models.training.matcher import Match, Targets
from dvis_models.training.point_sampling import point_sample, uncertain_point_coords

Prediction = tuple[Tensor, Tensor]  # pred_logits (B, Q, K+1), pred_masks (B, Q, h, w)


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-mask dice loss (+1 smoothed) of (M, P) logits against (M, P) {0, 1} targets -> (M,)."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


class SetCriterion:
    """Weighted Mask2Former losses; ``__call__`` returns named, already weighted loss terms."""

    def __init__(
        self,
        num_classes: int,
        class_weight: float = 2.0,
        mask_weight: float = 5.0,
        dice_weight: float = 5.0,
        no_object_weight: float = 0.1,
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
    ):
        self.num_classes = num_classes
        self.weights = {"loss_ce": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
        self.class_weights = torch.ones(num_classes + 1)
        self.class_weights[-1] = no_object_weight
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    def __call__(
        self, layers: list[Prediction], targets: list[Targets], matches: list[list[Match]], num_masks: float
    ) -> dict[str, Tensor]:
        """Losses of every prediction layer; the last layer is the final output, the others auxiliary.

        ``matches[i]`` holds one Match per image for ``layers[i]``. Keys: ``loss_ce``, ``loss_mask``,
        ``loss_dice`` for the final layer and ``loss_ce_0``... for the auxiliary layers in order.
        """
        losses: dict[str, Tensor] = {}
        for i, ((logits, masks), layer_matches) in enumerate(zip(layers, matches)):
            suffix = "" if i == len(layers) - 1 else f"_{i}"
            terms = {"loss_ce": self.class_loss(logits, targets, layer_matches)}
            terms.update(self.mask_losses(masks, targets, layer_matches, num_masks))
            losses.update({name + suffix: self.weights[name] * value for name, value in terms.items()})
        return losses

    def class_loss(self, logits: Tensor, targets: list[Targets], matches: list[Match]) -> Tensor:
        """Cross-entropy over K+1 classes; unmatched queries are "no object" (down-weighted)."""
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.long, device=logits.device)
        for b, (rows, cols) in enumerate(matches):
            target_classes[b, rows.to(logits.device)] = targets[b].labels[cols].to(logits.device).long()
        weight = self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float().transpose(1, 2), target_classes, weight)

    def mask_losses(
        self, masks: Tensor, targets: list[Targets], matches: list[Match], num_masks: float
    ) -> dict[str, Tensor]:
        """Point-sampled sigmoid BCE and dice of matched masks, points biased to uncertain regions."""
        predicted = torch.cat([masks[b, rows.to(masks.device)] for b, (rows, _) in enumerate(matches)])
        if predicted.shape[0] == 0:  # keep the graph connected so every process runs the same backward
            zero = masks.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero}
        wanted = torch.cat([targets[b].masks[cols] for b, (_, cols) in enumerate(matches)])
        predicted = predicted[:, None].float()
        wanted = wanted[:, None].to(predicted)
        with torch.no_grad():
            coords = uncertain_point_coords(
                predicted, self.num_points, self.oversample_ratio, self.importance_sample_ratio
            )
            point_targets = point_sample(wanted, coords)[:, 0]
        point_logits = point_sample(predicted, coords)[:, 0]
        bce = F.binary_cross_entropy_with_logits(point_logits, point_targets, reduction="none").mean(1)
        return {
            "loss_mask": bce.sum() / num_masks,
            "loss_dice": dice_loss(point_logits, point_targets).sum() / num_masks,
        }
