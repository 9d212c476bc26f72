"""How fast the GUI's panels refresh on a long video with many tracks, how fast a 1080p frame redraws, and how
long the UI thread is blocked while a large project opens and shows and while it is saved.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py --frames 3000 --tracks 300

Builds an annotation with `tracks` objects that appear and disappear (several spans each) over `frames`
small frames, then times the timeline, object list and stability panel refreshes, plus one overlay
redraw of a 1920x1080 frame with 60 tracks.

Then, on a real video of `--project-frames` frames with a saved project of `--tracks` tracks (about 30 per
frame): the longest gap of a 10 ms UI timer (and the UI thread's CPU time in it, which a busy machine does not
inflate) while the project opens on the opener's worker and its panels fill, in steps (today) and in one go
(the panels filled in the turn that shows the document, as before), and while every frame of it is saved with
Ctrl+S and Save As on the writer thread (today) against the UI thread's block of a synchronous save (the
`Session.save_project` the window called before). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.core import opening
from app.core.annotation import Annotation
from app.core.colors import overlay
from app.core.project import Project
from dvis_models.categories import vipseg_categories
from tests.gui_helpers import LoopGaps
from tests.test_gui_responsive import large_annotation
from tests.videos import make_video


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


def timed(label: str, function, repeat: int = 3) -> float:
    best = min(_once(function) for _ in range(repeat))
    print(f"{label:<34} {best * 1000:8.1f} ms")
    return round(best * 1000, 1)


def _once(function) -> float:
    start = time.perf_counter()
    function()
    QApplication.processEvents()
    return time.perf_counter() - start


def blocked(start, done, settle_s: float = 0.3) -> dict:
    """The longest UI timer gap (ms) and the UI thread's CPU time in it while `start()` runs and until `done()`."""
    loop = LoopGaps()
    loop.start()
    began = time.perf_counter()
    start()
    while not done():
        QTest.qWait(5)
    took = time.perf_counter() - began
    QTest.qWait(round(settle_s * 1000))  # what the last change paints
    loop.stop()
    return {"max_gap_ms": round(max(loop.gaps, default=0) * 1000, 1),
            "max_busy_ms": round(max(loop.busy, default=0) * 1000, 1), "took_ms": round(took * 1000)}


def responsiveness(frames: int, tracks: int, folder: Path) -> dict:
    """Open + show and save a large project in a fresh window per case (see the module docstring)."""
    from app.gui.main_window import MainWindow

    video = make_video(folder / "long.mp4", num_frames=frames, size=(64, 48), gop=250)
    Project.create(folder / "project", video, annotation=large_annotation(frames, tracks)).close()
    opening.BACKGROUND_OPEN_BYTES = 0  # the project opens on the opener's worker, as a large one does
    results: dict = {}

    def window() -> MainWindow:
        made = MainWindow(settings=QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                          cache_dir=folder / "cache")
        made.resize(1600, 1000)
        made.show()
        QTest.qWait(200)
        return made

    def opened(shown: MainWindow) -> bool:
        return shown.counts_label.text().startswith(f"{tracks} tracks") and not shown._panels.pending

    def close(shown: MainWindow) -> None:
        shown.diagnosis.stop()
        shown.close()
        shown.session.release_project()  # its lock: the next window opens it again

    for case in ("warm_up", "steps", "one_go", "steps_again", "one_go_again"):  # the first open imports modules
        shown = window()
        if case.startswith("one_go"):  # every panel step at once, in the turn that shows the document
            shown._panels.run = lambda steps: [step() for step in steps]
        measured = blocked(lambda shown=shown: shown.open_path(folder / "project"), lambda shown=shown: opened(shown))
        print(f"open + show ({case}): {measured}")
        if case != "warm_up":
            results[f"open_show_{case}"] = measured
        close(shown)

    shown = window()
    shown.open_path(folder / "project")
    while not opened(shown):
        QTest.qWait(20)
    annotation, session = shown.controller.annotation, shown.session

    def everything_unsaved() -> None:  # as after a run over the whole video: every frame is written
        annotation.mask_store.hold_all()
        annotation.tables_dirty = True
        session.history.mark_modified()

    everything_unsaved()
    results["save_background"] = blocked(shown.save, lambda: not session.modified)
    everything_unsaved()
    results["save_sync"] = blocked(session.save_project, lambda: True)
    results["save_as_background"] = blocked(lambda: shown.autosaver.save(folder / "copy1"),
                                            lambda: session.project.folder == folder / "copy1")
    results["save_as_sync"] = blocked(lambda: session.save_project(folder / "copy2"), lambda: True)
    for name in ("save_background", "save_sync", "save_as_background", "save_as_sync"):
        print(f"{name}: {results[name]}")
    close(shown)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--tracks", type=int, default=300)
    parser.add_argument("--project-frames", type=int, default=2000)
    args = parser.parse_args()
    app = QApplication([])
    from app.gui.main_window import MainWindow

    start = time.perf_counter()
    annotation = build(args.frames, args.tracks)
    print(f"built {args.frames} frames x {args.tracks} tracks in {time.perf_counter() - start:.1f} s")
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    window.session.annotation = annotation  # panels only: no video needed
    spans = sum(len(annotation.track_spans(t)) for t in annotation.tracks)
    print(f"{spans} spans on the timeline")
    panels = {name: timed(label, function) for name, label, function in (
        ("timeline_refresh_ms", "timeline refresh (all lanes)", window.timeline.refresh),
        ("objects_refresh_ms", "object list refresh", window.objects.refresh),
        ("stability_refresh_ms", "stability panel refresh", window.stability.refresh),
        ("timeline_repaint_ms", "timeline repaint", lambda: window.timeline.plot.grab()))}

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    track_map = (np.arange(1080)[:, None] // 135 * 8 + np.arange(1920)[None, :] // 240).astype(np.int32) + 1
    for mode in ("fill", "contour", "fade"):
        timed(f"overlay 1080p, 64 tracks, {mode}", lambda mode=mode: overlay(frame, track_map, 0.5, mode))
    window.close()
    with tempfile.TemporaryDirectory() as folder:
        results = responsiveness(args.project_frames, args.tracks, Path(folder))
    app.quit()
    summary = {"frames": args.frames, "tracks": args.tracks, "project_frames": args.project_frames, **panels,
               **results, "load_average_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
