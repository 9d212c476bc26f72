"""Where every VIPSeg file lives, and the guard that keeps reads and writes inside the dataset root.

Every path built from JSON content (video ids, file names) goes through ``DatasetLayout.path``, which
refuses anything that is not a plain name or that resolves (symlinks included) outside the root.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from app.core.errors import StudioError

CATEGORIES_FILE = "panoVIPSeg_categories.json"
PRED_JSON = "pred.json"
IMAGES, PANOMASKS, PANOMASKS_RGB, PAN_PRED = "images", "panomasks", "panomasksRGB", "pan_pred"
STEM_RE = re.compile(r"^\d{8}$")

Progress = Callable[[int, int], None]  # progress(done, total) of a long read


class DatasetError(StudioError):
    """A VIPSeg dataset (or prediction folder) is malformed, unreadable, or cannot be written."""


def video_id_for(path: Path) -> str:
    """The VIPSeg video id of a source: an image folder's name, a video file's stem."""
    return path.name if path.is_dir() else path.stem


def gt_json_name(split: str | None) -> str:
    return "panoptic_gt_VIPSeg.json" if split is None else f"panoptic_gt_VIPSeg_{split}.json"


def check_name(name: object, what: str, source: object) -> str:
    """A single, plain path component: no separators, no '..', not absolute, not empty."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or Path(name).is_absolute()
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise DatasetError(f"{source}: {what} {name!r} is not a plain file name (no folders, '..' or absolute paths allowed).")
    return name


def png_stem(file_name: object, source: object) -> str:
    """The stem of a ``<stem>.png`` file name from the JSON, checked to be a plain name."""
    name = check_name(file_name, "file_name", source)
    if not name.endswith(".png"):
        raise DatasetError(f"{source}: file_name {name!r} must end with '.png'.")
    return name[: -len(".png")]


class DatasetLayout:
    """Paths of one dataset root (ground truth layout and prediction layout share it)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def path(self, *parts: str) -> Path:
        """``root/parts...`` after checking each part is a plain name and the result stays inside the root."""
        for part in parts:
            check_name(part, "path component", self.root)
        candidate = self.root.joinpath(*parts)
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.root):
            raise DatasetError(f"{candidate} points outside the dataset folder {self.root} (symbolic link?); refusing to use it.")
        return candidate

    def image(self, video_id: str, stem: str) -> Path:
        return self.path(IMAGES, video_id, stem + ".jpg")

    def panomask(self, video_id: str, stem: str) -> Path:
        return self.path(PANOMASKS, video_id, stem + ".png")

    def panomask_rgb(self, video_id: str, stem: str) -> Path:
        return self.path(PANOMASKS_RGB, video_id, stem + ".png")

    def pan_pred(self, video_id: str, stem: str) -> Path:
        return self.path(PAN_PRED, video_id, stem + ".png")

    def gt_json(self, split: str | None) -> Path:
        return self.path(gt_json_name(split))

    def categories_json(self) -> Path:
        return self.path(CATEGORIES_FILE)

    def pred_json(self) -> Path:
        return self.path(PRED_JSON)
