"""DVIS++ referring tracker (DVIS_Plus ``dvis_Plus/tracker.py::ReferringTracker_noiser``, at inference).

The same RCA -> self-attention -> FFN layers as DVIS's tracker, on queries twice the segmenter's hidden width
(the segmenter appends a re-id embedding to each query). What differs from DVIS:
- the layers read the current frame through its queries *before* the segmenter's ``decoder_norm``
  (``pred_embds_without_norm``: keys and values of the attention, and the RCA identity);
- the attention query is ``ref_proj`` (an MLP) of a reference: on a video's first frame the frame's own
  queries (then each layer's output), afterwards the previous frame's final output, the same for every layer;
- pre-matching gives the aligning permutation (DVIS++ fixed DVIS's inverted gather), still on the normalised
  queries; the query noise of training (``Noiser``) is off at inference;
- the class head sees ``[reference, decoder_norm(output)]`` (2x the query width); masks use mask features
  through a 1x1 convolution ``mask_feature_proj``;
- the refiner's instance embeddings (``pred_embds``) are the last layer's output *without* ``decoder_norm``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dvis_models.layers import MLP
from dvis_models.tracker import ReferringTracker, TrackerOutput, match_embeddings
from dvis_models.transfer import to_device


class ReferringTrackerPlus(ReferringTracker):
    """``hidden_dim`` is the query width (2x the segmenter's); ``mask_dim`` the mask features' width."""

    def __init__(self, hidden_dim: int, num_classes: int, **sizes: int):
        """``sizes``: ``num_layers``, ``nheads``, ``dim_feedforward``, ``mask_dim`` as for ``ReferringTracker``."""
        super().__init__(hidden_dim, num_classes, official_matching=False, **sizes)
        mask_dim = self.mask_embed.layers[-1].out_features
        self.class_embed = nn.Linear(2 * hidden_dim, num_classes + 1)
        self.ref_proj = MLP(hidden_dim, hidden_dim, hidden_dim, 3)
        self.mask_feature_proj = nn.Conv2d(mask_dim, mask_dim, kernel_size=1)

    def _track_frame_plus(self, embeds: Tensor, keys: Tensor) -> tuple[list[Tensor], Tensor, np.ndarray]:
        """All layers on one frame: normalised queries ``embeds`` (matching) and un-normalised ``keys`` (Q, 1, C).

        Returns every layer's output, the frame's reference after ``ref_proj`` (the class head reads it) and the
        matching index.
        """
        first_frame = self._last_output is None
        # A video's first frame is matched with itself, as the official code does (the identity unless two
        # queries coincide); its attention query is its own keys, then each layer's output.
        reference = embeds if first_frame else self._last_frame_embeds
        index = match_embeddings(reference[:, 0], embeds[:, 0], official_matching=False)
        gather = to_device(index, embeds.device)
        self._last_frame_embeds = embeds[gather]
        output, outputs = keys[gather], []
        frame_reference = query = self.ref_proj(keys if first_frame else self._last_output)
        for j in range(self.num_layers):
            output = self._layer(j, output, query, keys)
            outputs.append(output)
            if first_frame:
                query = self.ref_proj(output)
        self._last_output = outputs[-1]
        return outputs, frame_reference, index

    def forward(
        self,
        frame_embeds: Tensor,
        mask_features: Tensor | None = None,
        return_aux: bool = False,
        frame_embeds_no_norm: Tensor | None = None,
    ) -> TrackerOutput:
        """Track ``frame_embeds`` (T, Q, C) (segmenter ``pred_embds``), continuing the carried state.

        ``frame_embeds_no_norm`` (T, Q, C) is the segmenter's ``pred_embds_without_norm`` (the official code
        falls back to ``frame_embeds`` when it is not given, and so does this). ``mask_features`` (T, mask_dim, h, w)
        gives masks; ``return_aux`` (or training) adds every earlier layer's predictions.
        """
        keys = frame_embeds if frame_embeds_no_norm is None else frame_embeds_no_norm
        per_frame, references, indices = [], [], []
        for t in range(frame_embeds.shape[0]):
            layer_outputs, reference, index = self._track_frame_plus(frame_embeds[t].unsqueeze(1), keys[t].unsqueeze(1))
            per_frame.append(torch.stack(layer_outputs)[:, :, 0])  # (L, Q, C)
            references.append(reference[:, 0])
            indices.append(index)
        raw = torch.stack(per_frame, dim=1)  # (L, T, Q, C)
        reference = torch.stack(references)  # (T, Q, C)
        supervised = raw if return_aux or self.training else raw[-1:]
        heads = [self._predict_plus(self.decoder_norm(layer), reference, mask_features) for layer in supervised]
        logits, masks = heads[-1]
        aux = [{"pred_logits": a, "pred_masks": b} for a, b in heads[:-1]]
        return TrackerOutput(logits, masks, raw[-1], aux, indices)

    def _predict_plus(self, normed: Tensor, reference: Tensor, mask_features: Tensor | None
                      ) -> tuple[Tensor, Tensor | None]:
        logits = self.class_embed(torch.cat([reference, normed], dim=-1))
        if mask_features is None:
            return logits, None
        # The 1x1 projection of the mask features is folded into the kernels (kernel . (W f + b) =
        # (W^T kernel) . f + kernel . b), so no projected copy of the full-resolution features is made.
        kernels = self.mask_embed(normed)
        weight = self.mask_feature_proj.weight[:, :, 0, 0].to(kernels.dtype)
        bias = kernels @ self.mask_feature_proj.bias.to(kernels.dtype)
        masks = torch.einsum("tqc,tchw->tqhw", kernels @ weight, mask_features.to(kernels.dtype))
        return logits, masks + bias[..., None, None]
