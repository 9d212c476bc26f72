"""Turn a trained ``model_final.pth`` into the compact file shipped in ``resources/``.

Weights are stored as float16 (half the size; the bundled model is a few MB). ``load_checkpoint``
copies them into the float32 model it builds, so nothing else changes.

    python -m dvis_models.training.release runs/refiner/model_final.pth resources/models/dvis_bundled_small.pth
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dvis_models.checkpoint import load_checkpoint, save_checkpoint


def release(source: Path, target: Path) -> None:
    model = load_checkpoint(source)
    save_checkpoint(model.half(), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Store a trained DVIS checkpoint compactly (float16 weights).")
    parser.add_argument("source", type=Path, help="model_final.pth written by dvis train")
    parser.add_argument("target", type=Path, help="where to write the compact file")
    args = parser.parse_args(argv)
    release(args.source, args.target)
    print(f"wrote {args.target} ({args.target.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
