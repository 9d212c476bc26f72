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


def grabcut_seeds(prompt: Prompt, height: int, width: int, reach: float = 0.15) -> np.ndarray:
    """GrabCut's seed map for the prompt: the box is probable foreground (outside it background), positive
    clicks foreground and negative ones background; with clicks only, a disc of ``reach`` x the frame size
    around each positive click is probable foreground and the rest probable background."""
    radius = max(1, round(0.01 * max(height, width)))
    seeds = np.full((height, width), cv2.GC_BGD if prompt.box else cv2.GC_PR_BGD, np.uint8)
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        seeds[y0:y1, x0:x1] = cv2.GC_PR_FGD
    else:
        for x, y in prompt.positives:
            cv2.circle(seeds, (x, y), _reach(reach, height, width), cv2.GC_PR_FGD, -1)
    for x, y in prompt.positives:
        cv2.circle(seeds, (x, y), radius, cv2.GC_FGD, -1)
    for x, y in prompt.negatives:
        cv2.circle(seeds, (x, y), radius, cv2.GC_BGD, -1)
    return seeds


def _reach(reach: float, height: int, width: int) -> int:
    return max(2, round(reach * min(height, width)))


def grabcut_region(prompt: Prompt, height: int, width: int, reach: float = 0.15) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): where GrabCut runs. Its cost grows with the pixels it models, and far from the prompt
    they only blur the colour models, so it runs on the box (or the positive clicks' probable-foreground discs)
    plus a margin as wide again on each side (at least 16 pixels), which keeps background around the object."""
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
    else:
        xs, ys = [x for x, _ in prompt.positives], [y for _, y in prompt.positives]
        disc = _reach(reach, height, width)
        x0, y0, x1, y1 = min(xs) - disc, min(ys) - disc, max(xs) + disc + 1, max(ys) + disc + 1
    margin_x, margin_y = max(16, x1 - x0), max(16, y1 - y0)
    return max(0, x0 - margin_x), max(0, y0 - margin_y), min(width, x1 + margin_x), min(height, y1 + margin_y)


def grabcut_mask(image: np.ndarray, prompt: Prompt, iterations: int = 4, reach: float = 0.15) -> Proposal:
    """GrabCut seeded by the prompt (:func:`grabcut_seeds`), run on :func:`grabcut_region` and pasted back into
    an empty frame-size mask; only the parts the user clicked on are kept."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = grabcut_region(prompt, height, width, reach)
    seeds = np.ascontiguousarray(grabcut_seeds(prompt, height, width, reach)[y0:y1, x0:x1])
    if (seeds == cv2.GC_BGD).any() or (seeds == cv2.GC_PR_BGD).any():
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        bgr = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
        cv2.grabCut(bgr, seeds, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
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
