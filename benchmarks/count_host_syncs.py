"""Count the host-device synchronisation points of a pipeline run, per frame, by category.

    python benchmarks/count_host_syncs.py [--offline] [--frames 12] [--device cpu]

On a GPU every one of these calls waits for the device (a copy to the host, a value read on the host, a
data-dependent shape such as a boolean-mask index or ``nonzero``, a CUDA ``bincount`` that reads its maximum,
or a pageable host-to-device copy). They are counted with a ``TorchFunctionMode``, so the count is the same on a
CPU, where it can be checked without a GPU. Random ``bundled_small`` weights, every slot kept (thresholds 0):
the post-processing worst case. The last printed line is one JSON object: calls per frame by category.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from dvis_models import VideoSegmenter, build_model  # noqa: E402

_HOST_READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__"}
_DATA_DEPENDENT = {"nonzero", "bincount", "unique", "masked_select", "argwhere"}


def _name(func) -> str:
    return getattr(func, "__name__", str(func))


class SyncCounter(TorchFunctionMode):
    """Counts torch calls that synchronise with the device when tensors live on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _name(func)
        if name in _HOST_READS or name in _DATA_DEPENDENT:
            self.counts[name] += 1
        elif (name == "to" and not kwargs.get("non_blocking")
              and any(str(a) == "cpu" for a in (*args[1:], kwargs.get("device")))):
            self.counts["to(cpu)"] += 1
        elif name == "__getitem__" and _has_bool_index(args[1] if len(args) > 1 else None):
            self.counts["boolean index"] += 1
        elif name in ("as_tensor", "tensor") and kwargs.get("device") is not None:
            self.counts[f"{name}(host data, device=)"] += 1
        return func(*args, **kwargs)


def _has_bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, torch.Tensor) and item.dtype == torch.bool for item in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offline", action="store_true", help="with the temporal refiner")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model("bundled_small")
    segmenter = VideoSegmenter(model, device=args.device, offline=args.offline, short_edge=128, max_size=224,
                               object_mask_threshold=0.0, overlap_threshold=0.0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (128, 224, 3), dtype=np.uint8) for _ in range(args.frames)]
    with SyncCounter() as counter:
        results = list(segmenter.run(frames, num_frames=len(frames)))
    per_frame = {name: round(count / len(results), 2) for name, count in sorted(counter.counts.items())}
    print(f"{'offline' if args.offline else 'online'}, {len(results)} frames: "
          f"{sum(counter.counts.values()) / len(results):.1f} sync points per frame")
    print(json.dumps(per_frame))


if __name__ == "__main__":
    main()
