"""Adapters between the plain VIPSeg reader/writer and the app's Annotation / VideoSource.

Import gives every panoptic id of a video one track (category from the JSON, provenance "imported"),
numbered 1, 2, ... in order of first appearance, so re-exporting reproduces the same files byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.core.annotation import Annotation, Provenance
from app.core.errors import AnnotationError
from app.core.progress import Job, Progress
from app.core.video import VideoSource
from app.core.vipseg.frames import PanopticFrame, first_appearance
from app.core.vipseg.layout import DatasetError
from app.core.vipseg.merge import WrittenDataset
from app.core.vipseg.reader import DatasetVideo, RawVideo, read_ground_truth, read_predictions, read_raw_release
from app.core.vipseg.writer import VideoToWrite, write_videos
from dvis_models.categories import CategoryTable
from dvis_models.vipseg_format import jpeg_size


class ImportedVideo(NamedTuple):
    video_id: str
    annotation: Annotation
    image_paths: list[Path]  # images/<video>/<stem>.jpg (empty for predictions; a file may be absent)


def annotation_frames(annotation: Annotation) -> Iterator[PanopticFrame]:
    """An annotation as plain frames for the metrics: track ids are the segment ids.

    Segments are listed in raster order of first appearance, as an export writes them, so metrics on an
    annotation equal metrics on its exported files (STQ numbers instances in that order).
    """
    for index in range(annotation.num_frames):
        track_map = annotation.track_map(index)
        values, _, _, order = first_appearance(track_map)
        tracks = [annotation.tracks[int(values[p])] for p in order]
        yield PanopticFrame(track_map, {t.id: t.category_id for t in tracks},
                            frozenset(t.id for t in tracks if t.crowd))


def source_image_file(source: VideoSource, index: int) -> Path | None:
    """The JPEG of an image-folder frame (``VideoToWrite.image_file``: copied verbatim when no resize is needed), else
    None."""
    if not Path(source.path).is_dir():
        return None
    for suffix in (".jpg", ".jpeg", ".JPG", ".JPEG"):
        candidate = Path(source.path) / (source.stems[index] + suffix)
        if candidate.is_file():
            return candidate
    return None


def _video_to_write(video_id: str, annotation: Annotation, source: VideoSource | None) -> VideoToWrite:
    if source is not None:
        if (source.num_frames != annotation.num_frames
                or (source.width, source.height) != (annotation.width, annotation.height)):
            raise DatasetError(
                f"Video {video_id!r}: the annotation has {annotation.num_frames} frames of "
                f"{annotation.width}x{annotation.height} but {source.path} has {source.num_frames} of "
                f"{source.width}x{source.height}; export needs the video it was made from."
            )
    return VideoToWrite(
        video_id,
        annotation.num_frames,
        {t.id: t.category_id for t in annotation.tracks.values()},
        annotation.track_map,
        crowd_tracks=frozenset(t.id for t in annotation.tracks.values() if t.crowd),
        image=source.frame if source is not None else None,
        image_file=(lambda i: source_image_file(source, i)) if source is not None else None,
        stems=source.stems if source is not None else None,
        damaged=annotation.damaged_frames,
    )


def _shared_categories(annotations: Sequence[Annotation]) -> CategoryTable:
    if not annotations:
        raise DatasetError("Nothing to export: no videos were given.")
    table = annotations[0].categories
    if any(a.categories.to_json() != table.to_json() for a in annotations[1:]):
        raise DatasetError("The videos use different category tables; export videos annotated with the same table "
                           "together.")
    return table


def export_vipseg(
    videos: Sequence[tuple[str, Annotation, VideoSource | None]],
    root: str | Path,
    split: str = "train",
    resolution: int | None = None,
    raw_panomasks: bool = True,
) -> Job[WrittenDataset]:
    """Export annotated videos as a VIPSeg ground-truth dataset (``resolution=720`` for VIPSeg_720P), merged into
    the folder's JSON if it has one; a job (``write_videos``) returning the JSON and the videos it lists."""
    table = _shared_categories([annotation for _, annotation, _ in videos])
    plain = [_video_to_write(video_id, annotation, source) for video_id, annotation, source in videos]
    return (yield from write_videos(plain, root, table, split=split, resolution=resolution,
                                    raw_panomasks=raw_panomasks))


def export_predictions(
    videos: Sequence[tuple[str, Annotation, VideoSource | None]],
    root: str | Path,
    resolution: int | None = None,
) -> Job[WrittenDataset]:
    """Write ``pred.json`` + ``pan_pred/`` for the official evaluators (merged into a pred.json already there),
    as a job. Sources only give stems."""
    table = _shared_categories([annotation for _, annotation, _ in videos])
    plain = [_video_to_write(video_id, annotation, source) for video_id, annotation, source in videos]
    for video in plain:
        video.image = video.image_file = None
    return (yield from write_videos(plain, root, table, resolution=resolution, predictions=True))


def _track_for(annotation: Annotation, category_id: int, crowd: bool, where: Path) -> int:
    """The track of a newly seen segment id: a new imported track, or the video's track of a stuff category."""
    stuff_track = None if annotation.categories[category_id].isthing else annotation.stuff_track(category_id)
    if stuff_track is None:
        track = annotation.make_track(category_id, provenance=Provenance.IMPORTED).replace(crowd=crowd)
        annotation.put_tracks([track])
        return track.id
    if annotation.tracks[stuff_track].crowd != crowd:
        name = annotation.categories[category_id].name
        raise DatasetError(
            f"{where}: stuff category {name!r} has both crowd and non-crowd segments in this video; the app keeps one "
            "track per stuff category, so give its segments one iscrowd value."
        )
    return stuff_track


def _to_annotation(video: DatasetVideo | RawVideo, categories: CategoryTable, done: int, total: int) -> Job[Annotation]:
    """The video's frames in a new Annotation; progress counts on from ``done`` of ``total`` frames."""
    first = video.frame(0)
    height, width = first.ids.shape
    annotation = Annotation(video.num_frames, height, width, categories)
    track_of: dict[int, int] = {}
    for index in range(video.num_frames):
        frame = first if index == 0 else video.frame(index)
        values, _, inverse, order = first_appearance(frame.ids)
        for position in order:
            segment_id = int(values[position])
            if segment_id not in track_of:
                track_of[segment_id] = _track_for(annotation, frame.segments[segment_id], segment_id in frame.crowd,
                                                  video.png_paths[index])
        lut = np.array([track_of.get(int(v), 0) for v in values], dtype=np.int32)
        try:
            annotation.set_frame(index, lut[inverse])
        except AnnotationError as error:
            raise DatasetError(f"{video.png_paths[index]}: {error}") from None
        yield Progress(done + index + 1, total)
    return annotation


def _import(categories: CategoryTable, videos: list[DatasetVideo] | list[RawVideo]) -> Job[list[ImportedVideo]]:
    """A job importing ``videos``: it yields ``Progress`` over all their frames."""
    total = sum(v.num_frames for v in videos)
    done = 0
    imported = []
    for video in videos:
        annotation = yield from _to_annotation(video, categories, done, total)
        imported.append(ImportedVideo(video.video_id, annotation, list(video.image_paths)))
        done += video.num_frames
    return imported


def import_vipseg(
    root: str | Path,
    split: str | None = None,
    video_ids: Sequence[str] | None = None,
) -> Job[list[ImportedVideo]]:
    """Import a VIPSeg ground-truth dataset (one split, or every split file when ``split`` is None), as a job.

    ``video_ids`` imports only those videos, in that order (opening one video must not decode the whole dataset).
    """
    categories, videos = read_ground_truth(root, split)
    if video_ids is not None:
        by_id = {v.video_id: v for v in videos}
        missing = [v for v in video_ids if v not in by_id]
        if missing:
            raise DatasetError(f"Videos {missing} are not listed in the dataset at {root}; pick one of "
                               f"{sorted(by_id)[:10]}.")
        videos = [by_id[v] for v in video_ids]
    return (yield from _import(categories, videos))


def import_dataset_video(categories: CategoryTable, video: DatasetVideo) -> Job[ImportedVideo]:
    """Import one video of a dataset already read with ``read_ground_truth`` (a large JSON is parsed once)."""
    (imported,) = yield from _import(categories, [video])
    return imported


def _few(noun: str, items: Sequence[str], limit: int = 8) -> str:
    """E.g. "frame 00000003" or "frames 00000003, 00000004 and 2 more"."""
    listed = ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
    return f"{noun}{'s' if len(items) > 1 else ''} {listed}"


def check_frame_images(imported: ImportedVideo, shown_stems: Sequence[str]) -> None:
    """Refuse an images/ folder that does not match the JSON frame for frame.

    ``shown_stems``: the image stems a ``VideoSource`` of that folder shows, in order. A missing or extra image
    would put every later mask on the wrong frame, and an image of another size would not fit its mask, so
    the DatasetError names the frames that differ.
    """
    folder = imported.image_paths[0].parent
    listed = [path.stem for path in imported.image_paths]
    shown, known = set(shown_stems), set(listed)
    problems = []
    missing = [stem for stem in listed if stem not in shown]
    extra = [stem for stem in shown_stems if stem not in known]
    if missing:
        problems.append(f"{_few('frame', missing)} {'have' if len(missing) > 1 else 'has'} no image")
    if extra:
        problems.append(f"{_few('image', extra)} {'are' if len(extra) > 1 else 'is'} not listed in the JSON")
    if not missing and not extra and list(shown_stems) != listed:
        problems.append("the JSON lists the frames in another order than their file names")
    size = (imported.annotation.width, imported.annotation.height)
    wrong = []
    for path in imported.image_paths:
        declared = jpeg_size(path) if path.stem in shown else None  # read from the header, nothing decoded
        if declared is not None and declared != size:
            wrong.append(f"{path.stem} ({declared[0]}x{declared[1]})")
    if wrong:
        problems.append(f"{_few('frame', wrong)} {'are' if len(wrong) > 1 else 'is'} not {size[0]}x{size[1]} like the "
                        "masks")
    if problems:
        raise DatasetError(
            f"{folder} does not match the dataset's JSON: {'; '.join(problems)}. The masks would be shown on the wrong "
            "frames; restore the images (or re-export the dataset)."
        )


def import_predictions(root: str | Path, categories: CategoryTable | None = None) -> Job[list[ImportedVideo]]:
    """Import ``pred.json`` + ``pan_pred/`` (categories: given, else the folder's table, else VIPSeg's), as a job."""
    table, videos = read_predictions(root, categories)
    return (yield from _import(table, videos))


def import_vipseg_raw(root: str | Path, split: str | None = None) -> Job[list[ImportedVideo]]:
    """Import the raw VIPSeg release (``panomasks/`` raw values + ``imgs/``), e.g. to re-export it as VIPSeg_720P,
    as a job."""
    categories, videos = read_raw_release(root, split)
    return (yield from _import(categories, videos))
