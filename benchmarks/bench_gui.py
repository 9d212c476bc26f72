"""How fast the GUI's panels refresh on a long video with many tracks, and how fast a 1080p frame redraws.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py --frames 3000 --tracks 300

Builds an annotation with `tracks` objects that appear and disappear (several spans each) over `frames`
small frames, then times the timeline, object list and stability panel refreshes, plus one overlay
redraw of a 1920x1080 frame with 60 tracks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PySide6.QtWidgets import QApplication

from app.core.annotation import Annotation
from app.core.colors import overlay
from dvis_models.categories import vipseg_categories


def build(frames: int, tracks: int, seed: int = 0) -> Annotation:
    rng = np.random.default_rng(seed)
    person = vipseg_categories().by_name("person").id
    annotation = Annotation(frames, 20, 20, vipseg_categories())
    ids = [annotation.add_track(person).id for _ in range(tracks)]
    alive = rng.random((tracks, frames)) < 0.2  # noisy presence: many spans per lane
    alive = np.logical_or(alive, np.roll(alive, 1, axis=1))
    for index in range(frames):
        present = [ids[t] for t in np.flatnonzero(alive[:, index])[:400]]
        track_map = np.zeros(400, np.int32)
        track_map[: len(present)] = present  # one pixel per present track is enough for the panels
        annotation.set_frame(index, track_map.reshape(20, 20))
    return annotation


def timed(label: str, function, repeat: int = 3) -> None:
    best = min(_once(function) for _ in range(repeat))
    print(f"{label:<34} {best * 1000:8.1f} ms")


def _once(function) -> float:
    start = time.perf_counter()
    function()
    QApplication.processEvents()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--tracks", type=int, default=300)
    args = parser.parse_args()
    app = QApplication([])
    from app.gui.main_window import MainWindow

    start = time.perf_counter()
    annotation = build(args.frames, args.tracks)
    print(f"built {args.frames} frames x {args.tracks} tracks in {time.perf_counter() - start:.1f} s")
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    window.controller.annotation = annotation  # panels only: no video needed
    annotation.listeners.append(window.controller._on_annotation_change)
    spans = sum(len(annotation.track_spans(t)) for t in annotation.tracks)
    print(f"{spans} spans on the timeline")
    timed("timeline refresh (all lanes)", window.timeline.refresh)
    timed("object list refresh", window.objects.refresh)
    timed("stability panel refresh", window.stability.refresh)
    timed("timeline repaint", lambda: window.timeline.plot.grab())

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    track_map = (np.arange(1080)[:, None] // 135 * 8 + np.arange(1920)[None, :] // 240).astype(np.int32) + 1
    for mode in ("fill", "contour", "fade"):
        timed(f"overlay 1080p, 64 tracks, {mode}", lambda mode=mode: overlay(frame, track_map, 0.5, mode))
    window.close()
    app.quit()


if __name__ == "__main__":
    main()
