"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch, with the official parameter names.

The sampling is bilinear with zero padding and align_corners=False, which is mathematically the official CUDA op.
Two formulations compute it (equal up to float summation order, a few 1e-7):
- on the CPU, one ``embedding_bag`` over all levels (:func:`ms_deform_attn_sample_gather`): every query's
  four bilinear corners of every point are weighted rows of one zero-bordered value table, summed in one pass;
- elsewhere, one ``grid_sample`` per level with all queries and points batched (:func:`ms_deform_attn_sample_grid`),
  in a (batch*heads, head_dim, points, queries) layout so that the weighted sum over points is a few contiguous
  fused multiply-adds instead of a broadcast product plus a reduction over a tiny axis.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ms_deform_attn_sample(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Attention-weighted bilinear samples of a multi-level value map.

    value: (N, S, M, D) with S = sum of H_l*W_l (levels flattened row-major, concatenated);
    sampling_locations: (N, Lq, M, L, P, 2) as (x, y) in [0, 1] of each level;
    attention_weights: (N, Lq, M, L, P). Returns (N, Lq, M*D).
    The gather formulation is 2-3x faster than ``grid_sample`` on a CPU; on CUDA ``grid_sample`` stays.
    """
    sample = ms_deform_attn_sample_gather if value.device.type == "cpu" else ms_deform_attn_sample_grid
    return sample(value, spatial_shapes, sampling_locations, attention_weights)


def ms_deform_attn_sample_grid(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """:func:`ms_deform_attn_sample` as one ``grid_sample`` per level."""
    n, _, m, d = value.shape
    _, lq, _, n_levels, n_points, _ = sampling_locations.shape
    value = value.permute(0, 2, 3, 1).reshape(n * m, d, -1)
    grids = (2 * sampling_locations - 1).permute(0, 2, 3, 4, 1, 5).reshape(n * m, n_levels, n_points, lq, 2)
    weights = attention_weights.permute(0, 2, 3, 4, 1).reshape(n * m, 1, n_levels, n_points, lq)
    out = value.new_zeros(n * m, d, lq)
    start = 0
    for level, (h, w) in enumerate(spatial_shapes):
        value_l = value[:, :, start:start + h * w].view(n * m, d, h, w)
        start += h * w
        sampled = F.grid_sample(value_l, grids[:, level].to(value.dtype), mode="bilinear", padding_mode="zeros",
                                align_corners=False)  # (N*M, D, P, Lq)
        for point in range(n_points):
            out.addcmul_(sampled[:, :, point], weights[:, :, level, point].to(value.dtype))
    return out.view(n, m * d, lq).transpose(1, 2)


def ms_deform_attn_sample_gather(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """:func:`ms_deform_attn_sample` as one ``embedding_bag`` (weighted sum of gathered rows) over all levels.

    The table's rows are the (frame, pixel, head) value vectors of every level, each level with a zero border
    one pixel wide before and two after, so no corner needs a bounds check: a coordinate clamped to
    [-1, size] keeps in-map corners and their weights unchanged and sends the others to the border (zero value:
    ``grid_sample``'s zero padding). A (frame, query, head) bag holds L*P*4 rows weighted by bilinear weight x
    attention weight; the output rows are already in (frame, query, head) order.
    """
    n, _, m, d = value.shape
    _, lq, _, n_levels, _, _ = sampling_locations.shape
    levels = value.split([h * w for h, w in spatial_shapes], dim=1)
    table = torch.cat([F.pad(level.reshape(n, h, w, m * d), (0, 0, 1, 2, 1, 2)).view(n, -1, m * d)
                       for level, (h, w) in zip(levels, spatial_shapes)], dim=1)
    padded_widths = [w + 3 for _, w in spatial_shapes]
    first_rows, rows = [], 0  # per level: row of its first in-map pixel in the padded table
    for (h, _), width in zip(spatial_shapes, padded_widths):
        first_rows.append(rows + width + 1)
        rows += (h + 3) * width
    dtype, device = sampling_locations.dtype, sampling_locations.device
    size = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=dtype, device=device).view(n_levels, 1, 2)
    xy = sampling_locations * size - 0.5  # pixel coordinates (align_corners=False)
    xy = torch.minimum(xy.clamp_(min=-1), size).movedim(-1, 0).contiguous()  # (2, N, Lq, M, L, P)
    corner = xy.floor()
    fx, fy = xy.sub_(corner)
    level_rows = torch.tensor(first_rows, dtype=dtype, device=device).view(n_levels, 1)
    level_widths = torch.tensor(padded_widths, dtype=dtype, device=device).view(n_levels, 1)
    pixel = torch.addcmul(corner[0], corner[1], level_widths).add_(level_rows).int()  # < 2**24: exact in float32
    frame_head = (torch.arange(n, dtype=torch.int32, device=device).view(n, 1, 1, 1, 1) * (rows * m)
                  + torch.arange(m, dtype=torch.int32, device=device).view(1, 1, m, 1, 1))
    corners = torch.tensor([[0, m, w * m, (w + 1) * m] for w in padded_widths], dtype=torch.int32,
                           device=device).view(n_levels, 1, 4)
    index = (pixel.mul_(m).add_(frame_head)[..., None] + corners).view(n * lq * m, -1)
    below = fy * attention_weights  # bilinear x attention weight of the corners (x0, y0+1) and (x0+1, y0+1)
    above = attention_weights - below
    weights = torch.stack((above - above * fx, above * fx, below - below * fx, below * fx), -1)
    out = F.embedding_bag(index, table.view(-1, d), per_sample_weights=weights.view(n * lq * m, -1).to(value.dtype),
                          mode="sum")
    return out.view(n, lq, m * d)


@functools.lru_cache(maxsize=8)
def _level_sizes(spatial_shapes: tuple[tuple[int, int], ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    """(L, 2) tensor of each level's (W, H), built once per set of sizes: every encoder layer of every segmenter
    call needs it, and a host-to-device copy per layer would cost the host a transfer each time. Shared
    read-only."""
    return torch.tensor([[w, h] for h, w in spatial_shapes], dtype=dtype).to(device)


class MSDeformAttn(nn.Module):
    """Deformable attention over ``n_levels`` feature maps: each head samples ``n_points`` per level."""

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init: offsets start on a ring of directions (one per head) growing with the point index.

        The ring is computed on the CPU, as in the official code, whatever device the module is built on (on the meta
        device ``arange`` would run a Python decomposition that imports ``torch._dynamo``)."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.n_heads, dtype=torch.float32, device="cpu") * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2)
        grid = grid.repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32, device="cpu").view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        input_flatten: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        padding_mask: Tensor | None = None,
    ) -> Tensor:
        """query (N, Lq, C); reference_points (N, Lq, L, 2) normalized (x, y); input_flatten (N, S, C);
        spatial_shapes: (H, W) per level; padding_mask (N, S) True where padded. Returns (N, Lq, C)."""
        n, lq, _ = query.shape
        value = self.value_proj(input_flatten)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.view(n, -1, self.n_heads, self.d_model // self.n_heads)
        offsets = self.sampling_offsets(query).view(n, lq, self.n_heads, self.n_levels, self.n_points, 2)
        weights = self.attention_weights(query).view(n, lq, self.n_heads, self.n_levels * self.n_points)
        weights = weights.softmax(-1).view(n, lq, self.n_heads, self.n_levels, self.n_points)
        # Offsets are in pixels of each level: normalize by (W, H).
        normalizer = _level_sizes(tuple(map(tuple, spatial_shapes)), offsets.device, offsets.dtype)
        locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        return self.output_proj(ms_deform_attn_sample(value, spatial_shapes, locations, weights))
