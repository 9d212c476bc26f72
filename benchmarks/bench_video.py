"""VideoSource speed: sequential decode vs raw PyAV, exact random-access (seek) latency.

Encodes H.264 test clips (B-frames, keyframe every --gop frames, like camera/phone footage) at 720p and
1080p into a temporary folder, then prints frames/s and seek latency (mean / p95 ms). Frames read are
checked against the index drawn into their pixels, so the numbers are for exact access.

    python benchmarks/bench_video.py [--frames 240] [--gop 60] [--seeks 40]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.core.video import VideoSource  # noqa: E402
from tests.videos import make_video, read_index  # noqa: E402


def raw_pyav_fps(path: Path) -> float:
    """The floor to compare with: PyAV's own decode loop with threads, converting to RGB arrays."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None)
    return count / (time.perf_counter() - start)


def source_fps(path: Path) -> float:
    start = time.perf_counter()
    with VideoSource.open(path) as source:
        for index, frame in source.iter_frames():
            assert index % 10 or read_index(frame) == index  # spot checks: keep the check out of the timing
        count = source.num_frames
    return count / (time.perf_counter() - start)


def seek_latency_ms(path: Path, seeks: int, gop: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """Exact frame() latency with the RGB frame cache off; returns (open ms, {case: (mean ms, p95 ms)}).

    * cold: random targets, each in another keyframe interval than the one decoded before, so every
      read seeks and decodes from a keyframe (the decoded-frame buffer cannot help);
    * step back: the GUI's "previous frame" key, stepping backwards through the clip;
    * step forward: the "next frame" key.
    """
    start = time.perf_counter()
    source = VideoSource.open(path, cache_bytes=0)
    open_ms = (time.perf_counter() - start) * 1000
    rng = random.Random(0)
    cold, last_gop = [], -1
    while len(cold) < seeks:
        index = rng.randrange(source.num_frames)
        if abs(index // gop - last_gop) >= 2:
            cold.append(index)
            last_gop = index // gop
    n = min(seeks, source.num_frames)
    cases = {"cold": cold, "step back": list(range(source.num_frames - 1, source.num_frames - 1 - n, -1)),
             "step forward": list(range(n))}
    results = {}
    with source:
        for name, order in cases.items():
            times = []
            for index in order:
                start = time.perf_counter()
                frame = source.frame(index)
                times.append((time.perf_counter() - start) * 1000)
                assert read_index(frame) == index
            times.sort()
            results[name] = (statistics.mean(times), times[int(0.95 * (len(times) - 1))])
    return open_ms, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--gop", type=int, default=60)
    parser.add_argument("--seeks", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, size in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
            path = make_video(Path(folder) / f"{name}.mp4", num_frames=args.frames, size=size, fps=30,
                              gop=args.gop, crf=23)
            # best of 3, alternating: the machines are shared, the best run is the least disturbed one
            raw = ours = 0.0
            for _ in range(3):
                raw, ours = max(raw, raw_pyav_fps(path)), max(ours, source_fps(path))
            open_ms, latency = seek_latency_ms(path, args.seeks, args.gop)
            print(f"{name}: H.264 B-frames gop {args.gop}, {args.frames} frames")
            print(f"  sequential decode: VideoSource.iter_frames {ours:7.1f} fps | raw PyAV {raw:7.1f} fps "
                  f"({ours / raw:.0%})")
            print(f"  open (pts index + probe): {open_ms:.1f} ms")
            for case, (mean_ms, p95_ms) in latency.items():
                print(f"  exact frame() {case:12s} (cache off): mean {mean_ms:6.1f} ms, p95 {p95_ms:6.1f} ms")


if __name__ == "__main__":
    main()
