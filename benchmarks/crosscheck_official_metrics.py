"""Cross-check our VPQ / STQ against VIPSeg's own evaluator code on random videos (a verification tool, not a test).

    python benchmarks/crosscheck_official_metrics.py OFFICIAL_DIR [--trials 20]

OFFICIAL_DIR holds the unmodified ``eval_vpq_vspw.py`` and ``segmentation_and_tracking_quality.py`` from
github.com/VIPSeg-Dataset/VIPSeg-Dataset (ClipPanoFCN/). They are imported as they are; only their file
readers are pointed at in-memory arrays (PIL/tqdm are replaced by stubs) and NumPy >= 1.24's removed
``np.bool`` is restored for them. Random videos include void, id switches, class flicker, short videos and,
in half of the trials, ground-truth segments marked ``iscrowd`` (the VPQ script ignores them and does not
count predictions lying mostly on them; VIPSeg's STQ script does not read ``iscrowd``). Prints the largest
absolute difference per quantity; everything should be ~1e-15. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import types

import numpy as np

from app.core.metrics import VideoPair, evaluate
from app.core.vipseg.frames import PanopticFrame
from dvis_models.categories import vipseg_categories
from dvis_models.vipseg_format import id_to_rgb

ARRAYS: dict[tuple, np.ndarray] = {}


def load_official(folder: str):
    pil, image = types.ModuleType("PIL"), types.ModuleType("PIL.Image")
    image.open = ARRAYS.__getitem__
    pil.Image = image
    tqdm = types.ModuleType("tqdm")
    tqdm.tqdm = lambda iterable, **_: iterable
    sys.modules.update({"PIL": pil, "PIL.Image": image, "tqdm": tqdm})
    if not hasattr(np, "bool"):
        np.bool = bool  # the official STQ code predates NumPy 1.24
    sys.path.insert(0, folder)
    return importlib.import_module("eval_vpq_vspw"), importlib.import_module("segmentation_and_tracking_quality")


def random_video(rng, num_frames: int, categories: list[int], flicker: bool,
                 crowd: bool = False) -> list[PanopticFrame]:
    ids = rng.integers(1, 1 << 24, size=6)
    category_of = {int(i): int(rng.choice(categories)) for i in ids}
    crowd_ids = frozenset(int(i) for i in ids if crowd and rng.random() < 0.3)
    base = rng.integers(0, 7, size=(4, 4))
    frames = []
    for _ in range(num_frames):
        labels = base.copy()
        noise = rng.random(labels.shape) < 0.3
        labels[noise] = rng.integers(0, 7, size=int(noise.sum()))
        labels = np.kron(labels, np.ones((4, 4), dtype=np.int64))
        id_map = np.where(labels > 0, ids[np.maximum(labels - 1, 0)], 0).astype(np.int32)
        segments = {}
        for value in np.unique(id_map).tolist():
            if value:
                flip = flicker and rng.random() < 0.2
                segments[value] = int(rng.choice(categories)) if flip else category_of[value]
        frames.append(PanopticFrame(id_map, segments, crowd_ids & segments.keys()))
    return frames


def official_vpq(vpq_module, videos, categories) -> dict[int, tuple[float, float, float]]:
    table = {c.id: {"id": c.id, "isthing": int(c.isthing)} for c in categories}
    results = {}
    for nframes in (1, 2, 4, 6, 8):
        stat = vpq_module.PQStat()
        for video_id, gt, pred in videos:
            window_input = []
            for t, (g, p) in enumerate(zip(gt, pred)):
                ARRAYS[video_id, "gt", t], ARRAYS[video_id, "pred", t] = id_to_rgb(g.ids), id_to_rgb(p.ids)
                gt_json = {"segments_info": [{"id": i, "category_id": c, "iscrowd": int(i in g.crowd),
                                              "area": int((g.ids == i).sum())} for i, c in g.segments.items()]}
                pred_json = {"segments_info": [{"id": i, "category_id": c, "iscrowd": 0}
                                               for i, c in p.segments.items()]}
                window_input.append((gt_json, pred_json, (video_id, "gt", t), (video_id, "pred", t), None))
            stat += vpq_module.vpq_compute_single_core(table, nframes, window_input)
        row = []
        for isthing in (None, True, False):
            try:
                row.append(stat.pq_average(table, isthing)[0]["pq"])
            except ZeroDivisionError:  # the official script cannot score a group without any class
                row.append(math.nan)
        results[nframes] = tuple(row)
    return results


def official_stq(stq_module, videos, categories) -> dict:
    metric = stq_module.STQuality(124, [c.id for c in categories.things], 255, 16, 2**24)
    for sequence, (_, gt, pred) in enumerate(videos):
        numbering = []
        for frames in (gt, pred):
            order: list[int] = []
            for f in frames:
                order += [i for i in f.segments if i not in order]
            numbering.append({i: k for k, i in enumerate(order)})

        def encode(frame: PanopticFrame, instance_of: dict) -> np.ndarray:
            semantic = np.full(frame.ids.shape, 255, np.int64)
            instance = np.full(frame.ids.shape, 255, np.int64)
            for i, c in frame.segments.items():
                semantic[frame.ids == i], instance[frame.ids == i] = c, instance_of[i]
            return ((semantic << 16) + instance).astype(np.int32)

        for g, p in zip(gt, pred):
            metric.update_state(encode(g, numbering[0]), encode(p, numbering[1]), sequence)
    return metric.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official_dir")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    vpq_module, stq_module = load_official(args.official_dir)
    categories = vipseg_categories()
    choices = [2, 4, 60, 48, 0, 28, 14]  # things and stuff
    worst = {"vpq": 0.0, "stq": 0.0, "aq": 0.0, "sq": 0.0, "vpq_crowd": 0.0}
    crowd_trials, crowd_segments = 0, 0
    rng = np.random.default_rng(0)
    for trial in range(args.trials):
        with_crowd = trial % 2 == 1
        crowd_trials += with_crowd
        videos = []
        for v in range(3):
            num_frames = int(rng.integers(1, 10))
            gt = random_video(rng, num_frames, choices, flicker=False, crowd=with_crowd)
            crowd_segments += sum(len(g.crowd) for g in gt)
            pred = random_video(rng, num_frames, choices, flicker=True)
            pred = [g if rng.random() < 0.5 else p for g, p in zip(gt, pred)]
            videos.append((f"v{v}", gt, pred))
        ours = evaluate([VideoPair(v, g, p) for v, g, p in videos], categories)
        theirs = official_vpq(vpq_module, videos, categories)
        for window in ours.vpq.windows:
            for a, b in zip((window.all.pq, window.things.pq, window.stuff.pq), theirs[window.nframes]):
                if not (math.isnan(a) and math.isnan(b)):
                    key = "vpq_crowd" if with_crowd else "vpq"
                    worst[key] = max(worst[key], abs(a - b))
        reference = official_stq(stq_module, videos, categories)
        worst["stq"] = max(worst["stq"], abs(reference["STQ"] - ours.stq.stq))
        worst["aq"] = max(worst["aq"], abs(reference["AQ"] - ours.stq.aq))
        worst["sq"] = max(worst["sq"], abs(reference["IoU"] - ours.stq.sq))
    print(f"{args.trials} random trials ({crowd_trials} with {crowd_segments} crowd ground-truth segments), largest "
          "|ours - official|:")
    for name, value in worst.items():
        print(f"  {name:9s} {value:.3g}")
    print(json.dumps({"trials": args.trials, "crowd_trials": crowd_trials, "crowd_segments": crowd_segments,
                      "max_abs_diff": worst}))


if __name__ == "__main__":
    main()
