"""The use-cases the GUI and the CLI share: open, export, evaluate, import, the demo clip, writing a model's output.

Long ones are jobs (``app.core.progress``): generators that yield ``Progress`` and return their value; the GUI's
worker runs them on a thread and throws ``Cancelled`` in to stop one, the CLI and tests drive them with
``run_job``. A stopped job raises ``Cancelled``; files it finished stay complete, and a dataset's JSON is only
written once every frame is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import StudioError
from app.core.progress import Job, Progress

EXPORTS = {
    "vipseg": "VIPSeg dataset (images, panomasks, JSON) into a folder",
    "predictions": "VIPSeg predictions for the evaluators (pred.json + pan_pred) into a folder",
    "masks": "Per-object mask PNGs into a folder",
    "cutouts": "Per-object RGBA cut-out PNGs into a folder",
    "alpha": "Alpha matte video (.mp4)",
    "overlay": "Overlay video with coloured masks (.mp4)",
}
FILE_EXPORTS = ("alpha", "overlay")  # these write one file; the others fill a folder
DEMO_VIDEO_ID = "syn_demo_0000"


class OpenError(StudioError):
    """A path given to open does not exist."""


def kind_of(path: Path) -> str:
    """How to open ``path``: 'project', 'vipseg' or 'video' (a video file or an image folder)."""
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


def demo_clip(cache_dir: Path, frames: int = 48, size: tuple[int, int] = (360, 480)) -> Path:
    """The demo clip's image folder, generated once into ``cache_dir`` with the synthetic scene generator."""
    folder = cache_dir / f"demo_{size[0]}x{size[1]}" / "images" / DEMO_VIDEO_ID
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == frames:
        return folder
    from dvis_models.data.synthetic import generate_dataset

    try:
        generate_dataset(folder.parent.parent, num_videos=1, num_frames=frames, size=size, seed=0, split="demo")
    except OSError as error:
        raise StudioError(f"Cannot write the demo clip into {cache_dir} ({error.strerror}); "
                          "open a video instead.") from None
    return folder


# ----- VIPSeg datasets -------------------------------------------------------------------------------------------

def read_vipseg(root: Path) -> Job[tuple]:
    """(categories, videos) of a VIPSeg dataset, its JSON read once (a large one takes a minute).

    The JSON parses in one piece, so this job yields only at its start: it cannot be stopped midway."""
    from app.core.vipseg import DatasetError, read_ground_truth

    yield Progress(0, None, f"Reading {root}")
    categories, videos = read_ground_truth(root)
    if not videos:
        raise DatasetError(f"{root} holds no videos; a VIPSeg root has panoptic_gt_VIPSeg_<split>.json listing them.")
    return categories, videos


def import_vipseg_video(categories, video) -> Job[tuple]:
    """(VideoSource of its images, Annotation of its masks) of one video of a dataset read by ``read_vipseg``,
    its images checked against the JSON frame by frame."""
    from app.core.video import VideoSource
    from app.core.vipseg import DatasetError, check_frame_images, import_dataset_video

    imported = yield from import_dataset_video(categories, video)
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


# ----- exports -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportRequest:
    """One export: ``tracks`` None = all tracks; frames [start, stop); ``resolution`` = VIPSeg target height."""

    kind: str
    target: Path
    tracks: tuple[int, ...] | None = None
    start: int = 0
    stop: int | None = None
    resolution: int | None = None


def export(annotation, video_path: Path, request: ExportRequest) -> Job:
    """The export ``request`` asks for, of ``annotation`` over the video at ``video_path``: a WrittenDataset for
    the VIPSeg kinds, an ExportResult for the others. It decodes with its own VideoSource (a decoder is not shared
    across threads)."""
    from app.core import exports
    from app.core.video import VideoSource
    from app.core.vipseg import export_predictions, export_vipseg, video_id_for

    if request.kind not in EXPORTS:
        raise StudioError(f"Unknown export {request.kind!r}; choose one of {', '.join(EXPORTS)}.")
    tracks = sorted(annotation.tracks) if request.tracks is None else list(request.tracks)
    frames = range(request.start, annotation.num_frames if request.stop is None else request.stop)
    with VideoSource.open(video_path) as source:
        videos = [(video_id_for(video_path), annotation, source)]
        if request.kind == "vipseg":
            return (yield from export_vipseg(videos, request.target, resolution=request.resolution))
        if request.kind == "predictions":
            return (yield from export_predictions(videos, request.target))
        names = exports.class_names(annotation)
        if request.kind == "masks":
            job = exports.export_track_masks(annotation, tracks, frames, request.target, stems=source.stems,
                                             class_names=names)
        elif request.kind == "cutouts":
            job = exports.export_cutouts(annotation, source, tracks, frames, request.target, class_names=names)
        elif request.kind == "alpha":
            job = exports.export_alpha_video(annotation, source, tracks, frames, request.target)
        else:
            job = exports.export_overlay_video(annotation, source, request.tracks, frames, request.target)
        return (yield from job)


# ----- evaluation --------------------------------------------------------------------------------------------------

def evaluate_annotation(annotation, categories, video) -> Job[dict[str, float]]:
    """VPQ / STQ of ``annotation`` against ``video``, a ground-truth video read by ``read_vipseg``."""
    from app.core.metrics import MetricsError, VideoPair, evaluation
    from app.core.vipseg import annotation_frames

    if video.num_frames != annotation.num_frames:
        raise MetricsError(f"Ground truth {video.video_id!r} has {video.num_frames} frames, the open video has "
                           f"{annotation.num_frames}; open the video the ground truth belongs to.")
    pairs = [VideoPair(video.video_id, video.frames(), annotation_frames(annotation))]
    result = yield from evaluation(pairs, categories, total=annotation.num_frames)
    return {"VPQ": result.vpq.all, "VPQ things": result.vpq.things, "VPQ stuff": result.vpq.stuff,
            "STQ": result.stq.stq, "AQ": result.stq.aq, "SQ": result.stq.sq}


def diagnose_annotation(annotation) -> Job[list]:
    """Tracking-stability diagnostics of ``annotation`` (ID switches, fragments, area jumps, ...), per frame.

    The metrics package is imported here, when the job starts on the worker (it takes about a second)."""
    from app.core.metrics import annotation_diagnosis

    return (yield from annotation_diagnosis(annotation))


def evaluate_model(model, gt_root: Path, split: str | None = None, offline: bool | None = None, device=None,
                   max_videos: int | None = None, fast: bool = False, short_edge: int | None = None,
                   text: str = "Scoring the model", **options) -> Job:
    """Run ``model`` on every video of a VIPSeg ground-truth folder and score it (VPQ / STQ), all in memory;
    nothing is written. ``dvis eval-bundled`` and fine-tuning's before/after scores both go through here.

    Yields a ``Progress`` per frame (``text`` names the phase); returns the ``Evaluation``. ``options`` go to
    ``app.core.metrics.evaluate``."""
    from app.core.metrics import VideoPair, evaluate
    from app.core.model_source import build_segmenter
    from app.core.vipseg import PanopticFrame, read_ground_truth
    from dvis_models.vipseg_format import read_rgb_image

    categories, videos = read_ground_truth(gt_root, split)
    videos = videos[:max_videos]
    segmenter = build_segmenter(model, device=device, offline=offline, fast=fast, short_edge=short_edge)
    total, done = sum(len(video.image_paths) for video in videos), 0
    pairs = []
    for video in videos:
        frames = [read_rgb_image(path) for path in video.image_paths]
        predicted = []
        for result in segmenter.run(frames, num_frames=len(frames)):
            predicted.append(PanopticFrame(result.track_map, {s.track_id: s.category_id for s in result.segments}))
            done += 1
            yield Progress(done, total, text)
        pairs.append(VideoPair(video.video_id, video.frames(), predicted))
    return evaluate(pairs, categories, **options)


# ----- a model's output as a VIPSeg folder -----------------------------------------------------------------------

class StreamedTracks:
    """Presents the pipeline's frame results as the random-access track maps the VIPSeg writer reads in order.

    Only the current frame is held, so memory stays bounded on long videos; the track -> category table
    fills as frames arrive (the writer looks a category up the first time a track appears).
    """

    def __init__(self, results: Iterable):
        self.results = iter(results)
        self.categories: dict[int, int] = {}

    def track_map(self, index: int):
        result = next(self.results)
        if result.index != index:
            raise RuntimeError(f"frame results out of order: got {result.index}, expected {index}")
        self.categories.update({segment.track_id: segment.category_id for segment in result.segments})
        return result.track_map


def write_results(results: Iterable, source, frames: range, video_id: str, root: Path, categories,
                  split: str | None, predictions: bool) -> Job:
    """Write a run's frame ``results`` (for ``frames`` of ``source``, in order) under ``root`` as VIPSeg (images
    copied from an image folder, else encoded) or as predictions; returns the WrittenDataset.

    Frames keep the stems of the source, so a run over part of a video names its frames as the whole video would.
    """
    from app.core.vipseg import VideoToWrite, source_image_file, write_videos

    stream = StreamedTracks(results)
    images = not predictions  # an image folder's JPEGs are copied, not decoded and re-encoded
    video = VideoToWrite(video_id, len(frames), stream.categories, stream.track_map,
                         image=(lambda i: source.frame(frames[i])) if images else None,
                         image_file=(lambda i: source_image_file(source, frames[i])) if images else None,
                         stems=[source.stems[i] for i in frames])
    return (yield from write_videos([video], root, categories, split=split, predictions=predictions))


def merge_parts(root: Path, parts: Sequence[Path], split: str | None, predictions: bool):
    """Merge the JSON files ``parts`` (each written by ``write_results`` for one video) into ``root``'s JSON once
    all exist; returns the WrittenDataset, or None while some are missing (another process writes them).

    Videos of earlier runs in the JSON stay; a video written again replaces its entry."""
    from app.core.vipseg import merge_json_files

    if not all(part.exists() for part in parts):
        return None
    return merge_json_files(root, parts, split, predictions)
