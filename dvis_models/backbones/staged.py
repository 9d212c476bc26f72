"""What the convolutional backbones share: a stem, then stages ``res2``..``res5`` run one after another."""

from __future__ import annotations

from torch import Tensor, nn


class StagedBackbone(nn.Module):
    """Subclasses set ``self.stem`` and one submodule per name in ``stage_names``; forward returns every stage."""

    stage_names = ("res2", "res3", "res4", "res5")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.stem(x)
        out = {}
        for name in self.stage_names:
            x = getattr(self, name)(x)
            out[name] = x
        return out
