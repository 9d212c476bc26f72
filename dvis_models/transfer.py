"""Copies between the host and a CUDA device that do not make the host wait for the device.

A plain ``tensor.cpu()`` or ``tensor.to("cuda")`` from ordinary (pageable) host memory is a blocking copy: the host
waits until the device has finished all the work queued before it, and the transfer itself runs at a fraction of
the bus speed. Through page-locked (pinned) host memory the copy is queued like a kernel and runs at full speed.
On the CPU these functions copy nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_device(data: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Host data on ``device`` without blocking (through pinned memory on CUDA); the tensor itself if it is there.

    Safe to use at once: later work on the device's current stream runs after the copy, and the pinned staging
    memory is not reused before the copy is done (PyTorch's pinned-memory allocator records the copy).
    """
    tensor = torch.from_numpy(data) if isinstance(data, np.ndarray) else data
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        # Into a fresh contiguous pinned buffer: ``pin_memory()`` of a slice would pin its whole strided extent,
        # and a non-contiguous source would be made contiguous in pageable memory by the copy.
        staged = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True).copy_(tensor)
        return staged.to(device, non_blocking=True)
    return tensor.to(device)


def to_host(tensor: Tensor) -> Tensor:
    """A copy of a device tensor in pinned host memory, queued without blocking; a CPU tensor itself.

    On CUDA the copy is not done when this returns: read it only after the host has waited for the device's
    current stream (``wait_for_device``, or any blocking copy to the host queued after it, such as ``.tolist()``).
    """
    if tensor.device.type != "cuda":
        return tensor
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    return host.copy_(tensor, non_blocking=True)


def wait_for_device(device: torch.device) -> None:
    """Wait until the work queued on ``device``'s current stream (``to_host`` copies included) is done."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()
