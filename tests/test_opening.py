"""Opening jobs without Qt: what they yield and return, and that a stopped one closes what it opened."""

from __future__ import annotations

from app.core import opening
from app.core.opening import FirstFrame
from app.core.progress import Progress, run_job
from app.core.video import VideoFileSource, VideoSource
from tests.videos import make_video, read_index


def test_a_video_job_yields_its_first_frame_then_progress_and_returns_it_unshown(tmp_path):
    path = make_video(tmp_path / "clip.mp4", num_frames=12, size=(96, 64))
    items: list = []
    opened = run_job(opening.open_video(path), items.append)
    assert isinstance(items[0], FirstFrame) and read_index(items[0].picture) == 0
    assert items[1:] and all(isinstance(item, Progress) for item in items[1:])
    assert opened.path == path and opened.video.num_frames == 12 and opened.annotation is None
    opened.close()


def test_a_job_stopped_after_the_video_opened_closes_it(tmp_path, monkeypatch):
    path = make_video(tmp_path / "clip.mp4", num_frames=6, size=(40, 20))
    real_open = VideoSource.open

    def open_then_report(path, *args, progress=None, **kwargs):  # the index is done when the last report comes
        source = real_open(path, *args, **kwargs)
        progress(1.0)
        return source

    monkeypatch.setattr(VideoSource, "open", staticmethod(open_then_report))
    closed: list[str] = []
    real_close = VideoFileSource.close
    monkeypatch.setattr(VideoFileSource, "close", lambda self: closed.append(self.path.name) or real_close(self))
    job = opening.open_video(path)
    items = [next(job), next(job), next(job)]  # the first frame, the start, the last report (the video is open)
    assert items[2] == Progress(opening.INDEX_STEPS, opening.INDEX_STEPS, "Opening clip.mp4…") and not closed
    job.close()  # as the worker does when the open is cancelled or replaced
    assert closed == ["clip.mp4"]


def test_large_files_and_projects_with_large_videos_open_in_the_background(tmp_path, monkeypatch):
    path = make_video(tmp_path / "clip.mp4", num_frames=6, size=(40, 20))
    assert not opening.in_background(path, "video")
    assert opening.in_background(tmp_path, "vipseg")
    monkeypatch.setattr(opening, "BACKGROUND_OPEN_BYTES", path.stat().st_size)
    assert opening.in_background(path, "video") and not opening.in_background(tmp_path, "video")
    from app.core.project import Project

    Project.create(tmp_path / "project", path).close()
    assert opening.in_background(tmp_path / "project", "project")
    monkeypatch.setattr(opening, "BACKGROUND_OPEN_BYTES", path.stat().st_size + 1)
    assert not opening.in_background(tmp_path / "project", "project")
