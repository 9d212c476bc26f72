"""The timeline's presence image (lanes, gaps between lanes, long videos folded into columns) and what the shown
timeline draws over it, read back from its pixels."""

import numpy as np

from app.core.colors import track_color
from app.core.edits import MarkFrames
from app.core.keyframes import PROPAGATED
from app.gui.timeline import MAX_IMAGE_COLUMNS, presence_image
from tests.gui_helpers import PERSON, SIZE, errors, open_focused, video_path, window  # noqa: F401
from tests.videos import make_damaged_mjpeg


def test_lanes_are_coloured_where_tracks_are_present():
    image, sub, per_column = presence_image([(np.array([0, 1, 5]), (10, 20, 30)), (np.array([2]), (200, 0, 0))], 8)
    assert sub == 4 and per_column == 1 and image.shape == (8, 8, 4)
    assert (image[0:3, [0, 1, 5], 3] == 255).all() and (image[0:3, [2, 3, 4, 6, 7], 3] == 0).all()
    assert tuple(image[1, 5, :3]) == (10, 20, 30)
    assert (image[3, :, 3] == 0).all()  # the gap row between lanes
    assert (image[4:7, 2, :3] == (200, 0, 0)).all()


def test_long_videos_fold_frames_into_columns():
    frames = 10 * MAX_IMAGE_COLUMNS
    image, _, per_column = presence_image([(np.array([frames - 1]), (1, 2, 3))], frames)
    assert image.shape[1] == MAX_IMAGE_COLUMNS and per_column == 10
    assert image[0, -1, 3] == 255 and image[0, :-1, 3].max() == 0


def many_tracks(window, count: int = 24) -> list[int]:
    """Fill every frame with `count` people side by side (as a run would): their track ids, left to right."""
    from app.core.result_merger import ResultMerger
    from dvis_models.types import FrameResult, Segment

    width, height = SIZE
    stripes = np.repeat(np.arange(1, count + 1), -(-width // count))[:width]
    track_map = np.broadcast_to(stripes, (height, width)).astype(np.int32)
    merger = ResultMerger(window.controller.annotation)
    for index in range(window.controller.num_frames):
        segments = [Segment(i, PERSON, True, 0.9, int((track_map == i).sum())) for i in range(1, count + 1)]
        merger.add(FrameResult(index, track_map.copy(), segments))
    return [merger.mapping[i] for i in range(1, count + 1)]


def lane_column(timeline, frame: float, lane: int) -> np.ndarray:
    """The RGB pixels the timeline shows at `frame` from the middle of `lane` down to the middle of the gap below."""
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QImage

    plot, box = timeline.plot, timeline.plot.getViewBox()
    image = plot.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3)
    top, bottom = (plot.mapFromScene(box.mapViewToScene(QPointF(frame, y))) for y in (lane, lane + 0.5))
    return pixels[top.y() : bottom.y() + 1, top.x()].astype(int)


def test_a_selected_lane_shows_its_outline_and_its_propagated_bar(window, video_path, qtbot):
    """With many lanes each is a few pixels high: the selection's white outline must not cover the bar."""
    window.open_path(video_path)
    tracks = many_tracks(window)
    window.controller.edit(MarkFrames(tracks[0], [[f, PROPAGATED] for f in range(3, 9)]), "propagated")
    window.controller.select(tracks[0])
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.propagated.spans == [(timeline.lanes.index(tracks[0]), 3, 8)])
    lane = timeline.lanes.index(tracks[0])
    column = lane_column(timeline, 5.3, lane)  # off the grid line at 5
    white = (column == 255).all(axis=1)
    color = np.array(track_color(tracks[0]))
    bar = np.abs(column - (color * 85 + 255 * 170) / 255).max(axis=1) <= 24  # the pale bar: white at 2/3 over the lane
    assert white.any() and bar.any(), column
    assert np.flatnonzero(bar)[0] < np.flatnonzero(white)[-1], column  # the outline's lower edge shows below the bar
    assert not (np.abs(column - color).max(axis=1) <= 24).all()


def test_undecodable_frames_do_not_look_present(window, qtbot, tmp_path):
    """A run segments a damaged frame from the last good one: the lanes there are faded and hatched red."""
    from PySide6.QtCore import Qt

    from tests.gui_helpers import load_scripted

    window.open_path(make_damaged_mjpeg(tmp_path / "clip.avi", 12, bad=5, size=SIZE))
    person = load_scripted(window)[5]  # masks on every frame, as a run over the substitutes gives
    window.activateWindow()
    window.view.setFocus()
    qtbot.waitUntil(lambda: window.controller.video.damaged_frames == [5], timeout=20_000)  # the scrubbing pass
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    timeline = window.timeline
    qtbot.waitUntil(lambda: person in timeline.lanes)
    lane, color = timeline.lanes.index(person), np.array(track_color(person))

    def hatched_red() -> bool:
        column = lane_column(timeline, 5.3, lane)
        return bool(((column[:, 0] > 150) & (column[:, 1] < 110) & (column[:, 2] < 110)).any())

    qtbot.waitUntil(hatched_red)
    damaged, whole = lane_column(timeline, 5.3, lane), lane_column(timeline, 3.3, lane)
    assert not (np.abs(damaged[:2] - color).max(axis=1) <= 24).any(), damaged  # not the solid "present" colour
    assert (np.abs(whole[:2] - color).max(axis=1) <= 24).all(), whole  # a decodable frame: solid track colour
    assert sorted(timeline.damaged.spans) == [(lane, 5, 5) for lane in range(3)]


def test_the_frame_axis_has_whole_frame_ticks_at_any_zoom(window, video_path, qtbot):
    """Zoomed in with the wheel as far as the timeline goes, the frame axis still labels only whole frames."""
    from PySide6.QtCore import QPointF

    from tests.test_gui_view import wheel

    open_focused(window, video_path, qtbot)
    plot, axis = window.timeline.plot, window.timeline.plot.getAxis("bottom")
    box = plot.getViewBox()
    spans = []
    for _ in range(8):
        wheel(plot, QPointF(plot.viewport().rect().center()), 3)
        qtbot.wait(20)
        (low, high), _ = box.viewRange()
        spans.append(high - low)
        size = axis.geometry().width()
        levels = axis.tickValues(low, high, size)
        values = [v for _, level in levels for v in level]
        assert values and all(float(v).is_integer() for v in values), (low, high, levels)
        strings = [s for spacing, level in levels for s in axis.tickStrings(level, axis.scale, spacing)]
        assert all("." not in s for s in strings), strings
    assert spans[-1] < 6 < spans[0]  # zoomed in down to a few frames
