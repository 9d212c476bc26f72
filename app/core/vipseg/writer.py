"""Write videos of plain per-frame track maps as a VIPSeg dataset or as an evaluator prediction folder.

Id assignment is content-derived so export -> import -> export is byte-identical: tracks get their
panoptic colour / raw instance index in order of (first frame, first pixel in raster order), and
the colour jitter is seeded by the video id.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from app.core.progress import Job, Progress
from app.core.vipseg.frames import first_appearance
from app.core.vipseg.layout import DatasetError, DatasetLayout
from app.core.vipseg.merge import WrittenDataset, check_categories, merge_into_json
from dvis_models import atomic
from dvis_models.categories import CategoryTable
from dvis_models.vipseg_format import (
    MAX_INSTANCES_PER_CATEGORY,
    STEM_RE,
    ColorAllocator,
    check_name,
    color_to_id,
    id_to_rgb,
    jpeg_bytes,
    raw_value,
    resize_image,
    resize_nearest,
    resized_size,
)


@dataclass
class VideoToWrite:
    """One video as plain data. ``track_map(i)`` is an (H, W) int map of track ids (0 void) for frame i;
    tracks in ``crowd_tracks`` are written with ``iscrowd: 1``."""

    video_id: str
    num_frames: int
    track_categories: Mapping[int, int]
    track_map: Callable[[int], np.ndarray]
    image: Callable[[int], np.ndarray] | None = None
    image_file: Callable[[int], Path | None] | None = None
    stems: Sequence[str] | None = None
    crowd_tracks: Collection[int] = frozenset()
    damaged: Container[int] = frozenset()  # frames whose masks are lost (checked after reading each): left out

    def frame_stems(self) -> list[str]:
        """The source stems when they are all 8-digit frame names, else 00000000, 00000001, ..."""
        stems = list(self.stems) if self.stems is not None else []
        if len(stems) == self.num_frames and all(STEM_RE.match(s) for s in stems) and len(set(stems)) == len(stems):
            return stems
        return [f"{i:08d}" for i in range(self.num_frames)]


class _VideoEncoder:
    """Maps one video's track ids to panoptic ids and raw values, allocating in first-appearance order."""

    def __init__(self, video: VideoToWrite, categories: CategoryTable, raw: bool):
        self.video = video
        self.categories = categories
        self.raw = raw
        self.colors = ColorAllocator.for_video(categories, video.video_id)
        self.panoptic: dict[int, int] = {}  # track id -> panoptic id
        self.raw_values: dict[int, int] = {}  # track id -> raw panomask value
        self.category_of_id: dict[int, int] = {}  # panoptic id -> category
        self.crowd_ids: set[int] = set()  # panoptic ids of crowd tracks
        self.instances: dict[int, int] = {}  # thing category -> next k

    def _allocate(self, track_id: int) -> None:
        try:
            category_id = int(self.video.track_categories[track_id])
        except KeyError:
            raise DatasetError(f"Video {self.video.video_id!r}: track {track_id} has pixels but no category.") from None
        if category_id not in self.categories:
            raise DatasetError(f"Video {self.video.video_id!r}: track {track_id} has category {category_id}, not in "
                               "the category table.")
        category = self.categories[category_id]
        k = 0
        if category.isthing:
            k = self.instances.get(category_id, 0)
            self.instances[category_id] = k + 1
            if self.raw and k >= MAX_INSTANCES_PER_CATEGORY:
                raise DatasetError(
                    f"Video {self.video.video_id!r} has more than {MAX_INSTANCES_PER_CATEGORY} {category.name!r} "
                    "tracks; raw panomasks (category*100 + k) cannot hold them. Merge short tracks, or export without "
                    "raw panomasks."
                )
        panoptic_id = color_to_id(self.colors.color(category_id))
        self.panoptic[track_id] = panoptic_id
        self.raw_values[track_id] = raw_value(category_id, category.isthing, k)
        self.category_of_id[panoptic_id] = category_id
        if track_id in self.video.crowd_tracks:
            self.crowd_ids.add(panoptic_id)

    def encode(self, track_map: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict]]:
        """(panoptic ids, raw values, segments_info) for one frame's track map.

        segments_info lists segments in raster order of first appearance; stuff tracks of one category
        share their category's id, so their areas and boxes are merged.
        """
        tracks, counts, inverse, order = first_appearance(track_map)
        for position in order:
            if int(tracks[position]) not in self.panoptic:
                self._allocate(int(tracks[position]))
        pan_lut = np.array([self.panoptic.get(int(t), 0) for t in tracks], dtype=np.int64)
        raw_lut = np.array([self.raw_values.get(int(t), 0) for t in tracks], dtype=np.int64)
        boxes = ndimage.find_objects(inverse + 1)
        segments: dict[int, dict] = {}
        for position in order:
            rows, cols = boxes[position]
            segment_id = int(pan_lut[position])
            box = [cols.start, rows.start, cols.stop, rows.stop]
            if segment_id in segments:
                segment = segments[segment_id]
                x0, y0, w, h = segment["bbox"]
                box = [min(x0, box[0]), min(y0, box[1]), max(x0 + w, box[2]), max(y0 + h, box[3])]
                segment["area"] += int(counts[position])
            else:
                segment = segments[segment_id] = {
                    "id": segment_id, "category_id": self.category_of_id[segment_id],
                    "iscrowd": int(segment_id in self.crowd_ids),
                    "area": int(counts[position]),
                }
            segment["bbox"] = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
        return pan_lut[inverse], raw_lut[inverse], list(segments.values())


def _check_stuff_colors(categories: CategoryTable) -> None:
    seen: dict[tuple, str] = {}
    for category in categories.stuff:
        if tuple(category.color) in seen:
            raise DatasetError(
                f"Stuff categories {seen[tuple(category.color)]!r} and {category.name!r} share a colour, so their "
                "panoptic ids would collide; give them different colours in the category table."
            )
        seen[tuple(category.color)] = category.name


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, data)
    except OSError as error:
        raise DatasetError(f"Cannot write {path}: {error.strerror}. Check free disk space and folder "
                           "permissions.") from None


def _write_image(layout: DatasetLayout, video: VideoToWrite, index: int, stem: str, size: tuple[int, int],
                 resized: bool) -> None:
    """The frame JPEG: the source JPEG's bytes when no resize is needed (no generational loss), else encoded."""
    target = layout.image(video.video_id, stem)
    source = video.image_file(index) if video.image_file is not None else None
    if source is not None and not resized and Path(source).suffix.lower() in (".jpg", ".jpeg"):
        if Path(source).resolve() == target.resolve():
            return
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise DatasetError(f"Cannot read the frame image {source}: {error.strerror}.") from None
        _write(target, data)
        return
    if video.image is None:
        return
    image = resize_image(video.image(index), *size)
    _write(target, jpeg_bytes(image))


def write_videos(
    videos: Sequence[VideoToWrite],
    root: str | Path,
    categories: CategoryTable,
    split: str | None = "train",
    resolution: int | None = None,
    predictions: bool = False,
    raw_panomasks: bool = True,
) -> Job[WrittenDataset]:
    """Write ``videos`` under ``root`` (a job: yields ``Progress`` per frame); returns the JSON written and the
    videos it lists.

    Ground truth (``predictions=False``): images/, panomasks/ (raw 16-bit, if ``raw_panomasks``),
    panomasksRGB/, panoVIPSeg_categories.json and panoptic_gt_VIPSeg_<split>.json. Predictions: pan_pred/ +
    pred.json. A JSON already there keeps its other videos (``merge_into_json``); a folder with another
    category table is refused before anything is written. ``resolution``: target height (e.g. 720) or None
    for the source size. The JSON is written last, so a cancelled (``Cancelled`` thrown in) or failed export
    never leaves a JSON pointing at missing PNGs.
    """
    layout = DatasetLayout(root)
    _check_stuff_colors(categories)
    ids = [check_name(v.video_id, "video id", layout.root) for v in videos]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"Video ids must be unique in one export; got {ids}.")
    json_path = layout.pred_json() if predictions else layout.gt_json(split)  # checked before anything is written
    if not predictions:
        check_categories(layout, json_path, categories)
    total = sum(v.num_frames for v in videos)
    done = 0
    json_videos, json_annotations = [], []
    for video in videos:
        encoder = _VideoEncoder(video, categories, raw=raw_panomasks and not predictions)
        images, annotations = [], []
        for index, stem in enumerate(video.frame_stems()):
            track_map = np.asarray(video.track_map(index))
            if index in video.damaged:
                done += 1
                yield Progress(done, total)
                continue
            width, height = resized_size(track_map.shape[1], track_map.shape[0], resolution)
            panoptic, raw, segments = encoder.encode(resize_nearest(track_map, width, height))
            file_name = stem + ".png"
            if predictions:
                _write(layout.pan_pred(video.video_id, stem), atomic.png_bytes(id_to_rgb(panoptic)))
            else:
                _write(layout.panomask_rgb(video.video_id, stem), atomic.png_bytes(id_to_rgb(panoptic)))
                if raw_panomasks:
                    _write(layout.panomask(video.video_id, stem), atomic.png_bytes(raw.astype(np.uint16), rgb=False))
                resized = (width, height) != (track_map.shape[1], track_map.shape[0])
                _write_image(layout, video, index, stem, (width, height), resized)
            images.append({"id": stem, "width": width, "height": height, "file_name": file_name})
            annotations.append({"image_id": stem, "file_name": file_name, "segments_info": segments})
            done += 1
            yield Progress(done, total)
        json_videos.append({"video_id": video.video_id, "images": images})
        json_annotations.append({"video_id": video.video_id, "annotations": annotations})
    return merge_into_json(layout, json_path, categories, json_videos, json_annotations, predictions)
