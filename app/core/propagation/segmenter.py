"""The segmenter's per-frame outputs for prompts and the model propagation engine, cached while a video is open.

Runs only the per-frame part of DVIS (backbone + Mask2Former head) on one frame at the model's test
resolution. Everything is cropped to the unpadded image area so masks map straight onto the frame.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from dvis_models.model import DVISModel
from dvis_models.preprocess import prepare_frames


@dataclass
class FrameOutput:
    """One frame's segmenter outputs (Q queries, C mask channels, h x w = a quarter of the model input)."""

    mask_features: torch.Tensor  # (C, h, w)
    query_logits: torch.Tensor  # (Q, h, w) mask logits of each query
    class_probs: np.ndarray  # (Q, K) class probabilities, "no object" left out
    frame_size: tuple[int, int]  # (H, W) of the video frame

    def upsample(self, logits: np.ndarray) -> np.ndarray:
        """(…, h, w) low-resolution maps -> (…, H, W) at the frame size (bilinear)."""
        height, width = self.frame_size
        if logits.ndim == 2:
            return cv2.resize(logits, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in logits])

    def downsample(self, mask: np.ndarray) -> np.ndarray:
        """A frame-size mask as a soft (h, w) float32 map over the feature grid."""
        h, w = self.mask_features.shape[-2:]
        return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)


class SegmenterCache:
    """Per-frame segmenter outputs of one video, most recent ``max_frames`` kept."""

    def __init__(self, model: DVISModel, frames: Callable[[int], np.ndarray], max_frames: int = 128):
        self.model = model.eval()
        self.frames = frames
        self.max_frames = max_frames
        self._outputs: OrderedDict[int, FrameOutput] = OrderedDict()

    @torch.no_grad()
    def get(self, index: int) -> FrameOutput:
        if index in self._outputs:
            self._outputs.move_to_end(index)
            return self._outputs[index]
        frame = self.frames(index)
        config = self.model.config
        device = next(self.model.parameters()).device
        prepared = prepare_frames([frame], config.test_short_edge, config.test_max_size, config.pixel_mean,
                                  config.pixel_std, config.size_divisibility, device=device)
        segmented = self.model.segment(prepared.images)
        stride_h = prepared.images.shape[-2] / segmented.mask_features.shape[-2]
        stride_w = prepared.images.shape[-1] / segmented.mask_features.shape[-1]
        h = max(1, int(np.ceil(prepared.resized_size[0] / stride_h)))
        w = max(1, int(np.ceil(prepared.resized_size[1] / stride_w)))
        probs = segmented.pred_logits[0].float().softmax(-1)[:, :-1]
        output = FrameOutput(segmented.mask_features[0, :, :h, :w].float().cpu(),
                             segmented.pred_masks[0, :, :h, :w].float().cpu(), probs.cpu().numpy(), frame.shape[:2])
        self._outputs[index] = output
        if len(self._outputs) > self.max_frames:
            self._outputs.popitem(last=False)
        return output
