"""Opt-in fast CPU inference: a converted copy of a model that trades a little accuracy for speed.

The exact path (the model as loaded) stays the default because it reproduces the official outputs. Fast mode
applies the conversions that measurably help on a CPU without native bf16 (``benchmarks/bench_pipeline.py``
times each one per stage and prints its output drift):
- ``channels_last``: NHWC memory format for the backbone and pixel-decoder convolutions (oneDNN's fast layout);
- ``quantize_linears``: int8 dynamic quantization (weights int8, activations quantized per batch) of the
  ``nn.Linear`` layers of the pixel decoder's deformable encoder and of the decoder/tracker/refiner FFNs, where
  most of the non-convolution FLOPs are. The deformable sampling offsets and attention weights stay float32:
  they decide *where* to sample, and quantizing them moves sampling points by whole pixels.
Deformable attention's sampling needs no conversion: the exact path's CPU formulation (one ``embedding_bag``
over all levels) is already the fastest measured.
bf16 autocast is not used: without ``avx512_bf16``/AMX it is emulated and slower than float32.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dvis_models.model import DVISModel

# Linear layers of the deformable encoder kept in float32 (see the module docstring).
_FLOAT_ENCODER_LINEARS = ("sampling_offsets", "attention_weights")


def fast_model(model: DVISModel) -> DVISModel:
    """A CPU copy of ``model`` with every fast-mode conversion applied; ``model`` itself is left unchanged."""
    fast = copy.deepcopy(model).cpu().eval()
    to_channels_last(fast)
    quantize_linears(fast)
    return fast


def to_channels_last(model: DVISModel) -> DVISModel:
    """Convolution weights in channels_last; activations follow (oneDNN keeps the format conv to conv)."""
    for part in (model.backbone, model.sem_seg_head.pixel_decoder):
        part.to(memory_format=torch.channels_last)
    return model


def quantizable_linears(model: DVISModel) -> set[str]:
    """Names of the linear layers fast mode quantizes: deformable-encoder projections and FFNs, and every FFN
    of the masked-attention decoder, tracker and refiner (their ``linear1``/``linear2``)."""
    names = set()
    for name, module in model.named_modules():
        if type(module) is not nn.Linear:  # not MultiheadAttention's out_proj (a Linear subclass it uses directly)
            continue
        leaf = name.rsplit(".", 1)[-1]
        in_encoder = name.startswith("sem_seg_head.pixel_decoder.")
        if (in_encoder and leaf not in _FLOAT_ENCODER_LINEARS) or leaf in ("linear1", "linear2"):
            names.add(name)
    return names


def quantize_linears(model: DVISModel) -> DVISModel:
    """int8 dynamic quantization of ``quantizable_linears`` in place (CPU only: the kernels are fbgemm/x86)."""
    torch.ao.quantization.quantize_dynamic(model, quantizable_linears(model), dtype=torch.qint8, inplace=True)
    return model
