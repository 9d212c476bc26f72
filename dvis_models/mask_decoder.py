"""Mask2Former masked-attention transformer decoder (``sem_seg_head.predictor``), per frame.

Queries attend to one feature level per layer (1/32, 1/16, 1/8, repeated), restricted to the pixels that the
previous prediction covers. At inference, attention masks are computed from mask features resized to each level
instead of resizing full-resolution mask logits: bilinear resizing is linear per channel, so
``resize(embed · F) = embed · resize(F)`` and the masks are the same, at a fraction of the cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dvis_models.layers import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, stack
from dvis_models.position_encoding import PositionEmbeddingSine


@dataclass
class SegmenterOutput:
    """Per-frame segmenter predictions (N = frames, Q = queries, K = classes, C = hidden, h, w = H/4, W/4)."""

    pred_logits: Tensor  # (N, Q, K+1), last entry = "no object"
    pred_masks: Tensor | None  # (N, Q, h, w) logits; None when asked for ``with_masks=False``
    pred_embds: Tensor  # (N, Q, C), after decoder_norm; DVIS++: (N, Q, 2C), [after decoder_norm, re-id embedding]
    mask_features: Tensor  # (N, mask_dim, h, w)
    aux_outputs: list[dict[str, Tensor]] = field(default_factory=list)  # earlier layers: pred_logits, pred_masks
    # DVIS++ only: (N, Q, 2C), [last layer output before decoder_norm, re-id embedding]; None for DVIS
    pred_embds_without_norm: Tensor | None = None


def attention_mask_from_logits(mask_logits: Tensor, num_heads: int) -> Tensor:
    """Boolean cross-attention mask (True = blocked) for nn.MultiheadAttention: (N*heads, Q, h*w).

    Pixels whose mask probability is below 0.5 are blocked; a query that would see no pixel at all sees all of
    them instead (otherwise its softmax would be undefined).
    """
    blocked = mask_logits.flatten(2).sigmoid() < 0.5
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
    n, q, hw = blocked.shape
    return blocked.unsqueeze(1).expand(n, num_heads, q, hw).reshape(n * num_heads, q, hw).detach()


class MaskedAttentionDecoder(nn.Module):
    """Mask2Former transformer decoder with the official attribute names of ``sem_seg_head.predictor``.

    ``forward(multi_scale_features [1/32, 1/16, 1/8], mask_features) -> SegmenterOutput``. Prediction heads run on
    the learnable queries and after each of the ``dec_layers`` layers; ``aux_outputs`` holds every prediction but
    the last (deep supervision) and is filled when training or when ``return_aux=True``. ``with_masks=False``
    skips the last layer's mask logits (a full-resolution einsum per query) for callers that only need the
    embeddings, like video inference, where the tracker computes its own masks.

    ``reid_layers > 0`` adds DVIS++'s re-identification branch (``reid_embed``, an MLP on the normalised final
    queries, DVIS_Plus ``VideoMultiScaleMaskedTransformerDecoder_dvisPlus``): its output is appended to every
    query embedding, so ``pred_embds`` and ``pred_embds_without_norm`` are twice the hidden width.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_dim: int = 256,
        num_queries: int = 100,
        nheads: int = 8,
        dim_feedforward: int = 2048,
        dec_layers: int = 9,
        mask_dim: int = 256,
        num_feature_levels: int = 3,
        reid_layers: int = 0,
    ) -> None:
        super().__init__()
        self.num_heads = nheads
        self.num_layers = dec_layers
        self.num_feature_levels = num_feature_levels
        self.pe_layer = PositionEmbeddingSine(hidden_dim // 2)
        self.transformer_self_attention_layers = stack(dec_layers, SelfAttentionLayer, hidden_dim, nheads)
        self.transformer_cross_attention_layers = stack(dec_layers, CrossAttentionLayer, hidden_dim, nheads)
        self.transformer_ffn_layers = stack(dec_layers, FFNLayer, hidden_dim, dim_feedforward)
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        # Identity (no checkpoint keys) when the pixel decoder already has the hidden width, as in all DVIS models.
        self.input_proj = nn.ModuleList(
            nn.Identity() if in_channels == hidden_dim else nn.Conv2d(in_channels, hidden_dim, kernel_size=1)
            for _ in range(num_feature_levels)
        )
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.reid_embed = MLP(hidden_dim, hidden_dim, hidden_dim, reid_layers) if reid_layers else None

    def forward(self, multi_scale_features: list[Tensor], mask_features: Tensor,
                return_aux: bool | None = None, with_masks: bool = True) -> SegmenterOutput:
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(f"expected {self.num_feature_levels} feature levels, got {len(multi_scale_features)}")
        want_aux = self.training if return_aux is None else return_aux
        sizes = [tuple(x.shape[-2:]) for x in multi_scale_features]
        memories, positions = [], []
        for level, x in enumerate(multi_scale_features):
            positions.append(self.pe_layer(x).flatten(2).permute(2, 0, 1))  # (HW, N, C)
            src = self.input_proj[level](x).flatten(2) + self.level_embed.weight[level][None, :, None]
            memories.append(src.permute(2, 0, 1))
        n = mask_features.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, n, -1)
        output = self.query_feat.weight.unsqueeze(1).expand(-1, n, -1)
        # Only needed without deep supervision: mask features at each attention level (see module docstring).
        level_features = None if want_aux else [
            F.interpolate(mask_features, size=s, mode="bilinear", align_corners=False) for s in sizes
        ]

        predictions: list[dict[str, Tensor]] = []
        attn_mask = None
        for i in range(self.num_layers + 1):
            last = i == self.num_layers
            decoded = self.decoder_norm(output).transpose(0, 1)  # (N, Q, C)
            embed = self.mask_embed(decoded)
            if want_aux or last:
                masks = torch.einsum("nqc,nchw->nqhw", embed, mask_features) if want_aux or with_masks else None
                predictions.append({"pred_logits": self.class_embed(decoded), "pred_masks": masks})
            if last:
                break
            level = i % self.num_feature_levels
            if level_features is None:
                small = F.interpolate(masks, size=sizes[level], mode="bilinear", align_corners=False)
            else:
                small = torch.einsum("nqc,nchw->nqhw", embed, level_features[level])
            attn_mask = attention_mask_from_logits(small, self.num_heads)
            output = self.transformer_cross_attention_layers[i](
                output, memories[level], memory_mask=attn_mask, pos=positions[level], query_pos=query_pos
            )
            output = self.transformer_self_attention_layers[i](output, query_pos=query_pos)
            output = self.transformer_ffn_layers[i](output)

        final = predictions[-1]
        without_norm = None
        if self.reid_embed is not None:
            reid = self.reid_embed(decoded)
            decoded, without_norm = (torch.cat([decoded, reid], dim=-1),
                                     torch.cat([output.transpose(0, 1), reid], dim=-1))
        return SegmenterOutput(
            pred_logits=final["pred_logits"],
            pred_masks=final["pred_masks"],
            pred_embds=decoded,
            mask_features=mask_features,
            aux_outputs=predictions[:-1],
            pred_embds_without_norm=without_norm,
        )
