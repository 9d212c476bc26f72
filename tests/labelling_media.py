"""A real encoded video for the labelling tests: a textured square gliding over a textured background.

Flat-coloured shapes (``tests.videos.draw_frame``) give optical flow nothing to follow inside them; this clip
looks like the footage propagation is for, and ``square_mask`` is its exact ground truth.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

SIZE = (160, 120)  # width, height
SQUARE = 36  # side in pixels


def _textures(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    width, height = size
    background = cv2.GaussianBlur((rng.random((height, width, 3)) * 140).astype(np.uint8), (0, 0), 2.5)
    square = cv2.GaussianBlur((110 + rng.random((SQUARE, SQUARE, 3)) * 145).astype(np.uint8), (0, 0), 1.2)
    return background, square


def square_origin(index: int) -> tuple[int, int]:
    """(x, y) of the square's top-left corner on frame ``index``: 3 px right and 1 px down per frame."""
    return 12 + 3 * index, 30 + index


def square_mask(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    width, height = size
    mask = np.zeros((height, width), bool)
    x, y = square_origin(index)
    mask[y : y + SQUARE, x : x + SQUARE] = True
    return mask


def square_frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    background, square = _textures(size)
    frame = background.copy()
    x, y = square_origin(index)
    visible = frame[y : y + SQUARE, x : x + SQUARE]
    visible[:] = square[: visible.shape[0], : visible.shape[1]]
    return frame


def make_square_video(path: str | Path, num_frames: int, size: tuple[int, int] = SIZE) -> Path:
    """Encode ``num_frames`` frames of ``square_frame`` with x264 (near-lossless) and return the path."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"crf": "10", "g": "8"}
        for index in range(num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(square_frame(index, size), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
