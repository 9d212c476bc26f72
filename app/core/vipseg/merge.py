"""Merge newly written videos into a folder's JSON, so a folder built by several exports (or ``dvis infer``
runs) keeps describing every video it holds.

A video id already in the JSON is replaced (its entry keeps its place), other videos are kept, new ones
are appended. A ground-truth folder keeps one category table: writing videos made with another table is
refused before any file is written (``check_categories``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.vipseg.layout import DatasetError, DatasetLayout
from app.core.vipseg.reader import categories_from_json
from dvis_models import atomic
from dvis_models.categories import CategoryTable
from dvis_models.vipseg_format import PAN_PRED, PANOMASKS, PANOMASKS_RGB, STEM_RE, load_json


@dataclass
class WrittenDataset:
    """What a write left in the folder: its JSON, every video that JSON lists now, and which of the
    written videos replaced an entry the JSON already had."""

    json_path: Path
    videos: list[str]
    replaced: list[str]

    def summary(self) -> str:
        """E.g. ``/data/panoptic_gt_VIPSeg_val.json (3 videos; replaced the earlier version of 'clip')``."""
        text = f"{self.json_path} ({len(self.videos)} video{'s' if len(self.videos) != 1 else ''}"
        if self.replaced:
            text += f"; replaced the earlier version of {', '.join(repr(v) for v in self.replaced)}"
        return text + ")"


def check_categories(layout: DatasetLayout, json_path: Path, table: CategoryTable) -> None:
    """Refuse a ground-truth folder whose category table differs from ``table`` (call before writing anything)."""
    if layout.categories_json().is_file():
        existing, source = load_json(layout.categories_json()), layout.categories_json()
    elif json_path.is_file():
        existing, source = _top_level(json_path).get("categories"), json_path
    else:
        return
    if categories_from_json(existing, source).to_json() != table.to_json():
        raise DatasetError(
            f"{source} has a different category table from the videos being written; a VIPSeg folder holds one table. "
            "Write into an empty folder, or export videos annotated with the folder's table."
        )


def _top_level(path: Path) -> dict:
    data = load_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: the top level must be an object; move the file away or write into another folder.")
    return data


def _entries(data: dict, key: str, path: Path) -> list[dict]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("video_id"), str)
                                                for e in entries):
        raise DatasetError(f"{path}: '{key}' must be a list of entries with a video_id; move the file away or write "
                           "into another folder.")
    return entries


def _merged(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with entries of the same video id replaced in place by ``new``'s, then ``new``'s other entries."""
    by_id = {entry["video_id"]: entry for entry in new}
    kept = [by_id.pop(entry["video_id"], entry) for entry in old]
    return kept + [entry for entry in new if entry["video_id"] in by_id]


def merge_json_files(root: str | Path, parts: Sequence[Path], split: str | None, predictions: bool) -> WrittenDataset:
    """Merge JSON files written by ``write_videos`` into other folders (``parts``, each holding other videos) into
    ``root``'s ground-truth JSON of ``split``, or its pred.json; the videos are in ``root`` already."""
    layout = DatasetLayout(root)
    loaded = [(_top_level(part), part) for part in parts]
    annotations = [entry for data, part in loaded for entry in _entries(data, "annotations", part)]
    if predictions:
        return merge_into_json(layout, layout.pred_json(), None, [], annotations, predictions=True)
    (first, first_path), *_ = loaded
    table = categories_from_json(first.get("categories"), first_path)
    videos = [entry for data, part in loaded for entry in _entries(data, "videos", part)]
    return merge_into_json(layout, layout.gt_json(split), table, videos, annotations, predictions=False)


def _remove_stale_masks(layout: DatasetLayout, annotations: Sequence[dict], predictions: bool) -> None:
    """Mask PNGs of a replaced video that its new entry does not list (the earlier version had more frames)."""
    folders = (PAN_PRED,) if predictions else (PANOMASKS, PANOMASKS_RGB)
    for entry in annotations:
        listed = {frame["file_name"] for frame in entry["annotations"]}
        for folder in folders:
            video_folder = layout.path(folder, entry["video_id"])
            if not video_folder.is_dir():
                continue
            for png in video_folder.glob("*.png"):
                if STEM_RE.match(png.stem) and png.name not in listed:
                    png.unlink()


def merge_into_json(
    layout: DatasetLayout,
    json_path: Path,
    table: CategoryTable | None,
    videos: list[dict],
    annotations: list[dict],
    predictions: bool,
) -> WrittenDataset:
    """Write ``json_path`` = its current content merged with ``videos`` / ``annotations`` (atomically).
    Predictions (pred.json) hold annotations only and no category table (``table`` None)."""
    data = _top_level(json_path) if json_path.is_file() else {}
    old_annotations = _entries(data, "annotations", json_path)
    old_ids = {entry["video_id"] for entry in old_annotations}
    replaced = [entry["video_id"] for entry in annotations if entry["video_id"] in old_ids]
    merged_annotations = _merged(old_annotations, annotations)
    try:
        if predictions:
            atomic.write_json(json_path, {"annotations": merged_annotations}, indent=None)
        else:
            assert table is not None, "a ground-truth JSON needs its category table"
            check_categories(layout, json_path, table)
            merged_videos = _merged(_entries(data, "videos", json_path), videos)
            atomic.write_json(layout.categories_json(), table.to_json(), indent=None)
            atomic.write_json(json_path, {"videos": merged_videos, "annotations": merged_annotations,
                                          "categories": table.to_json()}, indent=None)
        _remove_stale_masks(layout, [entry for entry in annotations if entry["video_id"] in old_ids], predictions)
    except OSError as error:
        raise DatasetError(f"Cannot write {json_path}: {error.strerror}. Check free disk space and folder "
                           "permissions.") from None
    return WrittenDataset(json_path, [entry["video_id"] for entry in merged_annotations], replaced)
