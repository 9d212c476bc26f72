"""The window stays responsive with a large document: showing it after it has loaded, and saving it."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import opening
from app.core.annotation import Annotation
from app.core.project import Project
from dvis_models.categories import vipseg_categories
from tests.gui_helpers import LoopGaps, errors, window  # noqa: F401
from tests.videos import make_video

LARGE_FRAMES, LARGE_TRACKS = 1500, 300
CELL = (4, 3)  # width, height of one track's block in the 64x48 frames


def large_annotation(frames: int, tracks: int, seed: int = 0) -> Annotation:
    """`tracks` things, each present in three spans of 20-130 frames (about 30 per frame), on 64x48 frames."""
    rng = np.random.default_rng(seed)
    categories = vipseg_categories()
    things = [c.id for c in categories if c.isthing][:20]
    annotation = Annotation(frames, 48, 64, categories)
    ids = np.array([annotation.add_track(int(rng.choice(things))).id for _ in range(tracks)])
    alive = np.zeros((tracks, frames), bool)
    for track in range(tracks):
        for start in rng.integers(0, frames, 3):
            alive[track, start : start + rng.integers(20, 130)] = True
    cells_x, cells_y = 64 // CELL[0], 48 // CELL[1]
    for index in range(frames):
        cells = np.zeros(cells_x * cells_y, np.int32)
        present = np.flatnonzero(alive[:, index])
        cells[present % len(cells)] = ids[present]
        track_map = np.kron(cells.reshape(cells_y, cells_x), np.ones(CELL[::-1], np.int32))
        annotation.set_frame(index, track_map)
    return annotation


@pytest.fixture(scope="module")
def large_project(tmp_path_factory):
    """A saved project of LARGE_FRAMES frames and LARGE_TRACKS tracks on a real video; copy it before changing it."""
    root = tmp_path_factory.mktemp("large")
    video = make_video(root / "long.mp4", num_frames=LARGE_FRAMES, size=(64, 48), gop=250)
    Project.create(root / "project", video, annotation=large_annotation(LARGE_FRAMES, LARGE_TRACKS)).close()
    return root / "project"


def test_showing_a_large_project_leaves_the_event_loop_running(window, large_project, qtbot, monkeypatch, errors):
    monkeypatch.setattr(opening, "BACKGROUND_OPEN_BYTES", 0)  # read on the opener's worker, as a large one is
    loop = LoopGaps()
    shown: list[int] = []
    window.session.loaded.connect(lambda: shown.append(len(loop.busy)))
    loop.start()
    window.open_path(large_project)
    qtbot.waitUntil(lambda: window.counts_label.text().startswith(f"{LARGE_TRACKS} tracks"), timeout=60_000)
    qtbot.wait(300)  # the panels paint
    loop.stop()
    assert shown and not errors
    assert window.objects.model.rowCount() == len(window.timeline.lanes) == LARGE_TRACKS
    assert window.stability.summary.text().startswith(f"{LARGE_TRACKS} tracks")
    showing = loop.busy[shown[0]:]  # from the turn that showed the document on
    # In one go, filling the panels kept the UI thread busy for 300-500 ms; in steps, no turn takes 100 ms.
    assert max(showing) < 0.1, [round(busy * 1000) for busy in sorted(showing)[-5:]]
