"""Count the host-device synchronisation points of a pipeline run, per frame, by category.

    python benchmarks/count_host_syncs.py [--offline] [--frames 12] [--device cpu]

On a GPU every one of these calls waits for the device (a copy to the host, a value read on the host, a
data-dependent shape such as a boolean-mask index or ``nonzero``, a CUDA ``bincount`` that reads its maximum,
or a pageable host-to-device copy). They are counted with a ``TorchFunctionMode``, so the count is the same on a
CPU, where it can be checked without a GPU (deformable attention in its GPU formulation). Random ``bundled_small``
weights, every slot kept (thresholds 0): the post-processing worst case. The last printed line is one JSON object:
calls per frame by category.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import weakref
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dvis_models.ms_deform_attn as deform_module  # noqa: E402
import dvis_models.pixel_decoder as pixel_decoder_module  # noqa: E402
from dvis_models import VideoSegmenter, build_model, transfer  # noqa: E402

_HOST_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__"}
_DATA_DEPENDENT = {"nonzero", "bincount", "unique", "masked_select", "argwhere"}


def _name(func) -> str:
    return getattr(func, "__name__", str(func))


class SyncCounter(TorchFunctionMode):
    """Counts torch calls that synchronise with the device when tensors live on a GPU.

    ``host_aware=True`` also follows which tensors the run keeps on the host (results of a copy to the CPU, of
    host-only factories such as ``torch.tensor`` without ``device=``, and of ops whose tensor inputs are all such
    host tensors) and does not count reads of those (``.numpy()`` of a tensor already copied, ``nonzero`` on host
    scores): on a GPU they wait for nothing. A blocking copy of a host tensor to another device is counted instead
    (on a GPU it waits for the device's queue). Tensors it never saw created (parameters, ``torch.from_numpy``)
    count as device tensors.
    """

    def __init__(self, host_aware: bool = False) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.host_aware = host_aware
        self._host: weakref.WeakValueDictionary[int, torch.Tensor] = weakref.WeakValueDictionary()  # by id

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = self._sync_kind(_name(func), args, kwargs)
        if kind:
            self.record(kind)
        result = func(*args, **kwargs)
        if self.host_aware and self._makes_host(_name(func), args, kwargs):
            for tensor in _tensors(result):
                self._host[id(tensor)] = tensor
        return result

    def record(self, kind: str) -> None:
        self.counts[kind] += 1

    @contextmanager
    def counting_transfers(self):
        """Also count ``dvis_models.transfer.wait_for_device`` (an explicit wait, which no torch call shows), and
        take what ``transfer.to_host`` returns for a host tensor (on the CPU it returns its argument)."""
        wait, to_host = transfer.wait_for_device, transfer.to_host

        def counted_wait(device) -> None:
            self.record("wait_for_device")
            wait(device)

        def marked_to_host(tensor):
            host = to_host(tensor)
            if self.host_aware:
                self._host[id(host)] = host
            return host

        transfer.wait_for_device, transfer.to_host = counted_wait, marked_to_host
        try:
            yield self
        finally:
            transfer.wait_for_device, transfer.to_host = wait, to_host

    def _on_host(self, value) -> bool:
        return self.host_aware and isinstance(value, torch.Tensor) and self._host.get(id(value)) is value

    def _sync_kind(self, name: str, args: tuple, kwargs: dict) -> str | None:
        first = args[0] if args else None
        if name in _HOST_READS or name in _DATA_DEPENDENT:
            return None if self._on_host(first) else name
        if name == "to" and not kwargs.get("non_blocking"):
            targets = [a for a in (*args[1:], kwargs.get("device")) if isinstance(a, str | torch.device)]
            if any(str(a) == "cpu" for a in targets) and not self._on_host(first):
                return "to(cpu)"
            if targets and self._on_host(first):
                return "to(device) of a host tensor"
            return None
        if name == "__getitem__" and _has_bool_index(args[1] if len(args) > 1 else None):
            return None if self._on_host(first) else "boolean index"
        if name in ("as_tensor", "tensor") and kwargs.get("device") is not None:
            return f"{name}(host data, device=)"
        return None

    def _makes_host(self, name: str, args: tuple, kwargs: dict) -> bool:
        if name in ("cpu", "pin_memory", "numpy"):
            return True
        if name == "to":
            return any(str(a) == "cpu" for a in (*args[1:], kwargs.get("device")))
        inputs = _tensors((args, kwargs))
        if not inputs:  # a factory: on the host unless told a device
            return kwargs.get("device") is None
        return all(self._on_host(tensor) for tensor in inputs)


def _tensors(value) -> list[torch.Tensor]:
    """The tensors in a (nested) tuple / list / dict."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def use_gpu_code_paths() -> None:
    """Count what a GPU runs: deformable attention sampled with ``grid_sample`` (the CPU's gather formulation
    builds small host tensors a GPU run never makes) and the pixel decoder's FFN in one piece, not in row chunks."""
    deform_module.ms_deform_attn_sample = deform_module.ms_deform_attn_sample_grid
    if hasattr(pixel_decoder_module, "ffn_chunks"):  # older checkouts chunk on every device
        pixel_decoder_module.ffn_chunks = lambda tokens: [tokens]


def _has_bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, torch.Tensor) and item.dtype == torch.bool for item in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offline", action="store_true", help="with the temporal refiner")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--host-aware", action="store_true",
                        help="do not count reads of tensors the run already keeps on the host (see SyncCounter)")
    args = parser.parse_args()
    use_gpu_code_paths()
    torch.manual_seed(0)
    model = build_model("bundled_small")
    segmenter = VideoSegmenter(model, device=args.device, offline=args.offline, short_edge=128, max_size=224,
                               object_mask_threshold=0.0, overlap_threshold=0.0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (128, 224, 3), dtype=np.uint8) for _ in range(args.frames)]
    with SyncCounter(args.host_aware) as counter, counter.counting_transfers():
        results = list(segmenter.run(frames, num_frames=len(frames)))
    per_frame = {name: round(count / len(results), 2) for name, count in sorted(counter.counts.items())}
    print(f"{'offline' if args.offline else 'online'}, {len(results)} frames: "
          f"{sum(counter.counts.values()) / len(results):.1f} sync points per frame")
    print(json.dumps(per_frame))


if __name__ == "__main__":
    main()
