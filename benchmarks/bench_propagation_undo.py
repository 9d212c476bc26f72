"""Undo of a long propagation at 720p: the whole run is one edit whose inverse puts back every frame.

    python benchmarks/bench_propagation_undo.py [--frames 100]

A 1280x720 video with a stuff region and a moving car; a person's mask is set on every frame after the
first (as a propagation's frames arrive), then the run is undone and redone. Baseline in the same run: the
inverse a mask set used to have, a PNG of the changed box per frame (``PixelPatch``), which re-encodes
the whole frame on undo. Prints ms per frame; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from app.core.annotation import Annotation
from app.core.edits import EditGroup, PixelPatch, SetMask
from app.core.propagation.labelling import AppliedPropagation, FrameMask
from dvis_models.categories import vipseg_categories

HEIGHT, WIDTH = 720, 1280
SKY, PERSON, CAR = 28, 60, 48


def video(frames: int) -> tuple[Annotation, int]:
    annotation = Annotation(frames, HEIGHT, WIDTH, vipseg_categories())
    sky, person, car = (annotation.add_track(c) for c in (SKY, PERSON, CAR))
    for index in range(frames):
        ids = np.zeros((HEIGHT, WIDTH), np.int32)
        ids[:200] = sky.id
        ids[300:600, 100 + 5 * index : 400 + 5 * index] = car.id
        annotation.set_frame(index, ids)
    annotation.mask_store.clear_cache()
    return annotation, person.id


def person(index: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(mask, (400 + 6 * index, 450), (180, 220), 0, 0, 360, 1, -1)
    return mask > 0


def timed(run) -> tuple[float, object]:
    begin = time.perf_counter()
    result = run()
    return time.perf_counter() - begin, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    edits = [FrameMask(i, SetMask.of(i, 0, person(i))) for i in range(1, args.frames)]
    count = len(edits)

    annotation, track = video(args.frames)
    box_inverses = []  # the baseline: the changed box of each frame as it was before, as a PixelPatch
    for frame_mask in edits:
        frame_mask.edit.track_id = track
        touched = frame_mask.edit.mask(annotation) | (annotation.track_map(frame_mask.frame) == track)
        x0, y0, w, h = cv2.boundingRect(touched.view(np.uint8))
        before = annotation.mask_store.get(frame_mask.frame)[y0 : y0 + h, x0 : x0 + w]
        row = annotation.slot_row(frame_mask.frame)
        box_inverses.append(PixelPatch.of(frame_mask.frame, y0, x0, before, row, [annotation.tracks[track].to_json()]))
        annotation.apply(frame_mask.edit)
    annotation.mask_store.clear_cache()
    baseline, _ = timed(lambda: annotation.apply(EditGroup([p.to_json() for p in reversed(box_inverses)])))

    annotation, track = video(args.frames)
    applied = AppliedPropagation(annotation, track)
    apply_time, _ = timed(lambda: [applied.add(frame_mask) for frame_mask in edits])
    undo_edit = applied.finish(0, [e.frame for e in edits])
    annotation.mask_store.clear_cache()
    undo, redo_edit = timed(lambda: annotation.apply(undo_edit))
    redo, _ = timed(lambda: annotation.apply(redo_edit))
    summary = {"frames": count, "undo_box_patch_ms_per_frame": round(1000 * baseline / count, 2),
               "undo_ms_per_frame": round(1000 * undo / count, 2), "redo_ms_per_frame": round(1000 * redo / count, 2),
               "apply_ms_per_frame": round(1000 * apply_time / count, 2)}
    summary["undo_speedup"] = round(baseline / undo, 1)
    print(f"undo, box patches (before): {summary['undo_box_patch_ms_per_frame']:.2f} ms per 1280x720 frame")
    print(f"undo, frame patches:        {summary['undo_ms_per_frame']:.2f} ms per frame "
          f"({summary['undo_speedup']}x faster)")
    print(f"redo:                       {summary['redo_ms_per_frame']:.2f} ms per frame")
    print(f"applying the run's frames:  {summary['apply_ms_per_frame']:.2f} ms per frame")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
