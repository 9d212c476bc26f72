"""Turn a trained ``model_final.pth`` into the compact file shipped in ``resources/``.

Weights are stored as float16 (half the size; the bundled model is a few MB). ``load_checkpoint``
copies them into the float32 model it builds, so nothing else changes. ``--object-mask-threshold``
stores a post-processing score threshold calibrated for this model (choose it on videos that are
neither training nor evaluation data; the official models use 0.8).

    python -m dvis_models.training.release runs/refiner/model_final.pth resources/models/dvis_bundled_small.pth
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from dvis_models.checkpoint import load_checkpoint, save_checkpoint


def release(source: Path, target: Path, object_mask_threshold: float | None = None) -> None:
    model = load_checkpoint(source)
    if object_mask_threshold is not None:
        model.config = replace(model.config, object_mask_threshold=object_mask_threshold)
    save_checkpoint(model, target, half=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Store a trained DVIS checkpoint compactly (float16 weights).")
    parser.add_argument("source", type=Path, help="model_final.pth written by dvis train")
    parser.add_argument("target", type=Path, help="where to write the compact file")
    parser.add_argument("--object-mask-threshold", type=float, help="minimum class score of a kept segment")
    args = parser.parse_args(argv)
    release(args.source, args.target, args.object_mask_threshold)
    print(f"wrote {args.target} ({args.target.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
