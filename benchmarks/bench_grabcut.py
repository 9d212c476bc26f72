"""GrabCut proposals at 720p: GrabCut on the whole frame (the baseline) against GrabCut on the prompt's
region (``grabcut_region``: the box or the clicks' discs plus a margin), as ``grabcut_mask`` runs it.

    python benchmarks/bench_grabcut.py [--videos 2]

For the largest thing objects of synthetic frames upscaled to 1280x720, two prompts each: one positive click
at the object's most interior point, and its bounding box grown by 5%. Prints ms per proposal and mean IoU
with the object's true mask for both ways; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from app.core.propagation.prompts import Prompt, grabcut_mask, grabcut_seeds
from app.core.propagation.scores import jaccard
from dvis_models.categories import vipseg_categories
from dvis_models.data.synthetic import render_video, video_rng

SIZE = (1280, 720)


def whole_frame(image: np.ndarray, prompt: Prompt, iterations: int = 4) -> np.ndarray:
    """The baseline: the same seeds and clean-up, GrabCut over every pixel of the frame."""
    seeds = grabcut_seeds(prompt, *image.shape[:2])
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), seeds, None, background, foreground, iterations,
                cv2.GC_INIT_WITH_MASK)
    mask = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    clicked = {int(labels[y, x]) for x, y in prompt.positives} - {0}
    return np.isin(labels, list(clicked)) if clicked else mask


def prompts(videos: int, per_frame: int = 3):
    categories = vipseg_categories().to_json()
    things = {int(c["id"]) for c in categories if c["isthing"]}
    for index in range(videos):
        video = render_video(f"grabcut_{index}", video_rng(0, "grabcut", index), categories, num_frames=1)
        image = cv2.resize(video.frames[0], SIZE, interpolation=cv2.INTER_LINEAR)
        ids = cv2.resize(video.id_masks[0].astype(np.int32), SIZE, interpolation=cv2.INTER_NEAREST)
        segments = sorted((s for s in video.segments[0] if s["category_id"] in things), key=lambda s: -s["area"])
        for segment in segments[:per_frame]:
            gt = ids == segment["id"]
            distance = cv2.distanceTransform(np.pad(gt, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
            bx, by, bw, bh = cv2.boundingRect(gt.astype(np.uint8))
            pad_x, pad_y = max(1, bw // 20), max(1, bh // 20)
            box = (max(0, bx - pad_x), max(0, by - pad_y), min(SIZE[0], bx + bw + pad_x), min(SIZE[1], by + bh + pad_y))
            yield "click", image, gt, Prompt(positives=[(int(x), int(y))])
            yield "box", image, gt, Prompt(box=box)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2, help="synthetic frames (three objects each)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows: dict[str, dict[str, list[float]]] = {}
    for kind, image, gt, prompt in prompts(args.videos):
        for way, run in (("whole", whole_frame), ("region", lambda i, p: grabcut_mask(i, p).mask)):
            begin = time.perf_counter()
            mask = run(image, prompt)
            row = rows.setdefault(f"{kind}_{way}", {"ms": [], "iou": []})
            row["ms"].append(1000 * (time.perf_counter() - begin))
            row["iou"].append(jaccard(mask, gt))
    summary = {}
    for name, row in rows.items():
        summary[name] = {"ms": round(float(np.mean(row["ms"])), 1), "iou": round(float(np.mean(row["iou"])), 3),
                         "prompts": len(row["ms"])}
        print(f"{name:13s} {summary[name]['ms']:8.1f} ms per proposal  IoU {summary[name]['iou']:.3f}  "
              f"({len(row['ms'])} prompts, 1280x720)")
    for kind in ("click", "box"):
        summary[f"{kind}_speedup"] = round(summary[f"{kind}_whole"]["ms"] / summary[f"{kind}_region"]["ms"], 2)
        print(f"{kind}: region {summary[f'{kind}_speedup']:.2f}x faster than the whole frame")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
