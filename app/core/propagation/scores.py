"""Mask quality measures of video object segmentation (DAVIS): region J (IoU) and boundary F."""

from __future__ import annotations

import cv2
import numpy as np


def jaccard(prediction: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks; 1.0 when both are empty (DAVIS convention)."""
    union = np.logical_or(prediction, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(prediction, truth).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    mask = mask.astype(np.uint8)
    eroded = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (mask - eroded).astype(bool)


def boundary_f(prediction: np.ndarray, truth: np.ndarray, tolerance: float = 0.008) -> float:
    """DAVIS boundary F-measure: boundary pixels matched within ``tolerance`` x the image diagonal."""
    radius = max(1, int(np.ceil(tolerance * np.hypot(*truth.shape))))
    predicted, expected = _boundary(prediction), _boundary(truth)
    if not predicted.any() and not expected.any():
        return 1.0
    if not predicted.any() or not expected.any():
        return 0.0
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near_expected = cv2.dilate(expected.astype(np.uint8), disc).astype(bool)
    near_predicted = cv2.dilate(predicted.astype(np.uint8), disc).astype(bool)
    precision = (predicted & near_expected).sum() / predicted.sum()
    recall = (expected & near_predicted).sum() / expected.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))
