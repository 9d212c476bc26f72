"""Segmenter fidelity against the official implementation (Swin backbone + Mask2Former head, DVIS decoder).

tests/data/official_tiny_swin_segmenter.npz was produced once by running the official code (detectron2 @02b5c4e,
DVIS @6695214: ``D2SwinTransformer``, ``MSDeformAttnPixelDecoder``, ``VideoMultiScaleMaskedTransformerDecoder_dvis``)
on CPU in float32, with a tiny configuration and seeded random weights: Swin embed 8, depths 2/2/2/2, heads 1/2/2/4,
window 5, MLP ratio 2; pixel decoder conv_dim 32, mask_dim 24, 4 heads, 2 encoder layers, FFN 48; decoder hidden 32,
10 queries, 6 classes, 4 layers, FFN 40. The 58x90 input exercises patch padding, window padding, shifted-window
masks and odd patch merging. It holds the official state_dict ("state.*"), the input and the official outputs.
The same comparison at full size (R50 and Swin-L, random weights) agreed to 3e-6.
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from dvis_models.backbones import SwinTransformer
from dvis_models.segmenter_head import build_maskformer_head

torch.set_num_threads(1)

FIXTURE = Path(__file__).parent / "data" / "official_tiny_swin_segmenter.npz"


def test_tiny_swin_segmenter_matches_official_outputs():
    data = np.load(FIXTURE, allow_pickle=False)
    model = nn.Module()
    model.backbone = SwinTransformer(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=5,
                                     mlp_ratio=2.0)
    model.sem_seg_head = build_maskformer_head(
        model.backbone.out_channels, num_classes=6, num_queries=10, hidden_dim=32, enc_layers=2, dec_layers=4,
        nheads=4, dim_feedforward=40, enc_dim_feedforward=48, mask_dim=24,
    )
    state = {k.removeprefix("state."): torch.from_numpy(data[k]) for k in data.files if k.startswith("state.")}
    model.load_state_dict(state, strict=True)
    model.eval()

    def expected(name: str) -> torch.Tensor:
        return torch.from_numpy(data[f"expected.{name}"])

    with torch.no_grad():
        features = model.backbone(torch.from_numpy(data["input.images"]))
        out = model.sem_seg_head(features)
        out_aux = model.sem_seg_head(features, return_aux=True)
        out_no_masks = model.sem_seg_head(features, with_masks=False)
    for level in ("res2", "res3", "res4", "res5"):
        torch.testing.assert_close(features[level], expected(f"backbone.{level}"), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.mask_features, expected("mask_features"), rtol=1e-4, atol=1e-4)
    for result in (out, out_aux):
        torch.testing.assert_close(result.pred_logits, expected("pred_logits"), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(result.pred_masks, expected("pred_masks"), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(result.pred_embds, expected("pred_embds"), rtol=1e-4, atol=1e-4)
    # Video inference skips the last layer's masks: everything else is unchanged, bit for bit.
    assert out_no_masks.pred_masks is None
    torch.testing.assert_close(out_no_masks.pred_logits, out.pred_logits, rtol=0, atol=0)
    torch.testing.assert_close(out_no_masks.pred_embds, out.pred_embds, rtol=0, atol=0)
