"""2-D sine positional encoding of the Mask2Former segmenter (DETR style, no padding mask).

DVIS never uses a padding mask, so the encoding depends only on the map size and is computed from ``arange``
directly instead of cumulative sums over an all-false mask (the values are identical). Being a constant per map
size, it is computed once per (size, device, dtype) and reused: every segmenter call needs it for three levels in
the pixel decoder and three in the transformer decoder, about twenty small kernels each on a GPU.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """Sine/cosine encoding of normalized (y, x) pixel positions; output channels = 2 * num_pos_feats.

    Positions are ``1..H`` divided by ``H + eps`` and scaled to ``[0, 2π]``; sin and cos are interleaved per
    frequency and the result is ``cat(pos_y, pos_x)`` along channels, as in the official checkpoints' training.
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, scale: float = 2 * math.pi,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Encoding for feature map ``x`` of shape (N, C, H, W) -> (N, 2*num_pos_feats, H, W), dtype of ``x``."""
        n, _, h, w = x.shape
        pos = _cached_encoding(self.num_pos_feats, self.temperature, self.scale, self.eps, h, w, x.device, x.dtype)
        return pos.unsqueeze(0).expand(n, -1, -1, -1)

    def encode(self, h: int, w: int, device: torch.device | str = "cpu") -> Tensor:
        """Float32 encoding of an (h, w) map: (2*num_pos_feats, h, w)."""
        y = torch.arange(1, h + 1, dtype=torch.float32, device=device) / (h + self.eps) * self.scale
        x = torch.arange(1, w + 1, dtype=torch.float32, device=device) / (w + self.eps) * self.scale
        pos_y = self._embed(y)  # (h, F)
        pos_x = self._embed(x)  # (w, F)
        f = self.num_pos_feats
        return torch.cat(
            (pos_y.t()[:, :, None].expand(f, h, w), pos_x.t()[:, None, :].expand(f, h, w)), dim=0
        )

    def _embed(self, coord: Tensor) -> Tensor:
        """(L,) coordinates -> (L, F) with sin on even and cos on odd channels."""
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=coord.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats)
        angles = coord[:, None] / dim_t
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)


@functools.lru_cache(maxsize=8)  # a few levels of one or two frame sizes: a few MB each
def _cached_encoding(num_pos_feats: int, temperature: float, scale: float, eps: float, h: int, w: int,
                     device: torch.device, dtype: torch.dtype) -> Tensor:
    """``PositionEmbeddingSine.encode`` in ``dtype``, shared read-only (callers only read it), never tracked by
    autograd."""
    with torch.no_grad():
        encoder = PositionEmbeddingSine(num_pos_feats, temperature, scale, eps)
        return encoder.encode(h, w, device).to(dtype)
