"""Training clips from a VIPSeg-format dataset, read the way DVIS reads ``VIPSeg_720P``.

Reads ``panoptic_gt_VIPSeg_<split>.json`` (frame lists, segment categories), ``images/<video>/<stem>.jpg``
and ``panomasksRGB/<video>/<stem>.png`` (segment ids via rgb2id); raw ``panomasks`` are not needed.
Everything is validated; malformed data raises :class:`~dvis_models.errors.DatasetError` naming the file.

A sample (:class:`ClipSample`) is one clip of one video:

- frames: a contiguous run (:mod:`dvis_models.data.clips`): 1 frame for the segmenter stage, 5 for the
  tracker, 21 for the refiner (reversed with p = 0.5); short videos are padded with repeated frames;
- one random transform for the whole clip (:mod:`dvis_models.data.transforms`): resize shortest edge,
  random crop (refiner stage by default), horizontal flip p = 0.5;
- targets: every non-crowd segment id listed in the clip frames' ``segments_info`` that still has pixels
  after the transform, in order of first listing (like DVIS). ``masks[n, t]`` is its mask in frame t
  (empty where absent), ``labels[n]`` its model label, ``ids[n]`` its dataset segment id.

Model labels come from ``label_to_category`` (model label -> category id, e.g. ``ModelConfig.label_to_category``);
the default is DVIS's order (things sorted by id, then stuff), built from the dataset's category table.
Segments of categories the mapping lacks raise an error unless ``ignore_unmapped`` (then their pixels are
background, like void). Crowd segments (``iscrowd`` 1) are background too, as in DVIS.

A sample depends only on ``(seed, index)``, so runs and tests are reproducible with any number of workers;
with ``length`` larger than the number of videos, index ``i`` reads video ``i % num_videos``.
File names and decoding come from :mod:`dvis_models.vipseg_format` (shared with the app's VIPSeg import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dvis_models import vipseg_format as fmt
from dvis_models.categories import CategoryTable
from dvis_models.data.clips import STAGE_CLIP_LENGTHS, STAGE_REVERSE_PROBS, sample_clip_indices
from dvis_models.data.transforms import OFFICIAL_CROP, AugmentationConfig, ClipTransform, sample_transform
from dvis_models.errors import DatasetError
from dvis_models.presets import things_first_labels


@dataclass(frozen=True)
class FrameRecord:
    stem: str
    image_path: Path
    mask_path: Path
    segments: dict[int, int]  # non-crowd segment id -> category id, in segments_info order
    crowd: frozenset[int]  # crowd segment ids (background for training)


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    frames: list[FrameRecord]


@dataclass
class ClipSample:
    """One training clip. Images are RGB 0..255, not normalised or padded (the trainer does that)."""

    images: torch.Tensor  # (T, 3, H, W) float32
    masks: torch.Tensor  # (N, T, H, W) bool
    labels: torch.Tensor  # (N,) int64 model labels
    ids: torch.Tensor  # (N,) int64 dataset segment ids
    video_id: str
    frame_indices: list[int]
    transform: ClipTransform | None  # the augmentation applied (None: frames as stored)


def collate_clips(batch: list[ClipSample]) -> list[ClipSample]:
    """Clips differ in size (random resize), so a batch stays a list; DVIS trains one clip per process."""
    return list(batch)


# ----- JSON parsing and validation ----------------------------------------------------------------------------

def _require(condition: bool, source: Path, message: str) -> None:
    if not condition:
        raise DatasetError(f"{source}: {message}")


def _parse_frame(root: Path, video_id: str, entry: object, source: Path, video_categories: dict[int, int],
                 known_categories: set[int]) -> FrameRecord:
    _require(isinstance(entry, dict) and "segments_info" in entry and "file_name" in entry, source,
             f"video {video_id!r}: every annotation needs 'file_name' and 'segments_info'.")
    stem = fmt.png_stem(entry["file_name"], source)
    file_name = f"{stem}.png"
    segments: dict[int, int] = {}
    crowd: set[int] = set()
    _require(isinstance(entry["segments_info"], list), source, f"{video_id}/{file_name}: segments_info must be a list.")
    for info in entry["segments_info"]:
        try:
            segment_id, category_id, iscrowd = int(info["id"]), int(info["category_id"]), bool(info.get("iscrowd", 0))
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{source}: {video_id}/{file_name}: segment {info!r} needs integer 'id' and "
                               "'category_id'.") from None
        _require(0 < segment_id < 2 ** 24, source,
                 f"{video_id}/{file_name}: segment id {segment_id} is outside 1..2^24-1.")
        _require(category_id in known_categories, source,
                 f"{video_id}/{file_name}: category_id {category_id} is not in the category table.")
        _require(segment_id not in segments and segment_id not in crowd, source,
                 f"{video_id}/{file_name}: segment id {segment_id} is listed twice.")
        first = video_categories.setdefault(segment_id, category_id)
        _require(first == category_id, source, f"video {video_id!r}: segment id {segment_id} has category {first} in "
                 f"one frame and {category_id} in {file_name}; an id must keep one category for the whole video.")
        if iscrowd:
            crowd.add(segment_id)
        else:
            segments[segment_id] = category_id
    return FrameRecord(stem, root / fmt.IMAGES / video_id / f"{stem}.jpg",
                       root / fmt.PANOMASKS_RGB / video_id / file_name, segments, frozenset(crowd))


def load_split(root: Path, split: str = "train", json_path: Path | None = None,
               check_files: bool = True) -> tuple[list[VideoRecord], list[dict]]:
    """Videos (frame lists with segment categories) and the category table of one split."""
    root = Path(root)
    source = Path(json_path) if json_path is not None else root / fmt.gt_json_name(split)
    payload = fmt.load_json(source)
    _require(isinstance(payload, dict) and isinstance(payload.get("annotations"), list), source,
             "expected an object with an 'annotations' list (VIPSeg panoptic ground truth).")
    categories = payload.get("categories")
    if categories is None:
        categories = CategoryTable.load(root / fmt.CATEGORIES_FILE).to_json()
    _require(isinstance(categories, list) and all(isinstance(c, dict) and "id" in c and "isthing" in c
                                                  for c in categories),
             source, "'categories' must be a list of {id, name, isthing, color}.")
    known = {int(c["id"]) for c in categories}
    videos: list[VideoRecord] = []
    seen: set[str] = set()
    for video in payload["annotations"]:
        _require(isinstance(video, dict) and isinstance(video.get("annotations"), list), source,
                 "every entry of 'annotations' needs 'video_id' and an 'annotations' list.")
        video_id = fmt.check_name(video.get("video_id"), "video_id", source)
        _require(video_id not in seen, source, f"video {video_id!r} is listed twice.")
        _require(len(video["annotations"]) > 0, source, f"video {video_id!r} has no frames.")
        seen.add(video_id)
        video_categories: dict[int, int] = {}
        frames = [_parse_frame(root, video_id, entry, source, video_categories, known)
                  for entry in video["annotations"]]
        _require(len({f.stem for f in frames}) == len(frames), source, f"video {video_id!r} lists a frame twice.")
        videos.append(VideoRecord(video_id, frames))
    _require(len(videos) > 0, source, "the split has no videos.")
    if check_files:
        for video in videos:
            for frame in video.frames:
                for path in (frame.image_path, frame.mask_path):
                    if not path.is_file():
                        raise DatasetError(f"{path} is missing (listed in {source}); re-export the dataset.")
    return videos, categories


# ----- the dataset ----------------------------------------------------------------------------------------------

class VIPSegClipDataset(Dataset):
    """Map-style dataset of training clips (see the module docstring)."""

    def __init__(self, root: Path, split: str = "train", *, label_to_category: Sequence[int] | None = None,
                 num_frames: int = 5, reverse_prob: float = 0.0,
                 augmentation: AugmentationConfig | None = AugmentationConfig(), seed: int = 0,
                 length: int | None = None, json_path: Path | None = None, ignore_unmapped: bool = False,
                 check_files: bool = True):
        self.root = Path(root)
        self.json_path = Path(json_path) if json_path is not None else self.root / fmt.gt_json_name(split)
        self.videos, self.categories = load_split(self.root, split, self.json_path, check_files)
        if label_to_category is None:
            label_to_category = things_first_labels(self.categories)
        self.label_to_category = [int(c) for c in label_to_category]
        self.category_to_label = {c: label for label, c in enumerate(self.label_to_category)}
        if len(self.category_to_label) != len(self.label_to_category):
            raise ValueError("label_to_category maps two model labels to the same category")
        if not ignore_unmapped:
            self._check_mapping()
        self.num_frames = num_frames
        self.reverse_prob = reverse_prob
        self.augmentation = augmentation
        self.seed = seed
        self.length = length if length is not None else len(self.videos)

    @classmethod
    def for_stage(cls, root: Path, stage: str, split: str = "train", **kwargs) -> VIPSegClipDataset:
        """The official clip settings of a training stage: ``segmenter`` (1 frame), ``tracker`` (5), ``refiner``
        (21, reversed with p = 0.5, 608x608 random crop unless ``augmentation`` is given)."""
        if stage not in STAGE_CLIP_LENGTHS:
            raise ValueError(f"unknown stage {stage!r}; choose one of {sorted(STAGE_CLIP_LENGTHS)}")
        kwargs.setdefault("augmentation", AugmentationConfig(crop=OFFICIAL_CROP if stage == "refiner" else None))
        return cls(root, split, num_frames=STAGE_CLIP_LENGTHS[stage], reverse_prob=STAGE_REVERSE_PROBS[stage], **kwargs)

    def _check_mapping(self) -> None:
        used = {c for video in self.videos for frame in video.frames for c in frame.segments.values()}
        missing = sorted(used - self.category_to_label.keys())
        if missing:
            raise DatasetError(f"{self.json_path}: categories {missing} have no model label in label_to_category; "
                               "train a model whose category table includes them, or pass ignore_unmapped=True.")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> ClipSample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        video_index = index % len(self.videos)
        indices = sample_clip_indices(len(self.videos[video_index].frames), self.num_frames, rng, self.reverse_prob)
        images, ids = self._read_clip(video_index, indices)
        transform = sample_transform(*images.shape[-2:], self.augmentation, rng) if self.augmentation else None
        return self._targets(video_index, indices, images, ids, transform)

    def load_clip(self, video_index: int, frame_indices: Sequence[int],
                  transform: ClipTransform | None = None) -> ClipSample:
        """The clip of the given frames with a fixed transform (None: frames as stored)."""
        images, ids = self._read_clip(video_index, frame_indices)
        return self._targets(video_index, list(frame_indices), images, ids, transform)

    def _read_clip(self, video_index: int, frame_indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, 3, H, W) float32 images and (T, H, W) int64 segment ids; repeated frames are read once."""
        video = self.videos[video_index]
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i in frame_indices:
            if i not in cache:
                cache[i] = self._read_frame(video.video_id, video.frames[i])
        shapes = {cache[i][1].shape for i in cache}
        if len(shapes) > 1:
            raise DatasetError(f"{self.json_path}: frames of video {video.video_id!r} differ in size {sorted(shapes)};"
                               " all frames of a video must have one size.")
        images = torch.from_numpy(np.stack([cache[i][0] for i in frame_indices])).permute(0, 3, 1, 2).float()
        ids = torch.from_numpy(np.stack([cache[i][1] for i in frame_indices]))
        return images, ids

    def _read_frame(self, video_id: str, frame: FrameRecord) -> tuple[np.ndarray, np.ndarray]:
        image = fmt.read_rgb_image(frame.image_path)
        ids = fmt.read_id_png(frame.mask_path).astype(np.int64)
        if image.shape[:2] != ids.shape:
            raise DatasetError(f"{frame.mask_path} is {ids.shape[1]}x{ids.shape[0]} but its image "
                               f"{frame.image_path.name} is {image.shape[1]}x{image.shape[0]}; they must match.")
        present = set(np.unique(ids).tolist()) - {0}
        listed = set(frame.segments) | frame.crowd
        if present != listed:
            raise DatasetError(
                f"{frame.mask_path}: ids in the PNG and in segments_info of {video_id}/{frame.stem} in "
                f"{self.json_path.name} disagree (only in PNG: {sorted(present - listed)}, only in JSON: "
                f"{sorted(listed - present)}); re-export the dataset.")
        return image, ids

    def _targets(self, video_index: int, frame_indices: list[int], images: torch.Tensor, ids: torch.Tensor,
                 transform: ClipTransform | None) -> ClipSample:
        if transform is not None:
            images, ids = transform.apply_images(images), transform.apply_ids(ids)
        video = self.videos[video_index]
        categories: dict[int, int] = {}
        for frame in (video.frames[i] for i in frame_indices):
            for segment_id, category_id in frame.segments.items():
                if category_id in self.category_to_label:
                    categories.setdefault(segment_id, category_id)
        listed = torch.tensor(list(categories), dtype=torch.int64)
        masks = ids.unsqueeze(0) == listed.view(-1, 1, 1, 1)
        present = masks.flatten(1).any(1)  # segments cropped away by the transform are dropped
        if not bool(present.all()):
            listed, masks = listed[present], masks[present]
        labels = torch.tensor([self.category_to_label[categories[s]] for s in listed.tolist()], dtype=torch.int64)
        return ClipSample(images, masks, labels, listed, video.video_id, frame_indices, transform)
