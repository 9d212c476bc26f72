"""Model-free mask propagation: OpenCV DIS dense optical flow warps the mask from frame to frame.

Flow is computed on grey frames shrunk to a working size (long side ``work_size``), which keeps a 720p step
within a few tens of milliseconds on a CPU; the mask is warped at that size (backward warp: each pixel of
the new frame looks up where it came from in the previous one) and scaled back up for the caller.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

FrameSource = Callable[[int], np.ndarray]  # frame index -> (H, W, 3) uint8 RGB

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class FlowWarper:
    """Backward-warps soft masks between frames of one video at a reduced working resolution."""

    def __init__(self, frames: FrameSource, work_size: int = 480, preset: str = "medium", colour_tolerance: int = 40):
        self.frames = frames
        self.colour_tolerance = colour_tolerance
        self.work_size = work_size
        self.dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self._grey: dict[int, np.ndarray] = {}
        self._grid: np.ndarray | None = None

    def grey(self, index: int) -> np.ndarray:
        """The frame at working size, grey (the last few are kept: each is used by two steps)."""
        if index not in self._grey:
            frame = self.frames(index)
            height, width = frame.shape[:2]
            scale = self.work_size / max(height, width)
            size = (max(8, round(width * scale)), max(8, round(height * scale)))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size != (width, height) else frame
            if len(self._grey) > 4:
                self._grey.pop(next(iter(self._grey)))
            self._grey[index] = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY)
        return self._grey[index]

    def warp(self, soft: np.ndarray, source: int, target: int) -> np.ndarray:
        """``soft`` (working size, float32 in [0, 1]) on frame ``source``, moved onto frame ``target``.

        Pixels whose backward flow the forward flow does not undo, or whose grey level differs from where
        they came from by more than ``colour_tolerance`` (background uncovered as the object moves away or
        leaves the frame), get nothing: otherwise the mask would stay behind where the object was.
        """
        backward = self.dis.calc(self.grey(target), self.grey(source), None)  # target pixel -> where it was
        forward = self.dis.calc(self.grey(source), self.grey(target), None)
        height, width = backward.shape[:2]
        if self._grid is None or self._grid.shape[:2] != (height, width):
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
            self._grid = np.dstack([xs, ys])
        where = self._grid + backward
        warped = cv2.remap(soft, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0)
        back_again = cv2.remap(forward, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cycle = np.linalg.norm(backward + back_again, axis=2)
        scale = width / self.frames(source).shape[1]  # working pixels per frame pixel
        consistent = cycle <= 2.0 * scale + 0.5 * np.linalg.norm(backward, axis=2)  # lenient: DIS is noisy
        came_from = cv2.remap(self.grey(source), where[..., 0], where[..., 1], cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        consistent &= np.abs(came_from.astype(np.int16) - self.grey(target)) <= self.colour_tolerance
        return np.where(consistent, warped, 0).astype(np.float32)

    def to_work(self, mask: np.ndarray, index: int) -> np.ndarray:
        """A full-size mask as a soft mask at working size."""
        height, width = self.grey(index).shape
        return cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def to_full(soft: np.ndarray, height: int, width: int) -> np.ndarray:
    """A working-size soft mask scaled back to the frame size."""
    if soft.shape == (height, width):
        return soft
    return cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR)


def clean_mask(soft: np.ndarray, reference: np.ndarray | None = None, hole_fraction: float = 0.02) -> np.ndarray:
    """Threshold a soft mask and tidy it: drop specks far from the object and fill small holes.

    Components are kept when they overlap ``reference`` (the warped mask before thresholding, dilated) or
    are at least a tenth of the largest one; holes smaller than ``hole_fraction`` of the mask are filled.
    """
    mask = (soft >= 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count > 2:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = areas >= 0.1 * areas.max()
        if reference is not None:
            near = np.unique(labels[(reference >= 0.5) & (labels > 0)])
            keep[near[near > 0] - 1] |= True
        mask = np.isin(labels, np.flatnonzero(keep) + 1).astype(np.uint8)
    total = int(mask.sum())
    if total:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - mask, connectivity=4)
        height, width = mask.shape
        x, y, w, h, area = stats[1:].T
        inside = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
        holes = np.flatnonzero(inside & (area <= hole_fraction * total)) + 1
        mask[np.isin(labels, holes)] = 1
    return mask.astype(bool)


class FlowEngine:
    """Propagation by optical flow alone: always available, no model needed."""

    name = "flow"

    def __init__(self, frames: FrameSource, work_size: int = 480, preset: str = "medium"):
        self.warper = FlowWarper(frames, work_size, preset)
        self._soft: np.ndarray | None = None
        self._index = 0
        self._size = (0, 0)

    def start(self, index: int, mask: np.ndarray) -> None:
        self._size = mask.shape[:2]
        self._index = index
        self._soft = self.warper.to_work(mask, index)

    def step(self, index: int) -> np.ndarray:
        """The object's soft mask (full size, float32) on ``index``, next to the last frame given or stepped."""
        warped = self.warper.warp(self._soft, self._index, index)
        cleaned = clean_mask(warped)
        self._soft = np.where(cleaned, np.maximum(warped, 0.5), np.minimum(warped, 0.49)).astype(np.float32)
        self._index = index
        return to_full(self._soft, *self._size)
