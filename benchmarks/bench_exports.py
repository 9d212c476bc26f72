"""Export speed (frames/s) for each editor export, on a 720p H.264 clip with three moving objects.

    python benchmarks/bench_exports.py [--frames 60] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.exports import (  # noqa: E402
    export_alpha_video,
    export_cutouts,
    export_overlay_video,
    export_track_masks,
)
from app.core.progress import run_job
from app.core.video import VideoSource  # noqa: E402
from tests.videos import make_video  # noqa: E402


class MovingObjects:
    """Masks of three objects drifting across the frame (what exports read: ``track_map(index)``)."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width

    def track_map(self, index: int) -> np.ndarray:
        track_map = np.zeros((self.height, self.width), np.int32)
        for track_id in (1, 2, 3):
            center = ((index * 7 * track_id) % self.width, self.height * track_id // 4)
            cv2.circle(track_map, center, self.height // 6, track_id, -1)
        return track_map


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        path = make_video(out / "clip.mp4", num_frames=args.frames, size=(width, height), fps=30, gop=30)
        annotation = MovingObjects(height, width)
        frames = range(args.frames)
        jobs = {
            "masks PNG (2 tracks)": lambda s: run_job(export_track_masks(annotation, [1, 2], frames, out / "masks")),
            "cut-outs RGBA PNG (1 track)": lambda s: run_job(export_cutouts(annotation, s, [1], frames, out / "cut")),
            "alpha matte H.264": lambda s: run_job(export_alpha_video(annotation, s, [1, 3], frames,
                                                                      out / "matte.mp4")),
            "overlay H.264 (fill_contour)": lambda s: run_job(export_overlay_video(annotation, s, None, frames,
                                                                            out / "overlay.mp4")),
        }
        print(f"{width}x{height}, {args.frames} frames")
        for name, job in jobs.items():
            with VideoSource.open(path) as source:  # fresh source: decoding is part of the cost
                start = time.perf_counter()
                result = job(source)
                elapsed = time.perf_counter() - start
            print(f"  {name:30s} {result.frames / elapsed:6.1f} frames/s")


if __name__ == "__main__":
    main()
