"""Benchmark: the multi-scale deformable attention sampling formulations vs the straightforward one.

Prints milliseconds per call of the per-level ``grid_sample`` and the one-``embedding_bag`` gather formulations
and of the straightforward one, for R50-sized pyramids (levels 1/8, 1/16, 1/32; 256 dims, 8 heads, 4 points) of a
480p (864x480 padded) and a 720p (1280x736 padded) frame, and each one's largest absolute difference from the
straightforward result. Locations are uniform over the map (worse cache locality than a model's, whose points
stay near the query). The last line is one JSON object.

    python benchmarks/bench_ms_deform_attn.py [--device cuda] [--repeats 5] [--threads N]

``reference_ms_deform_attn_sample`` is the plain formulation (stack all levels and points, broadcast-multiply,
sum); tests/test_segmenter.py uses it as the numerical reference.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dvis_models.ms_deform_attn import ms_deform_attn_sample_gather, ms_deform_attn_sample_grid

PYRAMIDS = {"480p": (480, 864), "720p": (736, 1280)}


def reference_ms_deform_attn_sample(value: Tensor, spatial_shapes: Sequence[tuple[int, int]],
                                    sampling_locations: Tensor, attention_weights: Tensor) -> Tensor:
    """Same contract as :func:`dvis_models.ms_deform_attn.ms_deform_attn_sample`, written the obvious way."""
    n, _, m, d = value.shape
    _, lq, _, n_levels, n_points, _ = sampling_locations.shape
    per_level = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    samples = []
    for level, (h, w) in enumerate(spatial_shapes):
        value_l = per_level[level].flatten(2).transpose(1, 2).reshape(n * m, d, h, w)
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # (N*M, Lq, P, 2)
        samples.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attention_weights.transpose(1, 2).reshape(n * m, 1, lq, n_levels * n_points)
    out = (torch.stack(samples, dim=-2).flatten(-2) * weights).sum(-1)  # (N*M, D, Lq)
    return out.view(n, m * d, lq).transpose(1, 2)


def random_inputs(height: int, width: int, device: str, frames: int = 1, heads: int = 8, head_dim: int = 32,
                  points: int = 4, seed: int = 0) -> tuple[Tensor, list[tuple[int, int]], Tensor, Tensor]:
    """Value/locations/weights for the 1/8, 1/16, 1/32 levels of a (height, width) padded frame."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(height // s, width // s) for s in (8, 16, 32)]
    total = sum(h * w for h, w in shapes)
    value = torch.randn(frames, total, heads, head_dim, generator=gen)
    # Some locations fall outside [0, 1] to exercise the zero padding.
    locations = torch.rand(frames, total, heads, len(shapes), points, 2, generator=gen) * 1.2 - 0.1
    weights = torch.rand(frames, total, heads, len(shapes), points, generator=gen).softmax(-1)
    return value.to(device), shapes, locations.to(device), weights.to(device)


def time_ms(fn, args, repeats: int, device: str) -> float:
    """Mean wall time per call after one warm-up call."""
    fn(*args)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    formulations = {"grid_sample": ms_deform_attn_sample_grid, "gather": ms_deform_attn_sample_gather}
    summary = {}
    with torch.no_grad():
        for name, (h, w) in PYRAMIDS.items():
            inputs = random_inputs(h, w, args.device)
            expected = reference_ms_deform_attn_sample(*inputs)
            ref_ms = time_ms(reference_ms_deform_attn_sample, inputs, args.repeats, args.device)
            summary[name] = {"straightforward_ms": round(ref_ms, 1)}
            for label, fn in formulations.items():
                ms = time_ms(fn, inputs, args.repeats, args.device)
                diff = (fn(*inputs) - expected).abs().max().item()
                summary[name] |= {f"{label}_ms": round(ms, 1), f"{label}_diff": float(f"{diff:.2e}")}
                print(f"{name} ({w}x{h}, {inputs[0].shape[1]} queries): {label} {ms:7.1f} ms, straightforward "
                      f"{ref_ms:7.1f} ms, speed-up {ref_ms / ms:4.2f}x, max|diff| {diff:.2e}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
