"""Count the host's work per frame by pipeline stage: dispatched aten ops, kernel-launching ops, host syncs.

    python benchmarks/count_host_work.py                      # R50, 1280x720, online, 6 frames
    python benchmarks/count_host_work.py --preset bundled_small --height 128 --width 224 --frames 12

On a GPU every kernel-launching op costs the host a few microseconds whatever its size, and every sync point (see
``count_host_syncs.py``) waits for the device to drain, so stages made of many small ops are bound by the host. Both
are counted on the CPU, where they can be checked without a GPU: ops with a ``TorchDispatchMode`` (aten ops as the
backend sees them, after autograd and composite decompositions), sync points with ``count_host_syncs.SyncCounter``.
Deformable attention is counted in its GPU formulation (``count_host_syncs.use_gpu_code_paths``).
An op "launches" unless it is a view or only allocates (``empty*``); a CUDA op may launch more than one kernel and
fp16 autocast adds casts, so on a GPU the counts are a close lower bound, not the exact kernel count.

Stages are attributed by module: backbone, pixel decoder, transformer decoder (``sem_seg_head.predictor``),
tracker (matching and its mask logits included), refiner (offline), post-processing (``video_panoptic``), and
"glue" for the rest (frame preparation, copies between stages, track ids). Counted on a run after a 3-frame warm-up
run, so what is built once (constants per frame size) is not counted per frame. Random weights, every slot kept
(thresholds 0): the post-processing worst case, as ``gpu_check.py bench`` times it. The last printed line is one JSON
object: per stage, aten ops, launching ops and sync points per frame (``syncs`` as ``count_host_syncs.py`` counts them,
``device_syncs`` with its ``--host-aware`` rule: only what waits for the device on a GPU), plus the totals.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from count_host_syncs import SyncCounter, use_gpu_code_paths  # noqa: E402

import dvis_models.pipeline as pipeline_module  # noqa: E402
from dvis_models import VideoSegmenter, build_model  # noqa: E402

GLUE = "glue"
# aten ops that run no kernel: allocations, and a view its schema does not mark as one (other views are recognised
# from their schema).
_NO_KERNEL = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "_unsafe_view"}


def _launches(func) -> bool:
    """Whether an aten op runs a kernel: not a view (an aliasing, non-writing result) and not a bare allocation."""
    if func._schema.name.split("::")[-1] in _NO_KERNEL:
        return False
    returns = func._schema.returns
    return not (returns and returns[0].alias_info is not None and not returns[0].alias_info.is_write)


class StageCounter(TorchDispatchMode):
    """Counts aten ops (all, and kernel-launching ones) per stage; ``stage`` is set by ``in_stage``."""

    def __init__(self) -> None:
        super().__init__()
        self.stage = GLUE
        self.ops: collections.Counter[str] = collections.Counter()
        self.launching: collections.Counter[str] = collections.Counter()
        self.by_op: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[self.stage] += 1
        if _launches(func):
            self.launching[self.stage] += 1
            self.by_op[self.stage][func._schema.name.split("::")[-1]] += 1
        return func(*args, **(kwargs or {}))


class StagedSyncCounter(SyncCounter):
    """``SyncCounter`` whose counts are also kept per stage of a ``StageCounter``."""

    def __init__(self, stages: StageCounter, host_aware: bool) -> None:
        super().__init__(host_aware)
        self.stages = stages
        self.per_stage: collections.Counter[str] = collections.Counter()
        self.by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    def record(self, kind: str) -> None:
        super().record(kind)
        self.per_stage[self.stages.stage] += 1
        self.by_kind[self.stages.stage][kind] += 1


@contextmanager
def in_stage(counter: StageCounter, name: str):
    outer, counter.stage = counter.stage, name
    try:
        yield
    finally:
        counter.stage = outer


def attribute_stages(model, counter: StageCounter) -> None:
    """Module hooks that set the counter's stage while each stage's module runs (nested calls keep the outer)."""
    modules = {"backbone": model.backbone, "pixel decoder": model.sem_seg_head.pixel_decoder,
               "decoder": model.sem_seg_head.predictor, "tracker": model.tracker, "refiner": model.refiner}
    for name, module in modules.items():
        if module is None:
            continue
        saved: list[str] = []

        def enter(_module, _inputs, name=name, saved=saved):
            saved.append(counter.stage)
            counter.stage = name

        def leave(_module, _inputs, _output, saved=saved):
            counter.stage = saved.pop()

        module.register_forward_pre_hook(enter)
        module.register_forward_hook(leave)
    # The tracker's matching and mask heads run inside tracker.forward; post-processing is a generator, so its
    # stage is set around each step it takes.
    panoptic = pipeline_module.video_panoptic

    def staged_panoptic(*args, **kwargs) -> Iterator:
        steps = panoptic(*args, **kwargs)
        while True:
            with in_stage(counter, "post-processing"):
                item = next(steps, None)
            if item is None:
                return
            yield item

    pipeline_module.video_panoptic = staged_panoptic


def count(preset: str, height: int, width: int, num_frames: int, offline: bool) -> dict:
    use_gpu_code_paths()
    torch.manual_seed(0)
    model = build_model(preset)
    segmenter = VideoSegmenter(model, device="cpu", offline=offline, short_edge=height, max_size=max(height, width),
                               object_mask_threshold=0.0, overlap_threshold=0.0)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width + 4 * num_frames, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(base[:, 4 * t: 4 * t + width]) for t in range(num_frames)]
    list(segmenter.run(frames[:3]))  # warm-up: what is built once per run or per frame size is not per-frame work
    stages = StageCounter()
    attribute_stages(segmenter.model, stages)
    syncs = StagedSyncCounter(stages, host_aware=False)  # as count_host_syncs.py counts (every read of a tensor)
    device_syncs = StagedSyncCounter(stages, host_aware=True)  # reads of tensors already on the host left out
    with torch.no_grad(), stages, syncs, device_syncs, syncs.counting_transfers(), device_syncs.counting_transfers():
        results = list(segmenter.run(frames, num_frames=num_frames))
    per = len(results)
    names = [n for n in ("backbone", "pixel decoder", "decoder", "tracker", "refiner", "post-processing", GLUE)
             if stages.ops[n] or syncs.per_stage[n]]
    table = {n: {"aten_ops": round(stages.ops[n] / per, 1), "launching_ops": round(stages.launching[n] / per, 1),
                 "syncs": round(syncs.per_stage[n] / per, 2), "device_syncs": round(device_syncs.per_stage[n] / per, 2)}
             for n in names}
    table["total"] = {key: round(sum(row[key] for row in table.values()), 2)
                      for key in ("aten_ops", "launching_ops", "syncs", "device_syncs")}
    for n in names:
        top = ", ".join(f"{op} {c / per:.1f}" for op, c in stages.by_op[n].most_common(8))
        kinds = ", ".join(f"{kind} {c / per:.2f}" for kind, c in sorted(device_syncs.by_kind[n].items()))
        print(f"{n:>16}: {table[n]['launching_ops']:7.1f} launching ops/frame ({top}); "
              f"{table[n]['syncs']:.2f} syncs/frame, {table[n]['device_syncs']:.2f} host-aware ({kinds})")
    total = table["total"]
    print(f"{preset} {'offline' if offline else 'online'} {width}x{height}, {per} frames: "
          f"{total['launching_ops']:.0f} launching ops, {total['syncs']:.1f} syncs "
          f"({total['device_syncs']:.1f} host-aware) per frame")
    return {"preset": preset, "mode": "offline" if offline else "online", "size": f"{width}x{height}",
            "frames": per, "per_frame": table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="r50_vipseg_offline", help="model preset (random weights)")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--offline", action="store_true", help="with the temporal refiner")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(count(args.preset, args.height, args.width, args.frames, args.offline)))


if __name__ == "__main__":
    main()
