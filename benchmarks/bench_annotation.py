"""Annotation store benchmarks: track-edit latency, mask store size and decode speed, project save time.

    python benchmarks/bench_annotation.py [--frames 10000] [--tracks 100]

Track edits touch only tables, so the 10,000-frame annotation uses small frames (pixels play no
part in their cost); the mask-store numbers use real 720p panoptic-like maps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from app.core.annotation import Annotation
from app.core.edits import DeleteTrack, MergeTracks, Paint, RelabelTrack, SplitTrack, SwapTracks
from app.core.mask_store import decode_slots
from app.core.project import Project
from dvis_models.categories import vipseg_categories

THING_CATEGORIES = [c.id for c in vipseg_categories().things]


def build_long_annotation(num_frames: int, num_tracks: int, seed: int = 0) -> Annotation:
    """Thing tracks with random spans (a few hundred to all frames), ~half present per frame."""
    rng = np.random.default_rng(seed)
    annotation = Annotation(num_frames, 48, 64, vipseg_categories())
    spans = []
    for i in range(num_tracks):
        annotation.add_track(THING_CATEGORIES[i % len(THING_CATEGORIES)], provenance="model")
        length = int(rng.integers(num_frames // 20, num_frames + 1))
        start = int(rng.integers(0, num_frames - length + 1))
        spans.append((start, start + length))
    cells = np.arange(48 * 64).reshape(48, 64) % num_tracks  # every track owns a fixed set of pixels
    for frame in range(num_frames):
        alive = np.array([1 + t if a <= frame < b else 0 for t, (a, b) in enumerate(spans)])
        annotation.set_frame(frame, alive[cells])
    return annotation


def time_edit(annotation: Annotation, make_edit, repeats: int) -> tuple[float, float]:
    """Median ms of apply and of applying its inverse (undo), over ``repeats`` different track choices."""
    applies, undos = [], []
    for r in range(repeats):
        edit = make_edit(r)
        start = time.perf_counter()
        inverse = annotation.apply(edit)
        middle = time.perf_counter()
        annotation.apply(inverse)
        end = time.perf_counter()
        applies.append((middle - start) * 1e3)
        undos.append((end - middle) * 1e3)
    return statistics.median(applies), statistics.median(undos)


def bench_track_edits(num_frames: int, num_tracks: int, repeats: int) -> Annotation:
    t0 = time.perf_counter()
    annotation = build_long_annotation(num_frames, num_tracks)
    print(f"built {num_frames} frames x {num_tracks} tracks in {time.perf_counter() - t0:.1f} s "
          f"(slot columns {annotation.table_arrays()['seg'].shape[1]})")
    mid = num_frames // 2

    def pair(r: int) -> tuple[int, int]:
        return 1 + (2 * r) % num_tracks, 1 + (2 * r + 1) % num_tracks

    def splittable(r: int) -> tuple[int, int]:
        for t in range(1 + r, num_tracks + 1):
            frames = annotation.presence(t)
            if len(frames) > 2 and frames[0] < frames[len(frames) // 2]:
                return t, int(frames[len(frames) // 2])
        raise RuntimeError("no splittable track")

    def other_category(track_id: int) -> int:
        return 62 if annotation.tracks[track_id].category_id != 62 else 63

    edits = {
        "merge (whole tracks)": lambda r: MergeTracks(*pair(r)),
        "split at a frame": lambda r: SplitTrack(*splittable(r)),
        "swap from a frame on": lambda r: SwapTracks(*pair(r), start=mid),
        "swap on one frame": lambda r: SwapTracks(*pair(r), start=mid, stop=mid + 1),
        "delete whole track": lambda r: DeleteTrack(pair(r)[0]),
        "delete frame range": lambda r: DeleteTrack(pair(r)[0], start=mid, stop=mid + num_frames // 10),
        "relabel whole track": lambda r: RelabelTrack(pair(r)[0], other_category(pair(r)[0])),
        "relabel from a frame": lambda r: RelabelTrack(pair(r)[0], other_category(pair(r)[0]), start=mid),
    }
    print(f"\ntrack-edit latency on {num_frames} frames, {num_tracks} tracks (median of {repeats}):")
    print(f"  {'edit':24s} {'apply ms':>9s} {'undo ms':>9s}")
    for name, make in edits.items():
        apply_ms, undo_ms = time_edit(annotation, make, repeats)
        print(f"  {name:24s} {apply_ms:9.2f} {undo_ms:9.2f}")
    start = time.perf_counter()
    for track_id in annotation.tracks:
        annotation._presence.pop(track_id, None)  # cold cache: what a timeline redraw after an edit costs
        annotation.track_spans(track_id)
    print(f"  timeline query, all {num_tracks} tracks, cold: {(time.perf_counter() - start) * 1e3:.2f} ms")
    return annotation


def panoptic_like_map(rng: np.random.Generator, height: int = 720, width: int = 1280, objects: int = 20) -> np.ndarray:
    """Stuff bands with wavy borders plus ellipses: roughly the boundary statistics of real panoptic maps."""
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    track_map = np.ones((height, width), np.int32)
    for band in range(1, 5):
        border = height * band / 5 + 25 * np.sin(x / (60 + 20 * band) + band)
        track_map[y > border] = band + 1
    for k in range(objects):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(15, 160)), int(rng.integers(15, 160)))
        cv2.ellipse(track_map, center, axes, float(rng.uniform(0, 180)), 0, 360, 10 + k, thickness=-1)
    return track_map


def bench_mask_store(frames: int = 30) -> None:
    rng = np.random.default_rng(1)
    annotation = Annotation(frames, 720, 1280, vipseg_categories())
    for k in range(1, 40):
        annotation.add_track(THING_CATEGORIES[k % len(THING_CATEGORIES)], track_id=k)
    sizes, encode_ms, decode_ms, compose_ms = [], [], [], []
    for frame in range(frames):
        start = time.perf_counter()
        annotation.set_frame(frame, panoptic_like_map(rng))
        encode_ms.append((time.perf_counter() - start) * 1e3)
        data = annotation.mask_store.blob(frame)
        sizes.append(len(data) / 1024)
        start = time.perf_counter()
        decode_slots(data, 720, 1280)
        decode_ms.append((time.perf_counter() - start) * 1e3)
    annotation.mask_store.clear_cache()
    for frame in range(frames):
        start = time.perf_counter()
        annotation.track_map(frame)
        compose_ms.append((time.perf_counter() - start) * 1e3)
    raw = 720 * 1280 / 1024
    print(f"\nmask store at 720p ({frames} panoptic-like frames, ~25 segments each):")
    print(f"  PNG slot map: {statistics.mean(sizes):.1f} KB/frame on disk (raw uint8 {raw:.0f} KB)")
    print(f"  decode: {statistics.median(decode_ms):.2f} ms/frame; track_map (decode + lookup, cold cache): "
          f"{statistics.median(compose_ms):.2f} ms/frame")
    print(f"  set_frame (slots + tables + PNG encode): {statistics.median(encode_ms):.2f} ms/frame")
    track_id = annotation.track_at(0, 640, 360)
    start = time.perf_counter()
    inverse = annotation.apply(Paint(0, track_id or 1, "brush", [[600, 300], [700, 420]], 12))
    paint_ms = (time.perf_counter() - start) * 1e3
    print(f"  brush stroke at 720p: {paint_ms:.1f} ms; its undo record: {len(str(inverse.to_json())) / 1024:.1f} KB "
          "JSON")


def bench_project_save(annotation: Annotation) -> None:
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "video.bin"
        video.write_bytes(b"\0" * 4096)
        start = time.perf_counter()
        project = Project.create(Path(folder) / "project", video, annotation=annotation)
        first = time.perf_counter() - start
        project.apply(MergeTracks(1, 2))
        start = time.perf_counter()
        project.save()
        after_edit = time.perf_counter() - start
        project.annotation.apply(Paint(10, 2, "brush", [[5, 5]], 3))
        start = time.perf_counter()
        project.autosave()
        after_paint = time.perf_counter() - start
        project.close()
        start = time.perf_counter()
        Project.open(Path(folder) / "project").close()
        reopen = time.perf_counter() - start
        tables = next((Path(folder) / "project").glob("tables.g*.npz")).stat().st_size / 1024
    print(f"\nproject of {annotation.num_frames} frames: first save {first:.2f} s (all masks); save after a track edit "
          f"{after_edit * 1e3:.0f} ms; autosave after one paint {after_paint * 1e3:.0f} ms; open {reopen * 1e3:.0f} "
          f"ms; tables file {tables:.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    annotation = bench_track_edits(args.frames, args.tracks, args.repeats)
    bench_mask_store()
    bench_project_save(annotation)


if __name__ == "__main__":
    main()
