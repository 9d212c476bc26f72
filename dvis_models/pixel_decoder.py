"""Mask2Former's multi-scale deformable-attention pixel decoder (``sem_seg_head.pixel_decoder``).

res5/res4/res3 go through a deformable transformer encoder; res2 is merged in by one FPN step; the 1/4 map gives
the mask features. It always runs in float32 (autocast disabled), as the official model does, because deformable
sampling and GroupNorm are unstable in half precision.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dvis_models.ms_deform_attn import MSDeformAttn
from dvis_models.position_encoding import PositionEmbeddingSine

# Backbone levels fed to the deformable encoder (coarse to fine, the official level order) and the FPN level.
ENCODER_FEATURES = ("res5", "res4", "res3")
FPN_FEATURE = "res2"
# Tokens per FFN chunk in the encoder. The whole (tokens, 1024) hidden activation of a 480p frame is 35 MB, over
# glibc's 32 MB mmap threshold: each layer would map fresh pages and fault them in. A 4096-token chunk (16 MB)
# reuses heap memory and stays closer to the cache; the FFN is row-wise, so the result is the same
# (measured bit-identical; 16 % faster per FFN at 480p, 26 % at 720p on one thread). CPU only: on a GPU each chunk
# is three more kernel launches (15 chunks per layer for three 720p frames) and memory is no concern.
FFN_CHUNK_TOKENS = 4096


class ConvGN(nn.Conv2d):
    """Bias-free conv followed by its ``norm`` GroupNorm (detectron2 ``Conv2d(norm=...)`` key layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm_groups: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.GroupNorm(norm_groups, out_channels)
        nn.init.kaiming_uniform_(self.weight, a=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(super().forward(x))


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm deformable self-attention + FFN over the flattened multi-level tokens."""

    def __init__(self, d_model: int, dim_feedforward: int, n_levels: int, n_heads: int, n_points: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.dropout1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout2 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.dropout3 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor,
                spatial_shapes: list[tuple[int, int]]) -> Tensor:
        attn = self.self_attn(src + pos, reference_points, src, spatial_shapes)
        src = self.norm1(src + self.dropout1(attn))
        parts = [self.linear2(self.dropout2(self.linear1(chunk).relu_())) for chunk in ffn_chunks(src.flatten(0, 1))]
        ffn = (parts[0] if len(parts) == 1 else torch.cat(parts)).view_as(src)
        return self.norm2(src + self.dropout3(ffn))


def ffn_chunks(tokens: Tensor) -> list[Tensor] | tuple[Tensor, ...]:
    """The row chunks the encoder FFN runs on: ``FFN_CHUNK_TOKENS`` rows on the CPU, one piece elsewhere."""
    return tokens.split(FFN_CHUNK_TOKENS) if tokens.device.type == "cpu" else [tokens]


class MSDeformAttnEncoder(nn.Module):
    """Stack of deformable encoder layers (official ``layers`` attribute)."""

    def __init__(self, num_layers: int, **layer_kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MSDeformAttnEncoderLayer(**layer_kwargs) for _ in range(num_layers))

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor,
                spatial_shapes: list[tuple[int, int]]) -> Tensor:
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """Holds ``level_embed`` and ``encoder``; flattens the levels and runs the encoder."""

    def __init__(self, d_model: int, n_heads: int, num_encoder_layers: int, dim_feedforward: int, dropout: float,
                 num_feature_levels: int, enc_n_points: int) -> None:
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self.encoder = MSDeformAttnEncoder(
            num_encoder_layers, d_model=d_model, dim_feedforward=dim_feedforward, n_levels=num_feature_levels,
            n_heads=n_heads, n_points=enc_n_points, dropout=dropout,
        )
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module.reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, srcs: list[Tensor], pos_embeds: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """srcs/pos_embeds: per level (N, C, H, W). Returns tokens (N, sum HW, C) and the (H, W) per level."""
        shapes = [(int(s.shape[2]), int(s.shape[3])) for s in srcs]
        src_flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], dim=1)
        pos_flat = torch.cat(
            [p.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1) for lvl, p in enumerate(pos_embeds)],
            dim=1,
        )
        refs = reference_points(shapes, src_flat.shape[0], src_flat.device, src_flat.dtype)
        return self.encoder(src_flat, pos_flat, refs, shapes), shapes


def reference_points(shapes: list[tuple[int, int]], batch: int, device: torch.device,
                     dtype: torch.dtype) -> Tensor:
    """Pixel centres of every level normalized to [0, 1] as (x, y), repeated for each level: (N, S, L, 2).

    No padding mask is used, so the valid ratios are 1 and every level gets the same normalized point. A constant
    per set of level sizes, so it is built once per (sizes, device, dtype) and shared read-only.
    """
    refs = _level_points(tuple(shapes), torch.device(device), dtype)
    return refs[None, :, None, :].expand(batch, -1, len(shapes), -1)


@functools.lru_cache(maxsize=4)
def _level_points(shapes: tuple[tuple[int, int], ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    points = []
    with torch.no_grad():
        for h, w in shapes:
            ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
            xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
            ref_y, ref_x = torch.meshgrid(ys, xs, indexing="ij")
            points.append(torch.stack((ref_x.reshape(-1), ref_y.reshape(-1)), -1))
        return torch.cat(points, 0)


class MSDeformAttnPixelDecoder(nn.Module):
    """Pixel decoder: ``forward(features) -> (mask_features (N, mask_dim, H/4, W/4), [1/32, 1/16, 1/8] maps)``.

    ``in_channels`` maps res2..res5 to backbone widths; ``norm_groups`` must divide ``conv_dim``.
    """

    def __init__(
        self,
        in_channels: dict[str, int],
        conv_dim: int = 256,
        mask_dim: int = 256,
        num_heads: int = 8,
        n_points: int = 4,
        enc_layers: int = 6,
        dim_feedforward: int = 1024,
        norm_groups: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if conv_dim % norm_groups:
            raise ValueError(f"norm_groups={norm_groups} must divide conv_dim={conv_dim}")
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels[name], conv_dim, kernel_size=1), nn.GroupNorm(norm_groups, conv_dim))
            for name in ENCODER_FEATURES
        )
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.transformer = MSDeformAttnTransformerEncoderOnly(
            d_model=conv_dim, n_heads=num_heads, num_encoder_layers=enc_layers, dim_feedforward=dim_feedforward,
            dropout=dropout, num_feature_levels=len(ENCODER_FEATURES), enc_n_points=n_points,
        )
        self.pe_layer = PositionEmbeddingSine(conv_dim // 2)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        nn.init.kaiming_uniform_(self.mask_features.weight, a=1)
        nn.init.zeros_(self.mask_features.bias)
        self.adapter_1 = ConvGN(in_channels[FPN_FEATURE], conv_dim, 1, norm_groups)
        self.layer_1 = ConvGN(conv_dim, conv_dim, 3, norm_groups)

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        device_type = features[FPN_FEATURE].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            srcs, pos = [], []
            for proj, name in zip(self.input_proj, ENCODER_FEATURES):
                x = features[name].float()
                srcs.append(proj(x))
                pos.append(self.pe_layer(x))
            tokens, shapes = self.transformer(srcs, pos)
            n = tokens.shape[0]
            maps = [
                t.transpose(1, 2).reshape(n, -1, h, w)
                for t, (h, w) in zip(tokens.split([h * w for h, w in shapes], dim=1), shapes)
            ]
            lateral = self.adapter_1(features[FPN_FEATURE].float())
            fine = lateral + F.interpolate(maps[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            fine = F.relu(self.layer_1(fine))
            return self.mask_features(fine), maps
