"""Training speed of the three stages with the bundled model's settings (iterations per second).

    python benchmarks/bench_training.py [--iters 20] [--threads 1] [--device cpu]

Uses the same clip lengths, image sizes and point counts as the README's bundled-model commands, on a
small synthetic dataset written to a temporary folder. The first iterations are not timed (warm-up).
On a CPU shared with other work, one thread per process is usually fastest (OpenMP threads that wait
for each other lose more than they gain when cores are busy).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from dvis_models.data.clip_dataset import VIPSegClipDataset
from dvis_models.data.synthetic import generate_dataset
from dvis_models.data.transforms import AugmentationConfig
from dvis_models.presets import build_model
from dvis_models.training.data import DatasetClips
from dvis_models.training.optim import build_optimizer
from dvis_models.training.stages import LossConfig, build_stage

# stage -> (frames per clip, points per frame), as in the README's bundled-model commands
SETTINGS = {"segmenter": (4, 2048), "tracker": (5, 2048), "refiner": (11, 1024)}


def bench_stage(stage: str, root: Path, iters: int, warmup: int, device: torch.device) -> float:
    frames, points = SETTINGS[stage]
    model = build_model("bundled_small").to(device)
    dataset = VIPSegClipDataset(root, "train", label_to_category=model.config.label_to_category, num_frames=frames,
                                augmentation=AugmentationConfig(short_edges=(112, 128, 144), max_size=240),
                                length=iters + warmup)
    clips = DatasetClips(dataset, 1, model.config.pixel_mean, model.config.pixel_std)
    module = build_stage(stage, model, LossConfig(num_points=points), match_switch_iter=(iters + warmup) // 2).train()
    optimizer = build_optimizer(module.model, lr=1e-4)
    start = 0.0
    for iteration in range(iters + warmup):
        if iteration == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        losses = module(clips(iteration, 0).to(device), iteration)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generate_dataset(root, num_videos=4, num_frames=24, size=(128, 160), seed=0, split="train")
        print(f"bundled_small, {args.threads} thread(s), {args.device}")
        for stage in SETTINGS:
            rate = bench_stage(stage, root, args.iters, args.warmup, torch.device(args.device))
            frames, points = SETTINGS[stage]
            print(f"  {stage:9s} {frames:2d} frames/clip, {points} points: {rate:5.2f} it/s")


if __name__ == "__main__":
    main()
