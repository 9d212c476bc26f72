"""Pipeline benchmark: time per frame by stage, exact vs fast CPU mode, and peak memory of online runs.

    python benchmarks/bench_pipeline.py                  # stage timings (R50, 480p + 720p, CPU and CUDA if any)
    python benchmarks/bench_pipeline.py --rss 50 500     # peak RSS of online runs (bundled_small, small frames)
    add --threads 1 on a shared machine: idle OpenMP threads spinning against other processes distort timings;
    --clock cpu (with --threads 1) counts this process's CPU seconds, which waiting for other processes does not add to

On the CPU each resolution times the exact model and every fast-mode conversion (``dvis_models.fast``) alone and
combined, interleaved repeat by repeat so machine load hits them alike; it prints per-stage medians, the ratio to
exact and the largest output difference from exact (mask features, tracker embeddings, refiner logits). The last
line is one JSON object: per resolution, per variant, ms/frame per stage, ``total``, ``ratio`` and ``drift``.

Random weights are enough: the work per frame does not depend on the weight values, except post-processing,
which is timed with every slot kept (thresholds 0), its worst case.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

from dvis_models import VideoSegmenter, build_model
from dvis_models.fast import fast_model, quantize_linears, to_channels_last
from dvis_models.postprocess import video_panoptic
from dvis_models.preprocess import prepare_frames

RESOLUTIONS = {"480p": (480, 854), "720p": (720, 1280)}


# Fast-mode conversions timed alone and combined (each makes a converted copy of the exact model).
CPU_VARIANTS = {
    "channels_last": lambda model: to_channels_last(copy.deepcopy(model)),
    "int8_linears": lambda model: quantize_linears(copy.deepcopy(model)),
    "fast": fast_model,
}


def _timer(device: torch.device, clock: str = "wall"):
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.process_time() if clock == "cpu" else time.perf_counter()

    return now


@torch.no_grad()
def stage_times(model, frames: list[np.ndarray], short_edge: int, device: torch.device, clock: str = "wall",
                outputs: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Seconds per frame for each stage, run the way the pipeline runs them (offline model, one window).

    ``outputs``, when given, receives the stages' main outputs (to measure how far a variant drifts)."""
    now = _timer(device, clock)
    autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    config = model.config
    times: dict[str, float] = {}

    def timed(name, fn):
        start = now()
        result = fn()
        times[name] = (now() - start) / len(frames)
        return result

    prepared = prepare_frames(frames, short_edge, config.test_max_size, device=device)
    model.tracker.reset()
    with autocast:
        features = timed("backbone", lambda: model.backbone(prepared.images))
        mask_features, multi_scale = timed("pixel decoder", lambda: model.sem_seg_head.pixel_decoder(features))
        segmented = timed("decoder", lambda: model.sem_seg_head.predictor(multi_scale, mask_features, with_masks=False))
        tracked = timed("tracker", lambda: model.tracker(segmented.pred_embds, segmented.mask_features))
        refined = timed("refiner", lambda: model.refiner(
            tracked.pred_embds, model.tracker.frame_forward(segmented.pred_embds), segmented.mask_features,
            mask_device="cpu"))
    timed("post-processing", lambda: list(video_panoptic(
        refined.pred_logits.float().cpu(), refined.pred_masks.transpose(0, 1), prepared.padded_size,
        prepared.resized_size, prepared.original_size, config.num_thing_classes,
        aux_cls=tracked.pred_logits.float().mean(0).cpu(), object_mask_threshold=0.0, overlap_threshold=0.0,
        device=device)))
    if outputs is not None:
        outputs.update(mask_features=segmented.mask_features, tracker_embeds=tracked.pred_embds,
                       refiner_logits=refined.pred_logits)
    return times


def run_stage_benchmark(num_frames: int, repeats: int, resolutions: list[str], clock: str,
                        variants: list[str] | None = None) -> dict:
    """Per-stage ms/frame (median of ``repeats``) of the exact model and, on the CPU, of each fast variant
    (``variants``: the names of those to time, default all)."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    torch.manual_seed(0)
    summary: dict = {}
    for device in devices:
        model = build_model("r50_vipseg_offline").to(device)
        models = {"exact": model} | ({name: make(model) for name, make in CPU_VARIANTS.items()
                                      if variants is None or name in variants} if device.type == "cpu" else {})
        for name in resolutions:
            height, width = RESOLUTIONS[name]
            frames = [np.random.default_rng(i).integers(0, 255, (height, width, 3), dtype=np.uint8)
                      for i in range(num_frames)]
            runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in models}
            outputs: dict[str, dict[str, torch.Tensor]] = {variant: {} for variant in models}
            for variant_model in models.values():  # warm-up (allocator, kernels, oneDNN primitives)
                stage_times(variant_model, frames[:1], height, device, clock)
            for _ in range(repeats):  # interleaved, so load changes hit every variant alike
                for variant, variant_model in models.items():
                    runs[variant].append(stage_times(variant_model, frames, height, device, clock, outputs[variant]))
            precision = "fp16 autocast" if device.type == "cuda" else "fp32"
            result = {}
            for variant, variant_runs in runs.items():
                stages = {stage: 1000 * statistics.median(run[stage] for run in variant_runs)
                          for stage in variant_runs[0]}
                stages["total"] = 1000 * statistics.median(sum(run.values()) for run in variant_runs)
                drift = max((outputs[variant][key].float() - outputs["exact"][key].float()).abs().max().item()
                            for key in outputs["exact"])
                result[variant] = {**{k: round(v, 1) for k, v in stages.items()},
                                   "ratio": round(stages["total"] / result["exact"]["total"] if result else 1.0, 3),
                                   "drift": float(f"{drift:.2e}")}
                parts = ", ".join(f"{stage} {ms:.0f}" for stage, ms in stages.items() if stage != "total")
                print(f"R50 offline {name} {device.type} {variant} ({precision}, {num_frames} frames, "
                      f"{torch.get_num_threads()} threads, {clock} clock, median of {repeats}): "
                      f"{stages['total']:.0f} ms/frame = {parts}; x{result[variant]['ratio']:.2f} of exact, "
                      f"max drift {drift:.1e}")
            summary[f"{name}_{device.type}"] = result
    return summary


def online_peak_rss(num_frames: int) -> None:
    """One online run of ``num_frames`` small frames through VideoSegmenter; prints this process's peak RSS."""
    torch.manual_seed(0)
    model = build_model("bundled_small")
    base = np.random.default_rng(0).integers(0, 255, (128, 224, 3), dtype=np.uint8)
    frames = (np.roll(base, 2 * t, axis=1) for t in range(num_frames))  # generated lazily, never all in memory
    segmenter = VideoSegmenter(model, device="cpu", offline=False, short_edge=128, max_size=224,
                               object_mask_threshold=0.0, overlap_threshold=0.0)
    start = time.perf_counter()
    count = sum(1 for _ in segmenter.run(frames, num_frames=num_frames))
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"online bundled_small, {count} frames 224x128: peak RSS {peak_mb:.0f} MB, {elapsed / count * 1000:.0f} "
          "ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3, help="frames per stage-timing run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per variant (median reported)")
    parser.add_argument("--resolutions", nargs="+", choices=list(RESOLUTIONS), default=list(RESOLUTIONS))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (use with --threads 1 on a shared machine)")
    parser.add_argument("--variants", nargs="*", choices=list(CPU_VARIANTS),
                        help="fast-mode variants timed beside exact (default all; none: exact only)")
    parser.add_argument("--rss", type=int, nargs="*", help="measure peak RSS of online runs of these lengths")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 gives stable numbers on a shared machine)")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        online_peak_rss(args.rss_child)
    elif args.rss:
        for length in args.rss:  # a fresh process per length: peak RSS is per process
            threads = ["--threads", str(args.threads)] if args.threads else []
            subprocess.run([sys.executable, __file__, "--rss-child", str(length), *threads], check=True)
    else:
        print(json.dumps(run_stage_benchmark(args.frames, args.repeats, args.resolutions, args.clock, args.variants)))


if __name__ == "__main__":
    main()
