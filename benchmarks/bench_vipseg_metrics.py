"""Speed of VIPSeg export / import and of VPQ + STQ + diagnostics at 720p.

    python benchmarks/bench_vipseg_metrics.py [--frames 20] [--tracks 30]

Prints seconds per frame for each stage (synthetic moving rectangles over stuff, 1280x720).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from app.core.annotation import Annotation
from app.core.metrics import VideoPair, evaluate, stability_diagnostics
from app.core.progress import run_job
from app.core.vipseg import annotation_frames, export_vipseg, import_vipseg
from dvis_models.categories import vipseg_categories


def synthetic(num_frames: int, num_tracks: int, height: int = 720, width: int = 1280) -> Annotation:
    categories = vipseg_categories()
    annotation = Annotation(num_frames, height, width, categories)
    sky, ground = annotation.add_track(28).id, annotation.add_track(14).id
    things = [annotation.add_track(60 if k % 2 else 48).id for k in range(num_tracks)]
    rng = np.random.default_rng(0)
    starts = rng.integers(0, [height - 120, width - 200], size=(num_tracks, 2))
    for t in range(num_frames):
        m = np.full((height, width), sky, np.int32)
        m[height // 2 :] = ground
        for k, track in enumerate(things):
            y, x = starts[k]
            x = (x + 5 * t) % (width - 200)
            m[y : y + 100 + k % 20, x : x + 150] = track
        annotation.set_frame(t, m)
    return annotation


def timed(label: str, frames: int, work):
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    print(f"{label:<40s} {elapsed:7.2f} s  {1000 * elapsed / frames:7.1f} ms/frame")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--tracks", type=int, default=30)
    args = parser.parse_args()
    annotation = timed("build annotation (set_frame)", args.frames, lambda: synthetic(args.frames, args.tracks))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "ds"
        timed("export_vipseg (masks only, 720p)", args.frames,
              lambda: run_job(export_vipseg([("clip", annotation, None)], root)))
        (imported,) = timed("import_vipseg", args.frames, lambda: run_job(import_vipseg(root)))
    pairs = [VideoPair("clip", annotation_frames(annotation), annotation_frames(imported.annotation))]
    result = timed("evaluate (VPQ 5 windows + STQ)", args.frames, lambda: evaluate(pairs, annotation.categories))
    assert result.vpq.all == 1.0 or args.frames < 8
    timed("stability_diagnostics", args.frames, lambda: stability_diagnostics(annotation))


if __name__ == "__main__":
    main()
