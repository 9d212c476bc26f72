"""What the GUI opens and writes, as plain functions over app/core (no Qt), run by the window's workers.

`kind_of` decides how a dropped / given path is opened; the `*_job` factories return callables
`job(progress, cancel)` for `app.gui.tasks.TaskRunner`, so exports and evaluation run off the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from app.core.errors import StudioError

EXPORTS = {
    "vipseg": "VIPSeg dataset (images, panomasks, JSON)",
    "predictions": "VIPSeg predictions for the evaluators (pred.json + pan_pred)",
}

Job = Callable[[Callable[[int, int], None], Callable[[], bool]], object]


def kind_of(path: Path) -> str:
    """'project', 'vipseg' or 'video' (a video file or an image folder)."""
    from app.core.vipseg import DatasetLayout

    if not path.exists():
        raise StudioError(f"{path} does not exist; check the path (or pick the file again from File → Open).")
    if path.is_dir():
        if _is_project(path):
            return "project"
        if any(DatasetLayout(path).root.glob("panoptic_gt_VIPSeg*.json")):
            return "vipseg"
    return "video"


def _is_project(path: Path) -> bool:
    from app.core import project

    return project.is_project(path)


def vipseg_videos(root: Path) -> list[tuple[str, object]]:
    """(video id, DatasetVideo) of every video in a VIPSeg dataset root."""
    from app.core.vipseg import DatasetError, read_ground_truth

    _, videos = read_ground_truth(root)
    if not videos:
        raise DatasetError(f"{root} holds no videos; a VIPSeg root has panoptic_gt_VIPSeg_<split>.json listing them.")
    return [(video.video_id, video) for video in videos]


def annotation_frames(annotation) -> Iterator:
    """The annotation as `PanopticFrame`s (track id -> category), the metrics' input."""
    from app.core.vipseg import PanopticFrame

    for index in range(annotation.num_frames):
        ids = annotation.track_map(index)
        present = annotation.frame_track_ids(index)
        yield PanopticFrame(ids, {t: annotation.tracks[t].category_id for t in present})


def evaluation_job(annotation, root: Path, video_id: str) -> Job:
    """VPQ / STQ of `annotation` against video `video_id` of the VIPSeg ground truth at `root`."""

    def job(progress, cancel) -> dict[str, float]:
        from app.core.metrics import MetricsError, VideoPair, evaluate
        from app.core.vipseg import read_ground_truth

        categories, videos = read_ground_truth(root)
        video = next((v for v in videos if v.video_id == video_id), None)
        if video is None:
            raise MetricsError(f"Video {video_id!r} is not in the ground truth at {root}.")
        if video.num_frames != annotation.num_frames:
            raise MetricsError(f"Ground truth {video_id!r} has {video.num_frames} frames, the open video has "
                               f"{annotation.num_frames}; open the video the ground truth belongs to.")
        result = evaluate([VideoPair(video_id, video.frames(), annotation_frames(annotation))], categories)
        return {"VPQ": result.vpq.all, "VPQ things": result.vpq.things, "VPQ stuff": result.vpq.stuff,
                "STQ": result.stq.stq, "AQ": result.stq.aq, "SQ": result.stq.sq}

    return job


def export_job(controller, kind: str, folder: Path) -> Job:
    """Export the open document (`kind` from EXPORTS) into `folder`."""
    from app.core.vipseg import VideoToWrite, write_videos

    annotation, video = controller.annotation, controller.video
    video_id = Path(video.path).stem
    categories = {t: track.category_id for t, track in annotation.tracks.items()}
    to_write = VideoToWrite(video_id, annotation.num_frames, categories, annotation.track_map,
                            image=video.frame, stems=video.stems)

    def job(progress, cancel) -> Path:
        return write_videos([to_write], folder, annotation.categories, predictions=(kind == "predictions"),
                            progress=progress, cancel=cancel)

    if kind not in EXPORTS:
        raise StudioError(f"Unknown export {kind!r}; choose one of {', '.join(EXPORTS)}.")
    return job


def import_vipseg_video(root: Path, video_id: str):
    """(VideoSource of the video's images, Annotation of its masks) for one video of a VIPSeg dataset."""
    from app.core.annotation import Annotation, Provenance
    from app.core.video import VideoSource
    from app.core.vipseg import DatasetError, read_ground_truth
    from dvis_models.types import Segment

    categories, videos = read_ground_truth(root)
    dataset_video = next((v for v in videos if v.video_id == video_id), None)
    if dataset_video is None:
        raise DatasetError(f"Video {video_id!r} is not listed in the dataset at {root}.")
    if not dataset_video.image_paths:
        raise DatasetError(f"Video {video_id!r} has no images under {root}/images/{video_id}; they are needed to show it.")
    video = VideoSource.open(dataset_video.image_paths[0].parent)
    annotation = Annotation(video.num_frames, video.height, video.width, categories)
    for index, frame in enumerate(dataset_video.frames()):
        segments = [Segment(i, c, categories[c].isthing, 1.0, 0) for i, c in frame.segments.items()]
        annotation.ingest(index, frame.ids, segments, Provenance.IMPORTED)
    return video, annotation


DEMO_VIDEO_ID = "syn_demo_0000"


def demo_clip(cache_dir: Path, frames: int = 48, size: tuple[int, int] = (240, 320)) -> Path:
    """The demo clip's image folder, generated once into `cache_dir` with the synthetic scene generator."""
    folder = cache_dir / "demo" / "images" / DEMO_VIDEO_ID
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == frames:
        return folder
    from dvis_models.data.synthetic import generate_dataset

    try:
        generate_dataset(cache_dir / "demo", num_videos=1, num_frames=frames, size=size, seed=0, split="demo")
    except OSError as error:
        raise StudioError(f"Cannot write the demo clip into {cache_dir} ({error.strerror}); open a video instead.") from None
    return folder
