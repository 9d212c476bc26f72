"""Deterministic random weights from key names and shapes alone, for fidelity tests against the official code.

The official model and ours have the same state-dict keys, so both can be filled from one seed: the fixtures then
hold only inputs and the official outputs, not the weights. Values are scaled so a deep random network stays in a
sane range: embedding tables (learned queries, level embeddings) ~ N(0, 1) so queries stay distinct, other
matrices ~ N(0, 1/fan_in), 1-D ``weight`` entries (norm scales) ~ 1 + N(0, 0.1^2), biases and running
means ~ N(0, 0.1^2), running variances ~ 1 + |N(0, 0.1^2)|. The generator of the fixtures imports this file, so
the two sides cannot drift apart; ``checksum`` is stored in the fixtures to catch a change of torch's generator.
"""

from __future__ import annotations

import math

import torch

HEADS = ("class_embed.weight", "mask_embed.layers.2.weight")  # the last layers of the class and mask heads


def seeded_state(shapes: dict[str, tuple[int, ...]], seed: int, gain: float = 1.0,
                 head_gain: float = 1.0) -> dict[str, torch.Tensor]:
    """One float32 tensor per key, drawn in sorted key order from ``torch.Generator().manual_seed(seed)``.

    ``gain`` scales the matrices: below 1 each residual layer changes its input less, so queries stay distinct.
    ``head_gain`` scales the last class and mask layers on top: confident classes and masks far from the 0.5
    probability threshold, so a panoptic output does not hinge on rounding."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        values = torch.randn(shape, generator=generator)
        if (key.rsplit(".", 2)[-2:-1] in (["query_feat"], ["query_embed"], ["level_embed"])
                or key.endswith("level_embed")):
            pass
        elif key.endswith("running_var"):
            values = 1 + 0.1 * values.abs()
        elif len(shape) == 1 and key.endswith("weight"):
            values = 1 + 0.1 * values
        elif len(shape) == 1:
            values = 0.1 * values
        else:
            values = values * gain * (head_gain if key.endswith(HEADS) else 1.0) / math.sqrt(math.prod(shape[1:]))
        state[key] = values
    return state


def checksum(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of |values| over all tensors, in float64: equal on both sides iff the same weights were drawn."""
    return sum(value.double().abs().sum() for value in state.values())
