"""Image backbones for the segmenter: each maps (N, 3, H, W) to {"res2".."res5"} at strides 4/8/16/32."""

from dvis_models.backbones.resnet import FrozenBatchNorm2d, ResNet50
from dvis_models.backbones.small import SmallBackbone
from dvis_models.backbones.swin import SwinTransformer

__all__ = ["FrozenBatchNorm2d", "ResNet50", "SmallBackbone", "SwinTransformer"]
