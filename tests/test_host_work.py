"""What the model asks of the host per call: constants built once, copies between host and device that do not block.

On a GPU every small op is a kernel launch the host pays for and every blocking copy waits for the device, so
per-size constants (position encodings, reference points, level sizes) and the backbone's folded frozen norms are
made once, and copies go through ``dvis_models.transfer``. Ops are counted with a ``TorchDispatchMode``.
"""

from __future__ import annotations

import collections

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dvis_models import build_model, ms_deform_attn, transfer
from dvis_models.backbones.resnet import ConvNorm


class OpCounter(TorchDispatchMode):
    """Counts aten ops by name (``aten.arange.start`` -> ``arange``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func._schema.name.split("::")[-1]] += 1
        return func(*args, **(kwargs or {}))


def test_segmenter_builds_its_per_size_constants_once(monkeypatch):
    # Deformable attention sampled as on a GPU (the CPU's gather formulation builds index tables every call).
    monkeypatch.setattr(ms_deform_attn, "ms_deform_attn_sample", ms_deform_attn.ms_deform_attn_sample_grid)
    torch.manual_seed(0)
    model = build_model("bundled_small").eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        first = model.segment(images, with_masks=False)
        with OpCounter() as counter:
            again = model.segment(images, with_masks=False)
        other_size = model.segment(torch.randn(2, 3, 96, 64), with_masks=False)
    assert counter.ops["arange"] == 0  # position encodings, reference points: arange per level when built
    assert counter.ops["_to_copy"] == 0 and counter.ops["lift_fresh"] == 0  # no host tensor copied in
    torch.testing.assert_close(again.pred_embds, first.pred_embds, rtol=0, atol=0)
    assert other_size.mask_features.shape[-2:] == (24, 16)  # another size builds its own constants


def test_folded_frozen_norm_is_reused_until_a_weight_or_buffer_changes():
    torch.manual_seed(0)
    conv = ConvNorm(4, 6, 3, stride=2)
    x = torch.randn(2, 4, 9, 11)

    def expected() -> torch.Tensor:
        scale, shift = conv.norm.scale_shift()
        return torch.nn.functional.conv2d(x, conv.weight * scale[:, None, None, None], shift, 2, 1)

    with torch.no_grad():
        conv.norm.running_var.uniform_(0.1, 3.0)
        first = conv(x)
        with OpCounter() as counter:
            again = conv(x)
        assert set(counter.ops) == {"convolution"}  # no fold: weight * rsqrt(var + eps) etc. are reused
        torch.testing.assert_close(again, first, rtol=0, atol=0)
        conv.norm.running_mean.normal_()  # modified in place
        torch.testing.assert_close(conv(x), expected(), rtol=0, atol=0)
        state = {name: value.clone() for name, value in conv.state_dict().items()}
        state["weight"].mul_(-1)
        conv.load_state_dict(state)
        torch.testing.assert_close(conv(x), expected(), rtol=0, atol=0)
        conv.double()  # new tensors
        x = x.double()
        torch.testing.assert_close(conv(x), expected(), rtol=0, atol=0)
    out = conv(x.requires_grad_())  # autograd records the fold, so the weight gets a gradient
    out.sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_transfers_give_the_same_values(device):
    values = np.arange(12, dtype=np.int64).reshape(3, 4)
    on_device = transfer.to_device(values, device)
    assert on_device.device.type == device.type
    back = transfer.to_host(on_device * 2)
    transfer.wait_for_device(device)
    assert back.device.type == "cpu"
    np.testing.assert_array_equal(back.numpy(), values * 2)
    strided = torch.arange(48).view(4, 12)[1:3, ::3]  # a slice: only its own elements are staged and copied
    torch.testing.assert_close(transfer.to_device(strided, device).cpu(), strided, rtol=0, atol=0)
    if device.type == "cuda":
        assert back.is_pinned()  # queued without blocking
    else:
        cpu_tensor = torch.ones(3)
        assert transfer.to_host(cpu_tensor) is cpu_tensor  # nothing copied on the CPU
        assert transfer.to_device(cpu_tensor, device) is cpu_tensor
