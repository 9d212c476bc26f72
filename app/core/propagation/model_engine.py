"""Mask propagation with the loaded DVIS model: a mask embedding fitted to the object, followed frame by frame.

Mask2Former predicts a mask as ``sigmoid(embedding · mask_features)``. Fitting an embedding (plus a bias)
to the keyframe mask by logistic regression over the segmenter's mask features gives a classifier of
"this object's pixels" in the model's own feature space. On each next frame the fitted embedding scores
the pixels; optical flow gives where the object should be (the model's features alone cannot tell
look-alikes apart), and the two are averaged inside the flow's neighbourhood. The embedding is then
re-fitted on the keyframe and the newly propagated mask together, so it follows changes of pose and
scale without drifting away from what the user marked.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from app.core.propagation.flow import FlowEngine, FrameSource, clean_mask
from app.core.propagation.segmenter import FrameOutput, SegmenterCache


def fit_embedding(samples: list[tuple[torch.Tensor, np.ndarray]], start: torch.Tensor | None = None,
                  iterations: int = 10) -> torch.Tensor:
    """Logistic regression (BCE + dice, small L2) of soft target maps on mask features; returns (C + 1,) weights."""
    features = torch.cat([f.flatten(1) for f, _ in samples], dim=1)  # (C, N)
    targets = torch.cat([torch.from_numpy(t).flatten() for _, t in samples])
    channels = features.shape[0]
    weights = (start.clone() if start is not None else torch.zeros(channels + 1)).requires_grad_(True)
    optimiser = torch.optim.LBFGS([weights], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        optimiser.zero_grad()
        logits = weights[:channels] @ features + weights[channels]
        probs = logits.sigmoid()
        dice = 1 - (2 * (probs * targets).sum() + 1) / (probs.sum() + targets.sum() + 1)
        loss = F.binary_cross_entropy_with_logits(logits, targets) + dice + 1e-3 * weights[:channels].square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(loss_fn)
    return weights.detach()


class ModelEngine:
    """Propagation by a fitted mask embedding over DVIS mask features, kept in place by optical flow."""

    name = "model"

    def __init__(self, segmenter: SegmenterCache, frames: FrameSource, appearance_weight: float = 0.7,
                 reach: float = 0.15):
        self.segmenter = segmenter
        self.flow = FlowEngine(frames)
        self.appearance_weight = appearance_weight
        self.reach = reach  # how far (fraction of the object's size) the mask may grow past the flow's
        self._keyframe: tuple[torch.Tensor, np.ndarray] | None = None
        self._weights: torch.Tensor | None = None

    def start(self, index: int, mask: np.ndarray) -> None:
        self.flow.start(index, mask)
        output = self.segmenter.get(index)
        self._keyframe = (output.mask_features, output.downsample(mask))
        self._weights = fit_embedding([self._keyframe])

    def appearance(self, output: FrameOutput) -> np.ndarray:
        """Per-pixel probability (frame size) that a pixel belongs to the object, from the fitted embedding."""
        channels = output.mask_features.shape[0]
        logits = torch.einsum("c,chw->hw", self._weights[:channels], output.mask_features) + self._weights[channels]
        return 1 / (1 + np.exp(-output.upsample(logits.numpy())))

    def step(self, index: int) -> np.ndarray:
        prior = self.flow.step(index)
        output = self.segmenter.get(index)
        appearance = self.appearance(output)
        prior_mask = prior >= 0.5
        area = int(prior_mask.sum())
        radius = max(1, int(self.reach * np.sqrt(max(area, 1))))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
        near = cv2.dilate(prior_mask.astype(np.uint8), disc)
        weight = self.appearance_weight
        soft = np.where(near.astype(bool), weight * appearance + (1 - weight) * prior, 0.0)
        soft = soft.astype(np.float32)
        mask = clean_mask(soft, prior)
        self.flow.start(index, mask)
        self._weights = fit_embedding([self._keyframe, (output.mask_features, output.downsample(mask))], self._weights)
        return np.where(mask, np.maximum(soft, 0.5), np.minimum(soft, 0.49)).astype(np.float32)
