"""Does fine-tuning from the app help? The bundled model fine-tuned on corrected synthetic videos, scored on others.

    python benchmarks/bench_finetune.py [--videos 4] [--iterations 300] [--stage tracker] [--threads 1]

A project is made of ``--videos`` synthetic videos of their own split (``finetune``: neither the bundled model's
training videos nor the evaluation videos) played one after another, a black frame between them; their ground
truth is the project's "corrected" annotation (imported tracks). The app's fine-tune job (``app.core.finetune``)
then trains the bundled model on CPU, holding the last video out. The before/after VPQ is measured on OTHER
videos: ``dvis eval-bundled``'s held-out ``val`` split (8 videos x 24 frames, 128x160), online (tracker) and,
for the refiner stage, offline. The last printed line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from app.core.annotation import Annotation, Provenance
from app.core.finetune import FinetuneRequest, LossPoint, Scores, finetune, score_text
from app.core.jobs import evaluate_model
from app.core.progress import run_job
from app.core.project import Project
from app.core.vipseg import import_vipseg
from dvis_models import load_checkpoint
from dvis_models.categories import vipseg_categories
from dvis_models.data.synthetic import generate_dataset
from dvis_models.resources import BUNDLED_CHECKPOINT
from dvis_models.vipseg_format import read_rgb_image

SIZE = (128, 160)  # the bundled model's training and evaluation size
FRAMES = 24


def corrected_project(root: Path, videos: int, seed: int) -> Path:
    """A project of ``videos`` synthetic videos in a row (one image folder, a black frame between two videos)
    whose annotation is their ground truth, recorded as run with the bundled model."""
    generate_dataset(root / "ds", videos, FRAMES, SIZE, seed, split="finetune")
    imported = run_job(import_vipseg(root / "ds", "finetune"))
    frames_dir = root / "frames"
    frames_dir.mkdir()
    num_frames = videos * FRAMES + videos - 1
    annotation = Annotation(num_frames, SIZE[0], SIZE[1], vipseg_categories())
    index = 0
    for number, video in enumerate(imported):
        if number:
            cv2_write(frames_dir / f"{index:08d}.jpg", np.zeros((*SIZE, 3), np.uint8))
            index += 1
        ids = {}  # this video's track -> the project's track (stuff: one track per category for the whole project)
        for track in video.annotation.tracks.values():
            shared = None if track.isthing else annotation.stuff_track(track.category_id)
            ids[track.id] = shared or annotation.add_track(track.category_id, provenance=Provenance.IMPORTED).id
        lut = np.zeros(max(ids) + 1, np.int32)
        for old, new in ids.items():
            lut[old] = new
        for frame, image in enumerate(video.image_paths):
            cv2_write(frames_dir / f"{index:08d}.jpg", read_rgb_image(image))
            annotation.set_frame(index, lut[video.annotation.track_map(frame)])
            index += 1
    model = {"model": "bundled", "offline": False}
    Project.create(root / "project", frames_dir, annotation=annotation, model=model).close()
    return root / "project"


def cv2_write(path: Path, rgb: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def score(model, root: Path, offline: bool) -> Scores:
    return Scores.of(run_job(evaluate_model(model, root, "val", offline=offline)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4, help="corrected videos in the project (the last is held out)")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--stage", default="tracker", choices=("tracker", "refiner", "segmenter"))
    parser.add_argument("--eval-videos", type=int, default=8, help="videos of the val split scored before and after")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    offline = args.stage == "refiner"
    with tempfile.TemporaryDirectory(prefix="dvis-bench-finetune-") as temp:
        root = Path(temp)
        project = corrected_project(root, args.videos, args.seed)
        generate_dataset(root / "val", args.eval_videos, FRAMES, SIZE, 0, split="val")  # eval-bundled's videos
        before = score(load_checkpoint(BUNDLED_CHECKPOINT), root / "val", offline)
        print(f"bundled model on {args.eval_videos} val videos: VPQ {score_text(before.vpq)}", flush=True)
        start = time.perf_counter()

        def report(item) -> None:
            if isinstance(item, LossPoint) and item.iteration % max(1, item.total // 10) == 0:
                print(f"  it {item.iteration}/{item.total} loss {item.loss:.3f}", flush=True)

        result = run_job(finetune(FinetuneRequest(project, args.stage, args.iterations, "bench", library=root / "lib")),
                         report)
        seconds = time.perf_counter() - start
        tuned = load_checkpoint(root / "lib" / "bench.pth")
        after = score(tuned, root / "val", offline)
    print(f"job's own held-out frames ({result.heldout_frames}): VPQ {score_text(result.before.vpq)} -> "
          f"{score_text(result.after.vpq)}; trained on {result.train_frames} frames in {seconds:.0f} s")
    print(f"val videos ({'offline' if offline else 'online'}): VPQ {score_text(before.vpq)} -> {score_text(after.vpq)} "
          f"(things {score_text(before.things)} -> {score_text(after.things)}, stuff {score_text(before.stuff)} -> "
          f"{score_text(after.stuff)})")
    print(json.dumps({
        "stage": args.stage, "iterations": args.iterations, "train_frames": result.train_frames,
        "before": {"vpq": before.vpq, "things": before.things, "stuff": before.stuff},
        "after": {"vpq": after.vpq, "things": after.things, "stuff": after.stuff},
        "job_heldout": {"frames": result.heldout_frames, "before": result.before.vpq, "after": result.after.vpq},
        "seconds": round(seconds, 1),
    }))


if __name__ == "__main__":
    main()
