import numpy as np
import pytest
import torch
from PIL import Image

from dvis_models.preprocess import PIXEL_MEAN, PIXEL_STD, prepare_frames, resized_size


@pytest.mark.parametrize(
    "size, expected",
    [
        ((720, 1280), (720, 1280)),  # VIPSeg_720P landscape: identity
        ((1080, 1920), (720, 1280)),
        ((1280, 720), (1280, 720)),  # portrait: short side already 720
        ((720, 3000), (320, 1333)),  # very wide: long side capped at 1333
        ((481, 641), (720, 960)),  # int(x + 0.5) rounding: 641 * 720 / 481 = 959.501
        ((487, 641), (720, 948)),  # 641 * 720 / 487 = 947.68
    ],
)
def test_resized_size_follows_resize_shortest_edge(size, expected):
    assert resized_size(*size, short_edge=720, max_size=1333) == expected


def test_downscale_matches_pil_bilinear_within_one_level():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    frame = np.ascontiguousarray(np.repeat(np.repeat(frame, 4, 0), 4, 1))  # 360 x 640, some structure
    frame[::7] = 255
    prepared = prepare_frames([frame], short_edge=200, max_size=1333, pixel_mean=(0, 0, 0), pixel_std=(1, 1, 1),
                              size_divisibility=1)
    ours = prepared.images[0].permute(1, 2, 0).numpy()
    h, w = prepared.resized_size
    pil = np.asarray(Image.fromarray(frame).resize((w, h), Image.BILINEAR)).astype(np.float32)
    assert ours.shape == pil.shape
    assert np.abs(ours - pil).max() <= 1.0


def test_normalise_then_pad_with_zeros():
    frame = np.full((50, 70, 3), 200, np.uint8)
    prepared = prepare_frames([frame, frame], short_edge=50, max_size=1333)
    assert prepared.images.shape == (2, 3, 64, 96)
    assert prepared.resized_size == (50, 70) and prepared.original_size == (50, 70)
    assert prepared.padded_size == (64, 96)
    expected = (200 - torch.tensor(PIXEL_MEAN)) / torch.tensor(PIXEL_STD)
    torch.testing.assert_close(prepared.images[0, :, 10, 10], expected)
    assert torch.all(prepared.images[:, :, 50:, :] == 0) and torch.all(prepared.images[:, :, :, 70:] == 0)


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="same size"):
        prepare_frames([np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8)])
