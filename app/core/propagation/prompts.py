"""A mask on one frame from a few clicks and/or a box: the model's own proposals, or GrabCut.

Model proposals are the segmenter's query masks on that frame, kept when they contain every positive
click and no negative one, and ranked by their class score times how well they fill the box (best first,
for cycling). GrabCut (OpenCV) seeded by the box and clicks works on any frame without a model and is
used when no proposal fits the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from app.core.errors import PromptError
from app.core.propagation.scores import jaccard

Point = tuple[int, int]  # (x, y) in pixels


@dataclass
class Prompt:
    positives: list[Point] = field(default_factory=list)
    negatives: list[Point] = field(default_factory=list)
    box: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1), x1 and y1 exclusive

    def check(self, height: int, width: int) -> None:
        """Raise a :class:`PromptError` saying what to fix when the prompt cannot be used on a height x width frame."""
        if not self.positives and self.box is None:
            raise PromptError("Click on the object (or drag a box around it) to get a mask.")
        for x, y in [*self.positives, *self.negatives]:
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(f"Click ({x}, {y}) is outside the frame ({width}x{height}); click inside the image.")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise PromptError(f"Box {self.box} is empty or outside the frame ({width}x{height}); "
                                  "drag a box of at least one pixel inside the image.")


@dataclass
class Proposal:
    mask: np.ndarray  # bool (H, W)
    score: float
    source: str  # "model" or "grabcut"
    category_id: int | None = None  # the model's class for the mask; None from GrabCut


def _fits(mask: np.ndarray, prompt: Prompt) -> bool:
    return (all(mask[y, x] for x, y in prompt.positives) and not any(mask[y, x] for x, y in prompt.negatives)
            and bool(mask.any()))


def _box_fit(mask: np.ndarray, box: tuple[int, int, int, int] | None) -> float:
    """IoU of the mask with the box region (1 with no box): a mask filling its box scores high."""
    if box is None:
        return 1.0
    x0, y0, x1, y1 = box
    region = np.zeros_like(mask)
    region[y0:y1, x0:x1] = True
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    tight = np.zeros_like(mask)
    tight[y : y + h, x : x + w] = True
    return jaccard(tight, region)


def rank_masks(masks: np.ndarray, class_scores: Sequence[float], labels: Sequence[int | None], prompt: Prompt,
               duplicate_iou: float = 0.9) -> list[Proposal]:
    """Masks (Q, H, W) that fit the prompt, best first; near-duplicates of a better one are dropped."""
    candidates = [Proposal(m, float(s) * _box_fit(m, prompt.box), "model", label)
                  for m, s, label in zip(masks, class_scores, labels) if _fits(m, prompt)]
    candidates.sort(key=lambda p: -p.score)
    kept: list[Proposal] = []
    for candidate in candidates:
        if all(jaccard(candidate.mask, k.mask) < duplicate_iou for k in kept):
            kept.append(candidate)
    return kept


def model_proposals(output, label_to_category: Sequence[int], prompt: Prompt) -> list[Proposal]:
    """Ranked proposals from a frame's segmenter output (:class:`~app.core.propagation.segmenter.FrameOutput`)."""
    masks = output.upsample(output.query_logits.numpy()) > 0
    labels = output.class_probs.argmax(1)
    scores = output.class_probs.max(1)
    return rank_masks(masks, scores, [label_to_category[int(label)] for label in labels], prompt)


def grabcut_mask(image: np.ndarray, prompt: Prompt, iterations: int = 4, reach: float = 0.15) -> Proposal:
    """GrabCut seeded by the prompt: the box is probable foreground (outside it background), positive clicks
    foreground and negative ones background; with clicks only, a disc of ``reach`` x the frame size around them."""
    height, width = image.shape[:2]
    radius = max(1, round(0.01 * max(height, width)))
    seeds = np.full((height, width), cv2.GC_BGD if prompt.box else cv2.GC_PR_BGD, np.uint8)
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        seeds[y0:y1, x0:x1] = cv2.GC_PR_FGD
    else:
        for x, y in prompt.positives:
            cv2.circle(seeds, (x, y), max(2, round(reach * min(height, width))), cv2.GC_PR_FGD, -1)
    for x, y in prompt.positives:
        cv2.circle(seeds, (x, y), radius, cv2.GC_FGD, -1)
    for x, y in prompt.negatives:
        cv2.circle(seeds, (x, y), radius, cv2.GC_BGD, -1)
    mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    if (seeds == cv2.GC_BGD).any() or (seeds == cv2.GC_PR_BGD).any():
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        cv2.grabCut(bgr, seeds, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
        mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    if prompt.positives:  # keep the parts the user clicked on
        _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        clicked = {int(labels[y, x]) for x, y in prompt.positives} - {0}
        mask = np.isin(labels, list(clicked)) if clicked else mask
    return Proposal(mask, 0.0, "grabcut")


def propose(image: np.ndarray, prompt: Prompt, output=None, label_to_category: Sequence[int] = ()) -> list[Proposal]:
    """Proposals for the prompt, best first: the model's when ``output`` is given and one fits, else GrabCut's."""
    prompt.check(*image.shape[:2])
    proposals = model_proposals(output, label_to_category, prompt) if output is not None else []
    return proposals or [grabcut_mask(image, prompt)]
