"""Peak memory of `dvis infer` (bundled model) online and offline over growing video lengths.

    python benchmarks/bench_memory.py                 # quick: 360p, 60 and 300 frames (a few minutes on 2 cores)
    python benchmarks/bench_memory.py --full          # 720p, 500 / 2000 / 5000 frames (hours on a CPU)
    python benchmarks/bench_memory.py --code /path/to/other/checkout   # measure another checkout's code

Each run is a fresh `python -m app.cli infer` process on a generated H.264 video; its peak RSS comes from
``os.wait4`` (the kernel's maximum resident set size of that one child), so decoder, pipeline, writer and
everything else the command keeps are counted. The bundled model resizes every frame to a 128-pixel short
side, so the per-frame tensors kept between segmenter and refiner are the same at 360p and 720p: the quick
mode's slope (MB per frame) is the 720p slope; only the fixed part (post-processing at full resolution,
decoded frames) grows with the resolution. The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent


def write_video(path: Path, num_frames: int, height: int) -> None:
    """A moving scene (shapes over a gradient) as H.264, generated frame by frame (never all in memory)."""
    width = height * 16 // 9 // 2 * 2
    ramp = np.linspace(40, 200, width, dtype=np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for t in range(num_frames):
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = ramp[None, :, None].astype(np.uint8)
            for k in range(4):
                size = height // 6
                x = int((width * (0.15 + 0.2 * k) + 4 * t * (k + 1)) % (width - size))
                y = int((height - size) * (0.5 + 0.4 * np.sin(0.05 * t + k)))
                frame[y:y + size, x:x + size] = (60 * k, 255 - 60 * k, 128)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def peak_rss_mb(video: Path, mode: str, out: Path, code: Path, threads: int) -> tuple[float, float]:
    """Run `dvis infer --<mode>` in a fresh process; its peak RSS in MB and its wall time in seconds."""
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "app.cli", "infer", str(video), "--out", str(out), f"--{mode}", "--device", "cpu"]
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    log = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"dvis infer failed ({child.returncode}):\n{log}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="720p, 500 / 2000 / 5000 frames")
    parser.add_argument("--frames", type=int, nargs="+",
                        help="video lengths (default: quick 60 300, full 500 2000 5000)")
    parser.add_argument("--height", type=int, help="frame height (default: quick 360, full 720)")
    parser.add_argument("--modes", nargs="+", choices=("online", "offline"), default=["online", "offline"])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose app.cli runs (default: this one)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    args = parser.parse_args()
    lengths = args.frames or ([500, 2000, 5000] if args.full else [60, 300])
    height = args.height or (720 if args.full else 360)

    results: dict[str, dict[str, list]] = {mode: {"frames": [], "peak_mb": []} for mode in args.modes}
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as scratch:
        for length in lengths:
            video = Path(scratch) / f"clip_{length}.mp4"
            write_video(video, length, height)
            for mode in args.modes:
                peak, seconds = peak_rss_mb(video, mode, Path(scratch) / f"out_{mode}_{length}", args.code,
                                            args.threads)
                results[mode]["frames"].append(length)
                results[mode]["peak_mb"].append(round(peak))
                print(f"{mode:7} {length:5} frames {height}p: peak RSS {peak:6.0f} MB  ({seconds:.0f} s, "
                      f"{seconds / length * 1000:.0f} ms/frame)", flush=True)
            video.unlink()
    for mode, numbers in results.items():
        frames, peaks = numbers["frames"], numbers["peak_mb"]
        if len(frames) > 1:
            slope = (peaks[-1] - peaks[0]) / (frames[-1] - frames[0])
            print(f"{mode}: {slope:.2f} MB per extra frame ({peaks[0]} -> {peaks[-1]} MB)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
