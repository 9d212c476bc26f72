"""VIPSeg dataset format: export annotations as a VIPSeg dataset / evaluator predictions, and import them back.

Layers: ``layout`` (paths + the guard keeping everything inside the root), ``codec`` (pixel encodings),
``writer`` / ``reader`` (plain per-frame data), ``convert`` (Annotation / VideoSource adapters).
"""

from app.core.vipseg.convert import (
    ImportedVideo,
    annotation_frames,
    export_predictions,
    export_vipseg,
    import_predictions,
    import_vipseg,
)
from app.core.vipseg.frames import PanopticFrame
from app.core.vipseg.layout import DatasetError, DatasetLayout, ExportCancelled
from app.core.vipseg.reader import DatasetVideo, read_ground_truth, read_predictions
from app.core.vipseg.writer import VideoToWrite, write_videos

__all__ = [
    "DatasetError",
    "DatasetLayout",
    "DatasetVideo",
    "ExportCancelled",
    "ImportedVideo",
    "PanopticFrame",
    "VideoToWrite",
    "annotation_frames",
    "export_predictions",
    "export_vipseg",
    "import_predictions",
    "import_vipseg",
    "read_ground_truth",
    "read_predictions",
    "write_videos",
]

