"""Semi-automatic labelling benchmark: mask propagation engines and prompted masks on synthetic videos.

    python benchmarks/bench_propagation.py [--quick] [--videos 6] [--hard 6]

Propagation: for each thing track of the held-out synthetic videos (split "val", 128x160, as ``dvis eval-bundled``)
and of a harder set (split "hard": 12-frame videos, so objects move twice as fast, with the
generator's occlusions and look-alike crossings), the ground-truth mask on its first visible frame is
propagated to its last (the keyframe is the first frame showing a quarter of its largest area); mean J (IoU)
and J&F (mean of J and DAVIS boundary F) over the frames after the keyframe, per engine, for the "copy the
keyframe mask" baseline, and for interpolation (the default engine with ground truth at both ends).
Speed: ms per frame on a synthetic video upscaled to 1280x720.

Prompted masks: NoC@85 on the held-out things (clicks at the centre of the largest error region, positive
on a miss, negative on a false positive, at most 20; a track that never reaches IoU 0.85 counts 20),
model proposals (GrabCut when none fits) against GrabCut alone.

The last printed line is one JSON object with per-engine J, JF and ms_per_frame, and the NoC numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import cv2
import numpy as np
import torch

from app.core.propagation.driver import DEFAULT_ENGINE, CopyEngine, Propagation, PropagationRequest
from app.core.propagation.flow import FlowEngine
from app.core.propagation.model_engine import ModelEngine
from app.core.propagation.prompts import Prompt, grabcut_mask, propose
from app.core.propagation.scores import boundary_f, jaccard
from app.core.propagation.segmenter import SegmenterCache
from dvis_models import load_checkpoint
from dvis_models.categories import vipseg_categories
from dvis_models.data.synthetic import render_video, video_rng
from dvis_models.resources import BUNDLED_CHECKPOINT

MAX_CLICKS = 20
SIZE = (128, 160)  # as `dvis eval-bundled`, the size the bundled model was trained at


def videos(split: str, count: int, frames: int):
    categories = vipseg_categories().to_json()
    things = {int(c["id"]) for c in categories if c["isthing"]}
    for index in range(count):
        video = render_video(f"syn_{split}_{index:04d}", video_rng(0, split, index), categories, SIZE, frames)
        tracks = {s["id"] for segments in video.segments for s in segments if s["category_id"] in things}
        yield video, sorted(tracks)


def truth(video, track: int) -> dict[int, np.ndarray]:
    return {t: ids == track for t, ids in enumerate(video.id_masks)}


def track_span(gt: dict[int, np.ndarray]) -> tuple[int, int]:
    """Keyframe: the first frame showing at least a quarter of the object's largest area (not a sliver
    entering at the edge, from which no method can recover the shape); end: its last visible frame."""
    areas = np.array([gt[t].sum() for t in sorted(gt)])
    return int(np.flatnonzero(areas >= 0.25 * areas.max())[0]), int(np.flatnonzero(areas)[-1])


def score(masks: dict[int, np.ndarray], gt: dict[int, np.ndarray], frames: list[int]) -> tuple[float, float]:
    js = [jaccard(masks[t], gt[t]) for t in frames]
    fs = [boundary_f(masks[t], gt[t]) for t in frames]
    return float(np.mean(js)), float(np.mean([(j + f) / 2 for j, f in zip(js, fs)]))


def propagation_scores(sets, engines, model) -> dict[str, dict[str, list[float]]]:
    results = {name: {"J": [], "JF": []} for name in [*engines, "interp"]}
    for video, tracks in sets:
        frames = video.frames.__getitem__
        segmenter = SegmenterCache(model, frames)
        factories = {"copy": CopyEngine, "flow": partial(FlowEngine, frames),
                     "model": partial(ModelEngine, segmenter, frames)}
        for track in tracks:
            gt = truth(video, track)
            first, last = track_span(gt)
            if last - first < 2:
                continue
            scored = list(range(first + 1, last + 1))
            for name in engines:
                run = Propagation({first: gt[first]}, PropagationRequest(first, stop=last + 1, min_area_fraction=0.0),
                                  len(video.frames), factories[name])
                for _ in run.run():
                    pass
                j, jf = score(run.masks, gt, scored)
                results[name]["J"].append(j)
                results[name]["JF"].append(jf)
            run = Propagation({first: gt[first], last: gt[last]}, PropagationRequest(first, stop=last + 1),
                              len(video.frames), factories[DEFAULT_ENGINE])
            for _ in run.run():
                pass
            j, jf = score(run.masks, gt, scored[:-1])
            results["interp"]["J"].append(j)
            results["interp"]["JF"].append(jf)
    return results


def timing(model, engines, frames: int = 6) -> dict[str, float]:
    video = render_video("timing", video_rng(0, "timing", 0), vipseg_categories().to_json(), num_frames=frames + 1)
    large = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in video.frames]
    track = max((s for s in video.segments[0]), key=lambda s: s["area"])["id"]
    key = cv2.resize((video.id_masks[0] == track).astype(np.uint8), (1280, 720), interpolation=cv2.INTER_NEAREST) > 0
    timings = {}
    for name in [*engines, "interp"]:
        segmenter = SegmenterCache(model, large.__getitem__)
        factories = {"copy": CopyEngine, "flow": partial(FlowEngine, large.__getitem__),
                     "model": partial(ModelEngine, segmenter, large.__getitem__)}
        key_masks = {0: key, frames: key} if name == "interp" else {0: key}
        engine = factories[DEFAULT_ENGINE if name == "interp" else name]
        run = Propagation(key_masks, PropagationRequest(0, min_area_fraction=0.0), len(large), engine)
        begin = time.perf_counter()
        for _ in run.run():
            pass
        timings[name] = 1000 * (time.perf_counter() - begin) / max(1, len(run.masks))
    return timings


def next_click(mask: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], bool]:
    """The interior-most point of the largest error region, and whether it is a positive (missed) pixel."""
    errors = mask != gt
    count, labels, stats, _ = cv2.connectedComponentsWithStats(errors.astype(np.uint8), connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = np.pad(labels == largest, 1).astype(np.uint8)
    distance = cv2.distanceTransform(region, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return (int(x), int(y)), bool(gt[y, x])


def clicks_needed(image: np.ndarray, gt: np.ndarray, segment) -> int:
    prompt, mask = Prompt(), np.zeros_like(gt)
    for clicks in range(1, MAX_CLICKS + 1):
        point, positive = next_click(mask, gt)
        (prompt.positives if positive else prompt.negatives).append(point)
        if not prompt.positives:
            continue
        mask = segment(prompt)
        if jaccard(mask, gt) >= 0.85:
            return clicks
    return MAX_CLICKS


def proposed_mask(image: np.ndarray, output, labels, prompt: Prompt) -> np.ndarray:
    return propose(image, prompt, output, labels)[0].mask


def grabcut_only(image: np.ndarray, prompt: Prompt) -> np.ndarray:
    return grabcut_mask(image, prompt).mask


def noc_scores(sets, model, min_area: int = 40) -> dict[str, float]:
    counts = {"model": [], "grabcut": []}
    labels = model.config.label_to_category
    for video, tracks in sets:
        segmenter = SegmenterCache(model, video.frames.__getitem__)
        for track in tracks:
            gt = truth(video, track)
            frame = max(gt, key=lambda t: gt[t].sum())  # the frame where the object is largest
            if gt[frame].sum() < min_area:
                continue
            image, output = video.frames[frame], segmenter.get(frame)
            counts["model"].append(clicks_needed(image, gt[frame], partial(proposed_mask, image, output, labels)))
            counts["grabcut"].append(clicks_needed(image, gt[frame], partial(grabcut_only, image)))
    return {name: {"NoC85": float(np.mean(c)), "one_click": float(np.mean(np.asarray(c) == 1)), "objects": len(c)}
            for name, c in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer videos: under two minutes on a CPU")
    parser.add_argument("--videos", type=int, default=8, help="held-out videos (24 frames)")
    parser.add_argument("--hard", type=int, default=8, help="hard videos (12 frames: twice the motion per frame)")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.hard = 2, 2  # about a minute of CPU time
    torch.set_num_threads(1)  # one thread each: timings of the work itself, not of contention for shared cores
    cv2.setNumThreads(1)
    model = load_checkpoint(BUNDLED_CHECKPOINT).eval()
    engines = ["copy", "flow", "model"]
    held_out = list(videos("val", args.videos, 24))
    hard = list(videos("hard", args.hard, 12))
    summary: dict[str, dict] = {}
    timings = timing(model, engines)
    per_set = {"held-out": propagation_scores(held_out, engines, model),
               "hard": propagation_scores(hard, engines, model)}
    per_set["all"] = {name: {metric: values + per_set["hard"][name][metric] for metric, values in r.items()}
                      for name, r in per_set["held-out"].items()}
    for label, results in per_set.items():
        print(f"{label}: {len(next(iter(results.values()))['J'])} tracks")
        for name, r in results.items():
            print(f"  {name:7s} J {np.mean(r['J']):.3f}  J&F {np.mean(r['JF']):.3f}")
            if label == "all":
                summary[name] = {"J": round(float(np.mean(r["J"])), 4), "JF": round(float(np.mean(r["JF"])), 4),
                                 "ms_per_frame": round(timings[name], 2)}
    for name, ms in timings.items():
        print(f"  {name:7s} {ms:.1f} ms per 1280x720 frame")
    noc = noc_scores(held_out, model)
    for name, n in noc.items():
        print(f"NoC@85 {name}: {n['NoC85']:.2f} clicks, "
              f"one click enough for {100 * n['one_click']:.0f}% of {n['objects']} objects")
    summary["noc85"] = {name: round(n["NoC85"], 2) for name, n in noc.items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
