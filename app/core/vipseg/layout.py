"""Where every VIPSeg file lives, and the guard that keeps reads and writes inside the dataset root.

Every path built from JSON content (video ids, file names) goes through ``DatasetLayout.path``, which
refuses anything that is not a plain name or that resolves (symlinks included) outside the root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.core.errors import DatasetError
from dvis_models.vipseg_format import (
    CATEGORIES_FILE,
    IMAGES,
    PAN_PRED,
    PANOMASKS,
    PANOMASKS_RGB,
    PRED_JSON,
    check_name,
    gt_json_name,
)

ReportProgress = Callable[[int, int], None]  # progress(done, total) of a long read




def video_id_for(path: Path) -> str:
    """The VIPSeg video id of a source: an image folder's name, a video file's stem."""
    return path.name if path.is_dir() else path.stem


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
            raise DatasetError(f"{candidate} points outside the dataset folder {self.root} (symbolic link?); refusing "
                               "to use it.")
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
