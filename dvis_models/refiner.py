"""DVIS temporal refiner: refines the tracker's slot-aligned queries with the whole video in view.

Per layer (as ``TemporalRefiner`` in DVIS ``dvis/video_dvis_modules.py``: post-norm, no positional encodings): long-term
self-attention along time, short-term temporal convolution (+LayerNorm), self-attention among objects, cross-attention
to the frame's ``tracker.frame_forward`` embeddings, FFN. The class is one per slot for the whole video
(temporally weighted pooling); masks are computed a few frames at a time to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dvis_models.layers import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, stack


def temporal_conv(hidden_dim: int) -> nn.Sequential:
    """Conv1d k5 -> ReLU -> Conv1d k3 over time, 'same' length with replicate padding (dense, not depthwise)."""
    return nn.Sequential(
        nn.Conv1d(hidden_dim, hidden_dim, kernel_size=5, padding="same", padding_mode="replicate"),
        nn.ReLU(inplace=True),
        nn.Conv1d(hidden_dim, hidden_dim, kernel_size=3, padding="same", padding_mode="replicate"),
    )


@dataclass
class RefinerOutput:
    """Last-layer predictions of the refiner for one video (or window).

    ``pred_logits`` is video-level (Q, K+1): the official code repeats it T times, we do not.
    """

    pred_logits: Tensor  # (Q, K+1)
    pred_masks: Tensor | None  # (T, Q, h, w), on ``mask_device`` when given
    pred_embds: Tensor  # (T, Q, C) after decoder_norm
    aux_outputs: list[dict[str, Tensor]] = field(default_factory=list)


class TemporalRefiner(nn.Module):
    def __init__(
        self,
        hidden_dim: int,
        num_classes: int,
        num_layers: int = 6,
        nheads: int = 8,
        dim_feedforward: int = 2048,
        mask_dim: int = 256,
        mask_frame_chunk: int = 3,
    ):
        super().__init__()
        self.num_layers = num_layers
        self.mask_frame_chunk = mask_frame_chunk
        self.transformer_time_self_attention_layers = stack(num_layers, SelfAttentionLayer, hidden_dim, nheads)
        self.conv_short_aggregate_layers = stack(num_layers, temporal_conv, hidden_dim)
        self.conv_norms = stack(num_layers, nn.LayerNorm, hidden_dim)
        self.transformer_obj_self_attention_layers = stack(num_layers, SelfAttentionLayer, hidden_dim, nheads)
        self.transformer_cross_attention_layers = stack(num_layers, CrossAttentionLayer, hidden_dim, nheads)
        self.transformer_ffn_layers = stack(num_layers, FFNLayer, hidden_dim, dim_feedforward)
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self.activation_proj = nn.Linear(hidden_dim, 1)

    def _layer(self, i: int, x: Tensor, frame_memory: Tensor) -> Tensor:
        """One refiner layer on x (T, Q, C); ``frame_memory`` is (Q, T, C)."""
        x = self.transformer_time_self_attention_layers[i](x)  # sequence = time, batch = slots
        seq = x.permute(1, 2, 0)  # (Q, C, T)
        seq = seq + self.conv_short_aggregate_layers[i](seq)
        x = self.conv_norms[i](seq.transpose(1, 2))  # (Q, T, C)
        x = self.transformer_obj_self_attention_layers[i](x)  # sequence = slots, batch = frames
        x = self.transformer_cross_attention_layers[i](x, frame_memory)
        x = self.transformer_ffn_layers[i](x)
        return x.transpose(0, 1)  # (T, Q, C)

    def forward(
        self,
        instance_embeds: Tensor,
        frame_embeds: Tensor,
        mask_features: Tensor | None = None,
        return_aux: bool = False,
        mask_device: torch.device | str | None = None,
    ) -> RefinerOutput:
        """Refine ``instance_embeds`` (T, Q, C) (tracker ``pred_embds``) against ``frame_embeds`` (T, Q, C).

        ``mask_features`` (T, C, h, w) may live on the CPU: masks are computed ``mask_frame_chunk``
        frames at a time on the model's device and moved to ``mask_device`` as float32 when given.
        """
        frame_memory = frame_embeds.transpose(0, 1)
        x = instance_embeds
        layer_outputs = []
        for i in range(self.num_layers):
            x = self._layer(i, x, frame_memory)
            layer_outputs.append(x)
        supervise_all = return_aux or self.training
        normed = [self.decoder_norm(y) for y in (layer_outputs if supervise_all else layer_outputs[-1:])]
        heads = [(self.classify(y), self.predict_masks(y, mask_features, mask_device)) for y in normed]
        aux = [{"pred_logits": a, "pred_masks": b} for a, b in heads[:-1]]
        return RefinerOutput(heads[-1][0], heads[-1][1], normed[-1], aux)

    def classify(self, normed: Tensor) -> Tensor:
        """Temporally weighted pooling (softmax over T of ``activation_proj``) then ``class_embed``: (Q, K+1)."""
        weights = self.activation_proj(normed).softmax(dim=0)  # (T, Q, 1)
        return self.class_embed((normed * weights).sum(dim=0))

    def predict_masks(
        self, normed: Tensor, mask_features: Tensor | None, mask_device: torch.device | str | None = None
    ) -> Tensor | None:
        """Mask logits (T, Q, h, w), ``mask_frame_chunk`` frames at a time (memory stays bounded)."""
        if mask_features is None:
            return None
        chunks = []
        for start in range(0, normed.shape[0], self.mask_frame_chunk):
            kernels = self.mask_embed(normed[start : start + self.mask_frame_chunk])
            features = mask_features[start : start + self.mask_frame_chunk].to(kernels.device, kernels.dtype)
            masks = torch.einsum("tqc,tchw->tqhw", kernels, features)
            chunks.append(masks if mask_device is None else masks.to(mask_device, torch.float32))
        return torch.cat(chunks)
