"""Mask2Former segmentation head (``sem_seg_head``): pixel decoder + masked-attention decoder."""

from __future__ import annotations

from torch import Tensor, nn

from dvis_models.mask_decoder import MaskedAttentionDecoder, SegmenterOutput
from dvis_models.pixel_decoder import MSDeformAttnPixelDecoder

__all__ = ["MaskFormerHead", "SegmenterOutput", "build_maskformer_head"]


class MaskFormerHead(nn.Module):
    """``forward(backbone features res2..res5) -> SegmenterOutput``; attribute names match the checkpoints."""

    def __init__(self, pixel_decoder: MSDeformAttnPixelDecoder, predictor: MaskedAttentionDecoder) -> None:
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor

    def forward(self, features: dict[str, Tensor], return_aux: bool | None = None,
                with_masks: bool = True) -> SegmenterOutput:
        mask_features, multi_scale_features = self.pixel_decoder(features)
        return self.predictor(multi_scale_features, mask_features, return_aux=return_aux, with_masks=with_masks)


def build_maskformer_head(
    in_channels: dict[str, int],
    num_classes: int,
    num_queries: int,
    hidden_dim: int = 256,
    enc_layers: int = 6,
    dec_layers: int = 9,
    nheads: int = 8,
    dim_feedforward: int = 2048,
    enc_dim_feedforward: int = 1024,
    n_points: int = 4,
    mask_dim: int = 256,
    norm_groups: int = 32,
    reid_layers: int = 0,
) -> MaskFormerHead:
    """Head with the official DVIS/VIPSeg defaults; smaller widths/depths give a fast bundled model.

    ``hidden_dim`` is both the pixel decoder width and the query width (as in every official config);
    ``norm_groups`` (GroupNorm in the pixel decoder) must divide it. ``reid_layers`` adds DVIS++'s re-id branch.
    """
    pixel_decoder = MSDeformAttnPixelDecoder(
        in_channels, conv_dim=hidden_dim, mask_dim=mask_dim, num_heads=nheads, n_points=n_points,
        enc_layers=enc_layers, dim_feedforward=enc_dim_feedforward, norm_groups=norm_groups,
    )
    predictor = MaskedAttentionDecoder(
        hidden_dim, num_classes, hidden_dim=hidden_dim, num_queries=num_queries, nheads=nheads,
        dim_feedforward=dim_feedforward, dec_layers=dec_layers, mask_dim=mask_dim, reid_layers=reid_layers,
    )
    return MaskFormerHead(pixel_decoder, predictor)
