"""detectron2-layout ResNet-50 with frozen batch norm, so official DVIS/Mask2Former R50 weights load key-for-key."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dvis_models.backbones.staged import StagedBackbone


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine parameters, all stored as buffers.

    Exactly the four buffers of the official checkpoints (no ``num_batches_tracked``):
    ``y = x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.full((num_features,), 1.0 - eps))  # ones - eps

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """Per-channel (scale, shift) with ``y = x * scale + shift``."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_shift()
        return x * scale.to(x.dtype)[None, :, None, None] + shift.to(x.dtype)[None, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"



class ConvNorm(nn.Conv2d):
    """Bias-free convolution followed by its frozen ``norm`` (detectron2's ``Conv2d(norm=...)`` key layout).

    The frozen affine is folded into the convolution (weight * scale, bias = shift): one pass over the
    activations instead of three, about a quarter of the backbone's CPU time. The folded pair is kept until the
    weight or a norm buffer changes (another tensor, or one modified in place), so inference computes it once
    instead of five small kernels per convolution per call; when autograd records the weight it is folded anew.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.norm = FrozenBatchNorm2d(out_channels)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        # (sources, their versions, (weight, shift)); sources are detached aliases, which keep their memory
        # alive, so an equal data pointer means the same tensor and the shared version counter its modifications.
        self._folded: tuple[tuple[Tensor, ...], tuple[int, ...], tuple[Tensor, Tensor]] | None = None

    def folded(self) -> tuple[Tensor, Tensor]:
        """(weight * scale, shift): the convolution with the frozen norm folded in."""
        if torch.is_grad_enabled() and self.weight.requires_grad:
            return self._fold()
        sources = (self.weight, *self.norm.buffers())
        cached = self._folded
        if (cached is None or any(a.data_ptr() != b.data_ptr() for a, b in zip(sources, cached[0]))
                or tuple(t._version for t in sources) != cached[1]):
            with torch.no_grad():
                cached = self._folded = (tuple(t.detach() for t in sources), tuple(t._version for t in sources),
                                         self._fold())
        return cached[2]

    def _fold(self) -> tuple[Tensor, Tensor]:
        scale, shift = self.norm.scale_shift()
        return self.weight * scale[:, None, None, None], shift

    def forward(self, x: Tensor) -> Tensor:
        weight, shift = self.folded()
        return F.conv2d(x, weight, shift, self.stride, self.padding)


class BasicStem(nn.Module):
    """7x7/2 conv + FrozenBN + ReLU + 3x3/2 max-pool: stride 4, 64 channels."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = ConvNorm(in_channels, out_channels, 7, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 (carries the stride, STRIDE_IN_1X1=False) -> 1x1 bottleneck with a projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, bottleneck_channels: int, stride: int) -> None:
        super().__init__()
        # Defined first so the state_dict order matches the official one.
        self.shortcut = ConvNorm(in_channels, out_channels, 1, stride=stride) if in_channels != out_channels else None
        self.conv1 = ConvNorm(in_channels, bottleneck_channels, 1)
        self.conv2 = ConvNorm(bottleneck_channels, bottleneck_channels, 3, stride=stride)
        self.conv3 = ConvNorm(bottleneck_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + identity)


class ResNet50(StagedBackbone):
    """ResNet-50 (detectron2 ``build_resnet_backbone`` with FrozenBN, no dilation) emitting res2..res5.

    The widths are detectron2's ``STEM_OUT_CHANNELS``, ``WIDTH_PER_GROUP`` (one group) and ``RES2_OUT_CHANNELS``;
    each later stage doubles the last two. The defaults are ResNet-50's.
    """

    STAGE_BLOCKS = (3, 4, 6, 3)

    def __init__(self, stem_channels: int = 64, bottleneck_channels: int = 64, res2_channels: int = 256) -> None:
        super().__init__()
        self.stem = BasicStem(out_channels=stem_channels)
        in_ch, bottleneck, out_ch = stem_channels, bottleneck_channels, res2_channels
        self.out_channels: dict[str, int] = {}
        for idx, (name, blocks) in enumerate(zip(self.stage_names, self.STAGE_BLOCKS)):
            first_stride = 1 if idx == 0 else 2
            stage = nn.Sequential(*(
                BottleneckBlock(in_ch if b == 0 else out_ch, out_ch, bottleneck, first_stride if b == 0 else 1)
                for b in range(blocks)
            ))
            self.add_module(name, stage)
            self.out_channels[name] = out_ch
            in_ch, bottleneck, out_ch = out_ch, bottleneck * 2, out_ch * 2
