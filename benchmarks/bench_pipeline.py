"""Pipeline benchmark: time per frame by stage, and peak memory of online runs of growing length.

    python benchmarks/bench_pipeline.py                  # stage timings (R50, 480p + 720p, CPU and CUDA if any)
    python benchmarks/bench_pipeline.py --rss 50 500     # peak RSS of online runs (bundled_small, small frames)
    add --threads 1 on a shared machine: idle OpenMP threads spinning against other processes distort timings

Random weights are enough: the work per frame does not depend on the weight values, except post-processing,
which is timed with every slot kept (thresholds 0), its worst case.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from contextlib import nullcontext

import numpy as np
import torch

from dvis_models import VideoSegmenter, build_model
from dvis_models.postprocess import video_panoptic
from dvis_models.preprocess import prepare_frames

RESOLUTIONS = {"480p": (480, 854), "720p": (720, 1280)}


def _timer(device: torch.device):
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    return now


@torch.no_grad()
def stage_times(model, frames: list[np.ndarray], short_edge: int, device: torch.device) -> dict[str, float]:
    """Seconds per frame for each stage, run the way the pipeline runs them (offline model, one window)."""
    now = _timer(device)
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
    return times


def run_stage_benchmark(num_frames: int) -> None:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    torch.manual_seed(0)
    for device in devices:
        model = build_model("r50_vipseg_offline").to(device)
        for name, (height, width) in RESOLUTIONS.items():
            frames = [np.random.default_rng(i).integers(0, 255, (height, width, 3), dtype=np.uint8)
                      for i in range(num_frames)]
            stage_times(model, frames[:1], height, device)  # warm-up (allocator, kernels)
            times = stage_times(model, frames, height, device)
            total = sum(times.values())
            parts = ", ".join(f"{stage} {seconds * 1000:.0f}" for stage, seconds in times.items())
            precision = "fp16 autocast" if device.type == "cuda" else "fp32"
            print(f"R50 offline {name} {device.type} ({precision}, {num_frames} frames, {torch.get_num_threads()} "
                  f"threads): {total * 1000:.0f} ms/frame = {parts}")


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
    print(f"online bundled_small, {count} frames 224x128: peak RSS {peak_mb:.0f} MB, {elapsed / count * 1000:.0f} ms/frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3, help="frames per stage-timing run")
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
        run_stage_benchmark(args.frames)


if __name__ == "__main__":
    main()
