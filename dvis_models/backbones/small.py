"""A small convolutional backbone for the bundled CPU model, trainable from scratch.

GroupNorm instead of BatchNorm because video clips give tiny batches; plain residual blocks because they are fast
on CPU and train reliably without pretraining.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dvis_models.backbones.staged import StagedBackbone


def conv_gn_relu(in_channels: int, out_channels: int, stride: int, groups: int) -> nn.Sequential:
    """3x3 conv (no bias) -> GroupNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(groups, out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv + GroupNorm layers with an identity shortcut."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, channels)
        nn.init.zeros_(self.norm2.weight)  # start as identity: stable training from scratch

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(x + self.norm2(self.conv2(out)))


class SmallBackbone(StagedBackbone):
    """Stem to stride 4, then four stages (res2..res5) at strides 4/8/16/32.

    Stage k >= 1 starts with a stride-2 conv; every stage then stacks ``blocks[k]`` residual blocks.
    ``norm_groups`` must divide every entry of ``channels``.
    """

    def __init__(
        self,
        channels: tuple[int, int, int, int] = (32, 64, 128, 256),
        blocks: tuple[int, int, int, int] = (1, 1, 2, 1),
        norm_groups: int = 8,
    ) -> None:
        super().__init__()
        if len(channels) != 4 or len(blocks) != 4:
            raise ValueError("SmallBackbone needs exactly four stage widths and block counts")
        if any(c % norm_groups for c in channels):
            raise ValueError(f"norm_groups={norm_groups} must divide every stage width {channels}")
        self.stem = nn.Sequential(
            conv_gn_relu(3, channels[0] // 2, 2, norm_groups // 2 or 1),
            conv_gn_relu(channels[0] // 2, channels[0], 2, norm_groups),
        )
        self.out_channels: dict[str, int] = {}
        in_ch = channels[0]
        for idx, (name, ch, n) in enumerate(zip(self.stage_names, channels, blocks)):
            entry = conv_gn_relu(in_ch, ch, 1 if idx == 0 else 2, norm_groups)
            self.add_module(name, nn.Sequential(entry, *(ResidualBlock(ch, norm_groups) for _ in range(n))))
            self.out_channels[name] = ch
            in_ch = ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
