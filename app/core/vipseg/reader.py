"""Read a VIPSeg ground-truth dataset or an evaluator prediction folder into plain, lazily loaded videos.

The JSON is checked completely when it is read (names, categories, one category and one ``iscrowd`` per
id, one entry per frame); a frame's PNG is read and checked against its JSON entry when that frame is
loaded, its declared size first (from the header, so a decompression bomb is never decoded). Every
problem is a ``DatasetError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.core.errors import CategoryTableError
from app.core.vipseg.frames import PanopticFrame
from app.core.vipseg.layout import DatasetError, DatasetLayout, ReportProgress
from dvis_models.categories import CategoryTable, vipseg_categories
from dvis_models.vipseg_format import (
    IMAGES,
    PANOMASKS,
    RAW_THING_MIN,
    check_name,
    gt_json_name,
    load_json,
    png_size,
    png_stem,
    raw_category,
    read_id_png,
    read_raw_png,
)

MAX_FRAME_PIXELS = 1 << 26  # 67 MP, twice 8K UHD: a mask declaring more is refused when no size is known


class _LazyFrames:
    """What both kinds of video share: PNGs read one frame at a time, each of the size of the first one read."""

    video_id: str
    stems: list[str]
    png_paths: list[Path]
    width: int | None
    height: int | None

    @property
    def num_frames(self) -> int:
        return len(self.stems)

    def frame(self, index: int) -> PanopticFrame:
        raise NotImplementedError

    def frames(self) -> Iterator[PanopticFrame]:
        for index in range(self.num_frames):
            yield self.frame(index)

    def _read(self, index: int, read: Callable[[Path], np.ndarray]) -> tuple[Path, np.ndarray]:
        path = self.png_paths[index]
        self._check_declared_size(path)
        ids = read(path)
        height, width = ids.shape
        if self.width is None:
            self.width, self.height = width, height
        if (width, height) != (self.width, self.height):
            raise DatasetError(f"{path} is {width}x{height} but the video {self.video_id!r} is "
                               f"{self.width}x{self.height}.")
        return path, ids

    def _check_declared_size(self, path: Path) -> None:
        """Refuse, before decoding, a PNG whose header declares another size than the video's (or, while the
        size is not known yet, an absurd one): a small damaged or hostile file could otherwise take gigabytes."""
        declared = png_size(path)
        if declared is None:
            return  # missing or not a PNG: decoding says which
        width, height = declared
        if self.width is not None and declared != (self.width, self.height):
            raise DatasetError(
                f"{path} declares {width}x{height} pixels but the video {self.video_id!r} is "
                f"{self.width}x{self.height}; it was not decoded. Replace the file with the right mask (damaged or "
                "from another dataset?)."
            )
        if self.width is None and width * height > MAX_FRAME_PIXELS:
            raise DatasetError(
                f"{path} declares {width}x{height} pixels, more than any video frame ({MAX_FRAME_PIXELS // 10**6} MP); "
                "it was not decoded. Replace the file with the right mask."
            )


@dataclass
class DatasetVideo(_LazyFrames):
    """One video of a dataset: JSON content in memory, PNGs read on demand by ``frame(i)``."""

    video_id: str
    stems: list[str]
    segments: list[_FrameEntry]
    png_paths: list[Path]
    image_paths: list[Path]
    source: Path  # the JSON file, for messages
    width: int | None = None
    height: int | None = None

    @property
    def categories(self) -> dict[int, int]:
        """Every id of the video -> its category (checked to be the same in every frame)."""
        merged: dict[int, int] = {}
        for frame in self.segments:
            merged.update(frame.segments)
        return merged

    def frame(self, index: int) -> PanopticFrame:
        path, ids = self._read(index, read_id_png)
        listed, crowd = self.segments[index]
        present = set(int(v) for v in np.unique(ids)) - {0}
        if present - listed.keys():
            raise DatasetError(f"{path} has segment ids {sorted(present - listed.keys())} that are not in the frame's "
                               f"segments_info in {self.source}.")
        if listed.keys() - present:
            raise DatasetError(f"{self.source} lists segment ids {sorted(listed.keys() - present)} for {path.name} "
                               f"that the PNG {path} does not contain.")
        return PanopticFrame(ids, dict(listed), crowd)


def _expect(value: object, kind: type, what: str, source: Path):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DatasetError(f"{source}: {what} must be a {kind.__name__}, got {type(value).__name__}.")
    return value


class _FrameEntry(NamedTuple):
    """One frame's ``segments_info``: id -> category in listed order, and the ids marked ``iscrowd``."""

    segments: dict[int, int]
    crowd: frozenset[int]


def _segments(entry: dict, categories: CategoryTable, where: str, source: Path) -> _FrameEntry:
    segments: dict[int, int] = {}
    crowd: set[int] = set()
    for segment in _expect(entry.get("segments_info"), list, f"{where} segments_info", source):
        _expect(segment, dict, f"{where} segment", source)
        segment_id = _expect(segment.get("id"), int, f"{where} segment id", source)
        category_id = _expect(segment.get("category_id"), int, f"{where} category_id of segment {segment_id}", source)
        if segment_id <= 0 or segment_id >= 1 << 24:
            raise DatasetError(f"{source}: {where} segment id {segment_id} is outside 1..2^24-1.")
        if category_id not in categories:
            raise DatasetError(f"{source}: {where} segment {segment_id} has unknown category_id {category_id}.")
        if segment_id in segments:
            raise DatasetError(f"{source}: {where} lists segment id {segment_id} twice.")
        iscrowd = segment.get("iscrowd", 0)
        if iscrowd not in (0, 1):
            raise DatasetError(f"{source}: {where} segment {segment_id} has iscrowd {iscrowd!r}; it must be 0 or 1.")
        segments[segment_id] = category_id
        if iscrowd == 1:
            crowd.add(segment_id)
    return _FrameEntry(segments, frozenset(crowd))


def _check_one_category(video_id: str, frames: list[_FrameEntry], stems: list[str], source: Path) -> None:
    """An id keeps one category and one ``iscrowd`` for the whole video (it is one object)."""
    first: dict[int, tuple[int, bool, str]] = {}
    for stem, frame in zip(stems, frames):
        for segment_id, category_id in frame.segments.items():
            crowd = segment_id in frame.crowd
            seen = first.setdefault(segment_id, (category_id, crowd, stem))
            if seen[0] != category_id:
                raise DatasetError(
                    f"{source}: in video {video_id!r} segment id {segment_id} is category {seen[0]} in frame {seen[2]} "
                    f"and {category_id} in frame {stem}; an id must keep one category for the whole video."
                )
            if seen[1] != crowd:
                raise DatasetError(
                    f"{source}: in video {video_id!r} segment id {segment_id} has iscrowd {int(seen[1])} in frame "
                    f"{seen[2]} and {int(crowd)} in frame {stem}; an id must keep one iscrowd for the whole video."
                )


def _annotation_entries(annotations: object, source: Path) -> dict[str, list]:
    by_video: dict[str, list] = {}
    for video in _expect(annotations, list, "'annotations'", source):
        _expect(video, dict, "an annotations entry", source)
        video_id = check_name(video.get("video_id"), "video_id", source)
        if video_id in by_video:
            raise DatasetError(f"{source}: video {video_id!r} has two entries in 'annotations'.")
        by_video[video_id] = _expect(video.get("annotations"), list, f"annotations of video {video_id!r}", source)
    return by_video


def _frames_by_stem(video_id: str, entries: list, categories: CategoryTable, source: Path) -> dict[str, _FrameEntry]:
    frames: dict[str, _FrameEntry] = {}
    for entry in entries:
        _expect(entry, dict, f"a frame entry of video {video_id!r}", source)
        stem = png_stem(entry.get("file_name"), source)
        if stem in frames:
            raise DatasetError(f"{source}: video {video_id!r} has two entries for frame {stem}.")
        frames[stem] = _segments(entry, categories, f"video {video_id!r} frame {stem}", source)
    return frames


def categories_from_json(entries: object, source: Path) -> CategoryTable:
    try:
        return CategoryTable.from_json(entries, source=str(source))
    except CategoryTableError as error:
        raise DatasetError(str(error)) from None


def _gt_files(layout: DatasetLayout, split: str | None) -> list[Path]:
    if split is not None:
        return [layout.gt_json(split)]
    files = sorted(p for p in layout.root.glob(gt_json_name("*")) if p.is_file())
    if not files and not layout.gt_json(None).is_file():
        raw = (" It looks like the raw release (panomasks/ only): import it as raw VIPSeg."
               if layout.path(PANOMASKS).is_dir() else "")
        raise DatasetError(f"{layout.root} has no panoptic_gt_VIPSeg_<split>.json or panoptic_gt_VIPSeg.json.{raw}")
    if not files:
        files = [layout.gt_json(None)]
    return [layout.path(p.name) for p in files]


def read_ground_truth(root: str | Path, split: str | None = None,
                      progress: ReportProgress | None = None) -> tuple[CategoryTable, list[DatasetVideo]]:
    """Videos of ``panoptic_gt_VIPSeg_<split>.json`` (``split=None``: every split file, or the all-in-one JSON).

    ``progress(done, total)`` reports the bytes of each JSON read, then the videos of that file checked.
    """
    layout = DatasetLayout(root)
    table: CategoryTable | None = None
    videos: list[DatasetVideo] = []
    seen: set[str] = set()
    for source in _gt_files(layout, split):
        data = _expect(load_json(source, progress), dict, "the top level", source)
        file_table = categories_from_json(data.get("categories"), source)
        if table is not None and file_table.to_json() != table.to_json():
            raise DatasetError(f"{source} has a different category table from the other split files of {layout.root}.")
        table = file_table
        annotations = _annotation_entries(data.get("annotations"), source)
        entries = _expect(data.get("videos"), list, "'videos'", source)
        for number, video in enumerate(entries, 1):
            if progress is not None:
                progress(number, len(entries))
            _expect(video, dict, "a 'videos' entry", source)
            video_id = check_name(video.get("video_id"), "video_id", source)
            if video_id in seen:
                raise DatasetError(f"{source}: video {video_id!r} is listed twice in the dataset.")
            seen.add(video_id)
            images = _expect(video.get("images"), list, f"images of video {video_id!r}", source)
            if not images:
                raise DatasetError(f"{source}: video {video_id!r} has no frames.")
            if video_id not in annotations:
                raise DatasetError(f"{source}: video {video_id!r} has no entry in 'annotations'.")
            frames = _frames_by_stem(video_id, annotations[video_id], table, source)
            stems, sizes = [], set()
            for image in images:
                _expect(image, dict, f"an image entry of video {video_id!r}", source)
                stems.append(png_stem(image.get("file_name"), source))
                width = _expect(image.get("width"), int, f"width of frame {stems[-1]}", source)
                height = _expect(image.get("height"), int, f"height of frame {stems[-1]}", source)
                sizes.add((width, height))
            if len(set(stems)) != len(stems):
                raise DatasetError(f"{source}: video {video_id!r} lists a frame twice in 'images'.")
            missing = [s for s in stems if s not in frames]
            if missing:
                raise DatasetError(f"{source}: video {video_id!r} frames {missing[:5]} have no entry in 'annotations' "
                                   "(every frame needs one, even empty).")
            extra = sorted(frames.keys() - set(stems))
            if extra:
                raise DatasetError(f"{source}: video {video_id!r} has annotations for frames {extra[:5]} that are not "
                                   "in 'images'.")
            if len(sizes) != 1:
                raise DatasetError(f"{source}: video {video_id!r} mixes frame sizes {sorted(sizes)}; all frames of a "
                                   "video must have one size.")
            segments = [frames[s] for s in stems]
            _check_one_category(video_id, segments, stems, source)
            (width, height), = sizes
            videos.append(
                DatasetVideo(
                    video_id,
                    stems,
                    segments,
                    [layout.panomask_rgb(video_id, s) for s in stems],
                    [layout.image(video_id, s) for s in stems],
                    source,
                    width,
                    height,
                )
            )
    assert table is not None
    return table, videos


def read_predictions(
    root: str | Path, categories: CategoryTable | None = None, one_category_per_id: bool = True
) -> tuple[CategoryTable, list[DatasetVideo]]:
    """Videos of ``pred.json`` + ``pan_pred/``. Categories: ``categories``, else the root's
    panoVIPSeg_categories.json, else the VIPSeg table. Frame size comes from the PNGs.
    ``one_category_per_id=False`` accepts ids whose category changes (the evaluators do; an Annotation cannot)."""
    layout = DatasetLayout(root)
    if categories is None:
        table_file = layout.categories_json()
        categories = (categories_from_json(load_json(table_file), table_file) if table_file.is_file()
                      else vipseg_categories())
    source = layout.pred_json()
    data = _expect(load_json(source), dict, "the top level", source)
    videos = []
    for video_id, entries in _annotation_entries(data.get("annotations"), source).items():
        frames = _frames_by_stem(video_id, entries, categories, source)
        if not frames:
            raise DatasetError(f"{source}: video {video_id!r} has no frames.")
        stems = list(frames)
        segments = list(frames.values())
        if one_category_per_id:
            _check_one_category(video_id, segments, stems, source)
        videos.append(DatasetVideo(video_id, stems, segments, [layout.pan_pred(video_id, s) for s in stems], [],
                                   source))
    return categories, videos


@dataclass
class RawVideo(_LazyFrames):
    """One video of the raw VIPSeg release (``panomasks/<video>/<stem>.png`` holding raw values, no JSON).

    ``frame(i)`` gives the raw values as ids (the same value in two frames is the same object) with
    categories decoded from them: stuff = category + 1, thing = (category + 1) * 100 + k.
    """

    video_id: str
    stems: list[str]
    png_paths: list[Path]
    image_paths: list[Path]
    categories_table: CategoryTable
    width: int | None = None
    height: int | None = None

    def frame(self, index: int) -> PanopticFrame:
        path, ids = self._read(index, read_raw_png)
        segments = {}
        for value in np.unique(ids).tolist():
            if value == 0:
                continue
            category_id = raw_category(value)
            if category_id not in self.categories_table:
                raise DatasetError(f"{path} holds raw value {value}, which decodes to unknown category {category_id}.")
            if self.categories_table[category_id].isthing != (value >= RAW_THING_MIN):
                kind = "thing" if self.categories_table[category_id].isthing else "stuff"
                raise DatasetError(f"{path} holds raw value {value} but category {category_id} is {kind}; things are "
                                   "category*100+k.")
            segments[value] = category_id
        return PanopticFrame(ids, segments)


def read_raw_release(root: str | Path, split: str | None = None,
                     categories: CategoryTable | None = None) -> tuple[CategoryTable, list[RawVideo]]:
    """Videos of the raw VIPSeg release: ``panomasks/`` (+ ``imgs/`` or ``images/``); ``split`` picks the videos
    listed in ``<split>.txt``, else every folder of ``panomasks/``. Frames are the PNGs in name order."""
    layout = DatasetLayout(root)
    categories = categories or vipseg_categories()
    masks = layout.path(PANOMASKS)
    if split is not None:
        listing = layout.path(f"{split}.txt")
        try:
            video_ids = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as error:
            raise DatasetError(f"Cannot read the video list {listing}: {error.strerror}.") from None
        video_ids = [check_name(v, "video id", listing) for v in video_ids]
    else:
        if not masks.is_dir():
            raise DatasetError(f"{masks} is missing; a raw VIPSeg release has panomasks/<video>/<frame>.png.")
        video_ids = sorted(p.name for p in masks.iterdir() if p.is_dir() and not p.name.startswith("."))
    images = IMAGES if layout.path(IMAGES).is_dir() or not layout.path("imgs").is_dir() else "imgs"
    videos = []
    for video_id in video_ids:
        folder = layout.path(PANOMASKS, video_id)
        stems = sorted(p.stem for p in folder.glob("*.png") if not p.name.startswith(".")) if folder.is_dir() else []
        if not stems:
            raise DatasetError(f"{folder} holds no PNG masks for video {video_id!r}.")
        videos.append(
            RawVideo(
                video_id,
                stems,
                [layout.path(PANOMASKS, video_id, s + ".png") for s in stems],
                [layout.path(images, video_id, s + ".jpg") for s in stems],
                categories,
            )
        )
    return categories, videos
