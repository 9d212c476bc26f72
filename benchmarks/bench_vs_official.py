"""Side by side with the official DVIS code: time per frame by stage, official vs ours (exact and fast mode).

Run it with the interpreter of a venv that can import the official code's dependencies (torch, fvcore, iopath,
omegaconf, pycocotools...; the official sources are NOT part of this project):

    /work/official/venv/bin/python benchmarks/bench_vs_official.py --official /work/official --threads 1

It builds the official R50 DVIS offline model (``configs/VIPSeg/DVIS_Offline_R50_720p.yaml``) with detectron2 on
the CPU, seeded random weights, loads the same state_dict into ``dvis_models`` (strict), and runs one clip through
the official ``model([video])`` (its own normalization, segmenter, tracker, refiner and VPS post-processing) and
through ``VideoSegmenter(offline=True)`` (exact, ``fast=True``, and the exact path with earlier formulations
swapped back in, see ``OURS``), interleaved repeat by repeat, same thread
count. Frames are given at the wanted size, so neither side resizes. Stages are timed by wrapping the backbone,
the pixel decoder (official ``forward_features``), the mask decoder, the tracker and the refiner of each model;
``rest`` is everything else (normalization, padding, post-processing). Imports the official code needs but
the CPU path never runs (torchvision ops, timm, matplotlib, panopticapi, detectron2's compiled ``_C``,
the deformable-attention CUDA extension) are stubbed. ``drift`` is the largest absolute difference of the
refiner's class logits from the official ones. The last line is one JSON object: per resolution, per side,
ms/frame per stage, ``total``, ``ratio`` (to official) and ``drift``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.abc
import importlib.machinery
import json
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dvis_models import VideoSegmenter, build_model, ms_deform_attn, pixel_decoder  # noqa: E402

RESOLUTIONS = {"480p": (480, 854), "720p": (720, 1280)}
STUBBED = ("torchvision", "timm", "matplotlib", "panopticapi", "MultiScaleDeformableAttention", "detectron2._C")
STAGES = ("backbone", "pixel decoder", "decoder", "tracker", "refiner")
# Our sides: fast mode or not, and module attributes swapped back to an earlier formulation during the run, so
# each speed-up is measured in the same run: "before" is the exact path before the gather sampling and the
# chunked encoder FFN, "gather only" adds the sampling alone.
OURS = {
    "before": (False, {(ms_deform_attn, "ms_deform_attn_sample"): ms_deform_attn.ms_deform_attn_sample_grid,
                       (pixel_decoder, "FFN_CHUNK_TOKENS"): 1 << 62}),
    "gather only": (False, {(pixel_decoder, "FFN_CHUNK_TOKENS"): 1 << 62}),
    "exact": (False, {}),
    "fast": (True, {}),
}


class _Stub:
    """Stands in for any name of a stubbed module (a base class too); calling it fails loudly."""

    def __new__(cls, *args, **kwargs):
        raise RuntimeError(f"a stubbed official dependency was called ({cls.__name__})")


def _stub_attribute(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Stub


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of ``STUBBED`` modules (and their submodules) get empty modules whose every name is ``_Stub``."""

    def find_spec(self, name, path, target=None):
        if any(name == stub or name.startswith(stub + ".") for stub in STUBBED):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__file__ = f"/stub/{spec.name.replace('.', '/')}/__init__.py"
        module.__getattr__ = _stub_attribute
        return module

    def exec_module(self, module) -> None:
        pass


def build_official(root: Path):
    """The official R50 offline DVIS model on the CPU, in eval mode, with its own random initialization."""
    sys.meta_path.insert(0, _StubFinder())
    sys.path[:0] = [str(root / "detectron2"), str(root / "DVIS")]
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model as build_official_model
    from detectron2.projects.deeplab import add_deeplab_config
    from dvis import add_dvis_config, add_minvis_config
    from mask2former import add_maskformer2_config
    from mask2former_video import add_maskformer2_video_config

    cfg = get_cfg()
    for add in (add_deeplab_config, add_maskformer2_config, add_maskformer2_video_config, add_minvis_config,
                add_dvis_config):
        add(cfg)
    cfg.merge_from_file(str(root / "DVIS" / "configs" / "VIPSeg" / "DVIS_Offline_R50_720p.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    return build_official_model(cfg).eval()


class StageClock:
    """Accumulates seconds per stage by wrapping bound methods; ``last_refined`` keeps the refiner's output."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self.last_refined = None

    def wrap(self, owner, method: str, stage: str) -> None:
        inner = getattr(owner, method)

        def timed(*args, **kwargs):
            start = self.clock()
            result = inner(*args, **kwargs)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + self.clock() - start
            if stage == "refiner":
                self.last_refined = result
            return result

        setattr(owner, method, timed)


def official_runner(model, clock: StageClock):
    head = model.sem_seg_head
    for owner, method, stage in ((model.backbone, "forward", "backbone"),
                                 (head.pixel_decoder, "forward_features", "pixel decoder"),
                                 (head.predictor, "forward", "decoder"), (model.tracker, "forward", "tracker"),
                                 (model.refiner, "forward", "refiner")):
        clock.wrap(owner, method, stage)

    def run(frames: list[np.ndarray]) -> None:
        height, width = frames[0].shape[:2]
        video = {"image": [torch.from_numpy(f).permute(2, 0, 1).float() for f in frames], "height": height,
                 "width": width}
        model([video])

    return run


@contextlib.contextmanager
def patched(attributes: dict):
    saved = {key: getattr(*key) for key in attributes}
    for (owner, name), value in attributes.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)


def ours_runner(segmenter: VideoSegmenter, clock: StageClock, attributes: dict):
    model = segmenter.model
    for owner, stage in ((model.backbone, "backbone"), (model.sem_seg_head.pixel_decoder, "pixel decoder"),
                         (model.sem_seg_head.predictor, "decoder"), (model.tracker, "tracker"),
                         (model.refiner, "refiner")):
        clock.wrap(owner, "forward", stage)

    def run(frames: list[np.ndarray]) -> None:
        with patched(attributes):
            for _ in segmenter.run(frames, num_frames=len(frames)):
                pass

    return run


def refiner_logits(output) -> torch.Tensor:
    logits = output["pred_logits"] if isinstance(output, dict) else output.pred_logits
    return logits.float().reshape(-1, logits.shape[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, default=Path("/work/official"),
                        help="folder holding the official DVIS and detectron2 sources")
    parser.add_argument("--frames", type=int, default=3, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median reported)")
    parser.add_argument("--resolutions", nargs="+", choices=list(RESOLUTIONS), default=list(RESOLUTIONS))
    parser.add_argument("--sides", nargs="+", choices=list(OURS), default=list(OURS), help="our sides to time")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for every side")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                        help="this process's CPU time (default; use with --threads 1 on a shared machine) or wall")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    now = time.process_time if args.clock == "cpu" else time.perf_counter

    torch.manual_seed(0)
    official = build_official(args.official)
    ours = build_model("r50_vipseg_offline")
    weights = {k: v for k, v in official.state_dict().items() if not k.startswith("criterion.")}  # training loss
    ours.load_state_dict(weights, strict=True)
    ours.eval()

    summary: dict = {}
    with torch.no_grad():
        for name in args.resolutions:
            height, width = RESOLUTIONS[name]
            frames = [np.random.default_rng(i).integers(0, 255, (height, width, 3), dtype=np.uint8)
                      for i in range(args.frames)]
            clocks = {side: StageClock(now) for side in ("official", *args.sides)}
            runners = {"official": official_runner(official, clocks["official"])}
            for side in args.sides:
                fast, attributes = OURS[side]
                segmenter = VideoSegmenter(copy.deepcopy(ours), device="cpu", offline=True, short_edge=height,
                                           max_size=4 * width, fast=fast)  # own modules: own stage timers
                runners[side] = ours_runner(segmenter, clocks[side], attributes)
            runs: dict[str, list[dict[str, float]]] = {side: [] for side in runners}
            logits: dict[str, torch.Tensor] = {}
            for run in runners.values():  # warm-up: allocator, oneDNN primitives
                run(frames[:1])
            for _ in range(args.repeats):
                for side, run in runners.items():
                    clock = clocks[side]
                    clock.seconds.clear()
                    start = now()
                    run(frames)
                    total = now() - start
                    stages = {stage: clock.seconds.get(stage, 0.0) for stage in STAGES}
                    stages["rest"] = total - sum(stages.values())
                    stages["total"] = total
                    runs[side].append({stage: 1000 * s / len(frames) for stage, s in stages.items()})
                    logits[side] = refiner_logits(clock.last_refined)
            result: dict = {}
            for side, side_runs in runs.items():
                medians = {stage: round(statistics.median(r[stage] for r in side_runs), 1) for stage in side_runs[0]}
                official_ms = result["official"]["total"] if result else medians["total"]
                drift = (logits[side] - logits["official"]).abs().max().item()
                result[side] = medians | {"ratio": round(medians["total"] / official_ms, 3),
                                          "drift": float(f"{drift:.2e}")}
                stage_ratios = ", ".join(
                    f"{stage} {ms:.0f}" + (f" (x{ms / result['official'][stage]:.2f})" if side != "official" else "")
                    for stage, ms in medians.items() if stage != "total")
                print(f"R50 offline {name} {side} ({args.frames} frames {width}x{height}, {args.threads} threads, "
                      f"{args.clock} clock, median of {args.repeats}): {medians['total']:.0f} ms/frame "
                      f"x{result[side]['ratio']:.3f} of official = {stage_ratios}; refiner-logit drift {drift:.1e}")
            summary[name] = result
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
