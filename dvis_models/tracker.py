"""DVIS referring tracker: aligns the segmenter's per-frame object queries into stable slots.

The slot index is the track identity. State (the previous frame's output and re-ordered segmenter
embeddings) is carried across calls, so a video can be fed in chunks; ``reset()`` starts a new video.
Semantics follow the official ``ReferringTracker`` (DVIS ``dvis/video_dvis_modules.py``), including its pre-matching
quirk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from dvis_models.layers import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer, stack
from dvis_models.transfer import to_device


class ReferringCrossAttentionLayer(CrossAttentionLayer):
    """RCA: ``LayerNorm(identity + MHA(query, memory, memory))``, post-norm, no positional terms.

    Same parameters as a cross-attention layer; with ``identity is query`` it is one.
    """

    def forward(self, identity: Tensor, query: Tensor, memory: Tensor) -> Tensor:
        attended = self.multihead_attn(query=query, key=memory, value=memory, need_weights=False)[0]
        return self.norm(identity + self.dropout(attended))


def match_embeddings(reference: Tensor, current: Tensor, official_matching: bool = True) -> np.ndarray:
    """Hungarian pre-matching on ``1 - cos``; returns the gather index applied to ``current``.

    ``official_matching=True`` reproduces the released code, which solves the transposed
    (current x reference) problem and gathers with its column indices. That yields the INVERSE of the
    aligning permutation whenever the permutation is not an involution (e.g. a 3-cycle). The released
    weights were trained with it, so it is the default. ``False`` gives the aligning permutation:
    ``current[index][r]`` is the object matched to reference slot ``r``.
    Inputs are (Q, C); computed in float32 so fp16 autocast cannot flip near-ties (autocast is switched off:
    under it the matmul would run in half precision even on float32 inputs).
    """
    with torch.autocast(reference.device.type, enabled=False):
        ref = reference.detach().float()
        cur = current.detach().float()
        ref = ref / (ref.norm(dim=1, keepdim=True) + 1e-6)
        cur = cur / (cur.norm(dim=1, keepdim=True) + 1e-6)
        cost = (1.0 - ref @ cur.t()).cpu()
    cost = torch.nan_to_num(cost, nan=0.0).numpy()
    if official_matching:
        return linear_sum_assignment(cost.T)[1]
    return linear_sum_assignment(cost)[1]


@dataclass
class TrackerOutput:
    """Last-layer predictions for the frames of one call, slot-aligned over time.

    ``pred_masks`` is None when no mask features were given; ``match_indices`` holds, per frame, the
    gather index used on the segmenter queries (identity for a video's first frame).
    """

    pred_logits: Tensor  # (T, Q, K+1)
    pred_masks: Tensor | None  # (T, Q, h, w)
    pred_embds: Tensor  # (T, Q, C) after decoder_norm: the refiner's instance embeddings
    aux_outputs: list[dict[str, Tensor]] = field(default_factory=list)
    match_indices: list[np.ndarray] = field(default_factory=list)


class ReferringTracker(nn.Module):
    """Per-frame recurrence of RCA -> self-attention -> FFN, ``num_layers`` times.

    As ``ReferringTracker.forward`` in DVIS ``dvis/video_dvis_modules.py``.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_classes: int,
        num_layers: int = 6,
        nheads: int = 8,
        dim_feedforward: int = 2048,
        mask_dim: int = 256,
        official_matching: bool = True,
    ):
        super().__init__()
        self.num_layers = num_layers
        self.official_matching = official_matching
        self.transformer_self_attention_layers = stack(num_layers, SelfAttentionLayer, hidden_dim, nheads)
        self.transformer_cross_attention_layers = stack(num_layers, ReferringCrossAttentionLayer, hidden_dim, nheads)
        self.transformer_ffn_layers = stack(num_layers, FFNLayer, hidden_dim, dim_feedforward)
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)
        self._last_output: Tensor | None = None  # previous frame's final layer output, pre-norm (Q, 1, C)
        self._last_frame_embeds: Tensor | None = None  # previous re-ordered segmenter embeddings (Q, 1, C)

    def reset(self) -> None:
        """Forget the previous frame: the next frame starts a new video."""
        self._last_output = None
        self._last_frame_embeds = None

    def _layer(self, j: int, identity: Tensor, query: Tensor, memory: Tensor) -> Tensor:
        output = self.transformer_cross_attention_layers[j](identity, query, memory)
        output = self.transformer_self_attention_layers[j](output)
        return self.transformer_ffn_layers[j](output)

    def _track_frame(self, embeds: Tensor) -> tuple[list[Tensor], np.ndarray]:
        """Run all layers on one frame's (Q, 1, C) embeddings; returns every layer's output."""
        first_frame = self._last_output is None
        if first_frame:
            index = np.arange(embeds.shape[0])
            reordered = embeds
        else:
            index = match_embeddings(self._last_frame_embeds[:, 0], embeds[:, 0], self.official_matching)
            reordered = embeds[to_device(index, embeds.device)]
        self._last_frame_embeds = reordered
        # A video's first frame refers to itself (query = identity, layer by layer); later frames refer
        # to the previous frame's final output.
        identity, outputs = reordered, []
        for j in range(self.num_layers):
            identity = self._layer(j, identity, identity if first_frame else self._last_output, embeds)
            outputs.append(identity)
        self._last_output = outputs[-1]
        return outputs, index

    def forward(
        self, frame_embeds: Tensor, mask_features: Tensor | None = None, return_aux: bool = False
    ) -> TrackerOutput:
        """Track ``frame_embeds`` (T, Q, C) (segmenter ``pred_embds``), continuing the carried state.

        ``mask_features`` (T, C, h, w) gives masks; ``return_aux`` (or training) adds every earlier
        layer's predictions for deep supervision.
        """
        per_frame, indices = [], []
        for t in range(frame_embeds.shape[0]):
            layer_outputs, index = self._track_frame(frame_embeds[t].unsqueeze(1))
            per_frame.append(torch.stack(layer_outputs)[:, :, 0])  # (L, Q, C)
            indices.append(index)
        outputs = self.decoder_norm(torch.stack(per_frame, dim=1))  # (L, T, Q, C)
        supervised = outputs if return_aux or self.training else outputs[-1:]
        heads = [self._predict(layer, mask_features) for layer in supervised]
        logits, masks = heads[-1]
        aux = [{"pred_logits": a, "pred_masks": b} for a, b in heads[:-1]]
        return TrackerOutput(logits, masks, outputs[-1], aux, indices)

    def _predict(self, normed: Tensor, mask_features: Tensor | None) -> tuple[Tensor, Tensor | None]:
        logits = self.class_embed(normed)
        if mask_features is None:
            return logits, None
        kernels = self.mask_embed(normed)
        return logits, torch.einsum("tqc,tchw->tqhw", kernels, mask_features.to(kernels.dtype))

    def frame_forward(self, frame_embeds: Tensor) -> Tensor:
        """Each frame alone in first-frame mode, then ``decoder_norm``: the refiner's frame memory.

        (T, Q, C) -> (T, Q, C), in the segmenter's (unaligned) query order; frames are the batch.
        """
        embeds = frame_embeds.transpose(0, 1)  # (Q, T, C): seq-first, frames as batch
        output = embeds
        for j in range(self.num_layers):
            output = self._layer(j, output, output, embeds)
        return self.decoder_norm(output).transpose(0, 1)
