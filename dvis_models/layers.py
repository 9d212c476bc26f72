"""Transformer building blocks shared by the Mask2Former decoder, the tracker and the refiner.

All layers are post-norm and sequence-first ((L, N, C), like ``nn.MultiheadAttention``'s default) and use the
official attribute names so checkpoints load key-for-key.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn


def stack(num_layers: int, make: Callable[..., nn.Module], *args) -> nn.ModuleList:
    """``num_layers`` independently initialised ``make(*args)`` modules (one per decoder layer)."""
    return nn.ModuleList(make(*args) for _ in range(num_layers))


def with_pos(tensor: Tensor, pos: Tensor | None) -> Tensor:
    """Add a positional embedding when one is given (DETR convention: only queries/keys get it)."""
    return tensor if pos is None else tensor + pos


class SelfAttentionLayer(nn.Module):
    """Post-norm self-attention: ``norm(tgt + attn(q=k=tgt+pos, v=tgt))``."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(
        self,
        tgt: Tensor,
        tgt_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        query_pos: Tensor | None = None,
    ) -> Tensor:
        q = k = with_pos(tgt, query_pos)
        out = self.self_attn(q, k, value=tgt, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask,
                             need_weights=False)[0]
        return self.norm(tgt + self.dropout(out))


class CrossAttentionLayer(nn.Module):
    """Post-norm cross-attention: ``norm(tgt + attn(q=tgt+query_pos, k=memory+pos, v=memory))``."""

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        pos: Tensor | None = None,
        query_pos: Tensor | None = None,
    ) -> Tensor:
        out = self.multihead_attn(
            query=with_pos(tgt, query_pos),
            key=with_pos(memory, pos),
            value=memory,
            attn_mask=memory_mask,
            key_padding_mask=memory_key_padding_mask,
            need_weights=False,
        )[0]
        return self.norm(tgt + self.dropout(out))


class FFNLayer(nn.Module):
    """Post-norm feed-forward block: ``norm(tgt + linear2(relu(linear1(tgt))))``."""

    def __init__(self, d_model: int, dim_feedforward: int = 2048, dropout: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        _xavier_init(self)

    def forward(self, tgt: Tensor) -> Tensor:
        out = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm(tgt + self.dropout(out))


class MLP(nn.Module):
    """Plain multi-layer perceptron with ReLU between layers (none after the last)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


def _xavier_init(module: nn.Module) -> None:
    """Xavier-uniform init of every matrix, as the official layers do (matters only when training from scratch)."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
