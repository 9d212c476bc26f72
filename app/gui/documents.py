"""What the GUI opens and writes, as plain functions over app/core (no Qt), run by the window's workers.

`kind_of` decides how a dropped / given path is opened; the `*_job` factories return callables
`job(progress, cancel)`, run by the window's `Worker` (through `worker.callback_job`), so exports and
evaluation run off the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import StudioError

EXPORTS = {
    "vipseg": "VIPSeg dataset (images, panomasks, JSON) into a folder",
    "predictions": "VIPSeg predictions for the evaluators (pred.json + pan_pred) into a folder",
    "masks": "Per-object mask PNGs into a folder",
    "cutouts": "Per-object RGBA cut-out PNGs into a folder",
    "alpha": "Alpha matte video (.mp4)",
    "overlay": "Overlay video with coloured masks (.mp4)",
}
FILE_EXPORTS = ("alpha", "overlay")  # these write one file; the others fill a folder


@dataclass(frozen=True)
class ExportRequest:
    """One export: `tracks` None = all tracks; frames [start, stop); `resolution` = VIPSeg target height."""

    kind: str
    target: Path
    tracks: tuple[int, ...] | None = None
    start: int = 0
    stop: int | None = None
    resolution: int | None = None


Job = Callable[[Callable[[int, int], None], Callable[[], bool]], object]  # job(progress, cancel) -> result


class OpenError(StudioError):
    """A path given to open does not exist."""


def kind_of(path: Path) -> str:
    """'project', 'vipseg' or 'video' (a video file or an image folder)."""
    if not path.exists():
        raise OpenError(f"{path} does not exist; check the path (or pick the file again from File → Open).")
    if path.is_dir():
        if _is_project(path):
            return "project"
        if any(path.glob("panoptic_gt_VIPSeg*.json")):
            return "vipseg"
    return "video"


def _is_project(path: Path) -> bool:
    from app.core.project import BACKUP_MANIFEST, MANIFEST

    return (path / MANIFEST).is_file() or (path / BACKUP_MANIFEST).is_file()  # the backup opens a damaged project


def read_vipseg_job(root: Path) -> Job:
    """(categories, videos) of a VIPSeg dataset: its JSON read once, with progress (a large one takes a minute)."""

    def job(progress, cancel):
        from app.core.vipseg import DatasetError, read_ground_truth

        categories, videos = read_ground_truth(root, progress=progress)
        if not videos:
            raise DatasetError(f"{root} holds no videos; a VIPSeg root has panoptic_gt_VIPSeg_<split>.json listing them.")
        return categories, videos

    return job


class _Cancelled(Exception):
    """Raised inside a job's frame loop when the user pressed Cancel; the job then returns None."""


def _checked(frames: Iterable, total: int, progress, cancel) -> Iterator:
    """`frames`, raising _Cancelled before each one once cancelled and reporting progress after each."""
    for done, frame in enumerate(frames, 1):
        if cancel():
            raise _Cancelled
        yield frame
        progress(done, total)


def evaluation_job(annotation, categories, video) -> Job:
    """VPQ / STQ of `annotation` against `video`, a ground-truth video read by `read_vipseg_job` (None if cancelled)."""
    video_id = video.video_id

    def job(progress, cancel) -> dict[str, float] | None:
        from app.core.metrics import MetricsError, VideoPair, evaluate
        from app.core.vipseg import annotation_frames

        if video.num_frames != annotation.num_frames:
            raise MetricsError(f"Ground truth {video_id!r} has {video.num_frames} frames, the open video has "
                               f"{annotation.num_frames}; open the video the ground truth belongs to.")
        predicted = _checked(annotation_frames(annotation), annotation.num_frames, progress, cancel)
        try:
            result = evaluate([VideoPair(video_id, video.frames(), predicted)], categories)
        except _Cancelled:
            return None
        return {"VPQ": result.vpq.all, "VPQ things": result.vpq.things, "VPQ stuff": result.vpq.stuff,
                "STQ": result.stq.stq, "AQ": result.stq.aq, "SQ": result.stq.sq}

    return job


def diagnostics_job(annotation) -> Job:
    """Tracking-stability diagnostics (ID switches, fragments, area jumps, ...) of the annotation; None if
    cancelled (checked every frame, so a long video stops at once)."""

    def job(progress, cancel) -> list | None:
        from app.core.metrics import diagnose

        track_maps = (annotation.track_map(index) for index in range(annotation.num_frames))
        try:
            return diagnose(_checked(track_maps, annotation.num_frames, progress, cancel))
        except _Cancelled:
            return None

    return job


def export_job(controller, request: ExportRequest) -> Job:
    """The export as a background job. It decodes with its own VideoSource: decoders are not shared across threads."""
    from app.core import exports
    from app.core.video import VideoSource
    from app.core.vipseg import export_predictions, export_vipseg, video_id_for

    if request.kind not in EXPORTS:
        raise StudioError(f"Unknown export {request.kind!r}; choose one of {', '.join(EXPORTS)}.")
    annotation, video_path = controller.annotation, Path(controller.video.path)
    video_id = video_id_for(video_path)
    tracks = sorted(annotation.tracks) if request.tracks is None else list(request.tracks)
    frames = range(request.start, annotation.num_frames if request.stop is None else request.stop)

    def job(progress, cancel):
        with VideoSource.open(video_path) as source:
            if request.kind == "vipseg":
                return export_vipseg([(video_id, annotation, source)], request.target, resolution=request.resolution,
                                     progress=progress, cancel=cancel)
            if request.kind == "predictions":
                return export_predictions([(video_id, annotation, source)], request.target, progress=progress, cancel=cancel)
            names = exports.class_names(annotation)
            if request.kind == "masks":
                return exports.export_track_masks(annotation, tracks, frames, request.target, stems=source.stems,
                                                  class_names=names, progress=progress, cancel=cancel)
            if request.kind == "cutouts":
                return exports.export_cutouts(annotation, source, tracks, frames, request.target, class_names=names,
                                              progress=progress, cancel=cancel)
            if request.kind == "alpha":
                return exports.export_alpha_video(annotation, source, tracks, frames, request.target, progress=progress, cancel=cancel)
            return exports.export_overlay_video(annotation, source, request.tracks, frames, request.target,
                                                progress=progress, cancel=cancel)

    return job


def import_vipseg_job(categories, video) -> Job:
    """(VideoSource of its images, Annotation of its masks) of one video of a dataset read by `read_vipseg_job`,
    its images checked against the JSON frame by frame."""

    def job(progress, cancel):
        from app.core.video import VideoSource
        from app.core.vipseg import DatasetError, check_frame_images, import_dataset_video

        imported = import_dataset_video(categories, video, progress, cancel)
        folder = imported.image_paths[0].parent
        if not folder.is_dir():
            raise DatasetError(f"Video {video.video_id!r} has no images in {folder}; they are needed to show it.")
        source = VideoSource.open(folder)
        try:
            check_frame_images(imported, source.stems)
        except DatasetError:
            source.close()
            raise
        return source, imported.annotation

    return job


DEMO_VIDEO_ID = "syn_demo_0000"


def demo_clip(cache_dir: Path, frames: int = 48, size: tuple[int, int] = (360, 480)) -> Path:
    """The demo clip's image folder, generated once into `cache_dir` with the synthetic scene generator."""
    folder = cache_dir / f"demo_{size[0]}x{size[1]}" / "images" / DEMO_VIDEO_ID
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == frames:
        return folder
    from dvis_models.data.synthetic import generate_dataset

    try:
        generate_dataset(folder.parent.parent, num_videos=1, num_frames=frames, size=size, seed=0, split="demo")
    except OSError as error:
        raise StudioError(f"Cannot write the demo clip into {cache_dir} ({error.strerror}); open a video instead.") from None
    return folder
