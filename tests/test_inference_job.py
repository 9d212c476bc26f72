"""The DVIS run as a Qt-free job: what it yields, in which order, and how it stops (real video, real pipeline)."""

from __future__ import annotations

import pytest

from app.core.errors import Cancelled
from app.core.inference import RunRequest, inference_job
from app.core.progress import Progress, run_job
from dvis_models.types import FrameResult
from tests.test_scrub import wait_until
from tests.videos import make_video


@pytest.fixture
def clip(tmp_path):
    return make_video(tmp_path / "clip.mp4", num_frames=6, size=(96, 64))


def request(path, **changes) -> RunRequest:
    options = dict(model="preset:bundled_small", device="cpu", torch_threads=1, chunk_size=2, score_threshold=0.0)
    return RunRequest(path, **{**options, **changes})


def test_a_range_yields_progress_and_results_with_video_frame_indices(clip):
    items: list = []
    assert run_job(inference_job(request(clip, start=2, stop=5)), items.append) is None
    texts = [item.text for item in items if isinstance(item, Progress) and item.text]
    assert texts == ["Loading model…", "Running on cpu…"]
    results = [item for item in items if isinstance(item, FrameResult)]
    assert [result.index for result in results] == [2, 3, 4]
    frames = [item for item in items if isinstance(item, Progress) and not item.text]
    assert frames == [Progress(0, 3), Progress(1, 3), Progress(2, 3), Progress(3, 3)]
    assert items.index(results[0]) < items.index(Progress(1, 3))  # a frame, then the count that includes it


def test_an_offline_run_names_its_phases_before_frames_finish(clip):
    items: list = []
    run_job(inference_job(request(clip, offline=True)), items.append)
    first_frame = next(i for i, item in enumerate(items) if isinstance(item, FrameResult))
    phases = [item.text for item in items[:first_frame] if isinstance(item, Progress) and item.text]
    assert "Segmenting 6/6 frames" in phases and "Refining window 1/1" in phases
    assert phases.index("Segmenting 6/6 frames") < phases.index("Refining window 1/1")


def test_aborting_after_a_frame_stops_the_pipeline(clip):
    job = inference_job(request(clip))
    while not isinstance(next(job), FrameResult):
        pass
    with pytest.raises(Cancelled):
        job.throw(Cancelled("stop"))
    with pytest.raises(StopIteration):
        next(job)  # the job is over


# ---------------------------------------------------------------- the run's decode fills the scrubbing proxy
def test_a_run_fills_the_open_videos_proxy_so_the_pass_decodes_nothing_again(tmp_path):
    from app.core.proxy import ProxyStore
    from app.core.scrub import Scrubber
    from app.core.video import VideoSource
    from tests.test_scrub import PassSpy, assert_proxy_is_the_video

    path = make_video(tmp_path / "clip.mp4", num_frames=12, size=(96, 64), gop=12)
    with VideoSource.open(path) as source:
        spy = PassSpy(source)  # the pass is held at its first frame until the run has ended
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"))
        assert run_job(inference_job(request(path), scrubber)) is None
        assert scrubber.proxy.complete
        spy.go.set()
        assert scrubber.wait_for_proxy(timeout=30)
        assert spy.decoded in ([], [0])  # at most the frame it had begun with
        assert_proxy_is_the_video(scrubber.proxy, source)
        scrubber.close()


def test_a_cancelled_range_run_leaves_the_rest_to_the_pass(tmp_path):
    from app.core.proxy import ProxyStore
    from app.core.scrub import Scrubber
    from app.core.video import VideoSource
    from tests.test_scrub import PassSpy, assert_proxy_is_the_video

    path = make_video(tmp_path / "clip.mp4", num_frames=40, size=(96, 64), gop=10)
    with VideoSource.open(path) as source:
        spy = PassSpy(source)
        scrubber = Scrubber(source, ProxyStore(tmp_path / "proxies"))
        job = inference_job(request(path, start=10, stop=30), scrubber)
        while not isinstance(next(job), FrameResult):
            pass
        assert scrubber.proxy.ready(10)  # the run's frames are in the proxy...
        spy.go.set()  # ...when the pass starts beside the run: it leaves the run's frames to it
        wait_until(lambda: 39 in spy.decoded)
        with pytest.raises(Cancelled):
            job.throw(Cancelled("stop"))
        assert scrubber.wait_for_proxy(timeout=30)  # after the cancel the pass stores the rest of 10-29
        resumed = spy.decoded[20]  # the first frame the run did not decode
        assert spy.decoded == list(range(0, 10)) + list(range(30, 40)) + list(range(resumed, 30))
        assert 10 < resumed < 30
        assert_proxy_is_the_video(scrubber.proxy, source)
        scrubber.close()
