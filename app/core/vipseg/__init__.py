"""VIPSeg dataset format: export annotations as a VIPSeg dataset / evaluator predictions, and import them back.

Layers: ``layout`` (paths + the guard keeping everything inside the root), ``writer`` / ``reader`` (plain
per-frame data), ``merge`` (adding videos to a folder's JSON), ``convert`` (Annotation / VideoSource adapters).
File names and pixel encodings are ``dvis_models.vipseg_format``, shared with the training reader.
"""

from app.core.vipseg.convert import (
    ImportedVideo,
    annotation_frames,
    check_frame_images,
    export_predictions,
    export_vipseg,
    import_dataset_video,
    import_predictions,
    import_vipseg,
    import_vipseg_raw,
    source_image_file,
)
from app.core.vipseg.frames import PanopticFrame
from app.core.vipseg.layout import DatasetError, DatasetLayout, video_id_for
from app.core.vipseg.merge import WrittenDataset, check_categories, merge_into_json, merge_json_files
from app.core.vipseg.reader import DatasetVideo, RawVideo, read_ground_truth, read_predictions, read_raw_release
from app.core.vipseg.writer import VideoToWrite, write_videos

__all__ = [
    "DatasetError",
    "DatasetLayout",
    "DatasetVideo",
    "ImportedVideo",
    "PanopticFrame",
    "RawVideo",
    "VideoToWrite",
    "WrittenDataset",
    "check_categories",
    "annotation_frames",
    "check_frame_images",
    "export_predictions",
    "export_vipseg",
    "import_dataset_video",
    "import_predictions",
    "import_vipseg",
    "import_vipseg_raw",
    "merge_into_json",
    "merge_json_files",
    "read_ground_truth",
    "read_predictions",
    "read_raw_release",
    "source_image_file",
    "video_id_for",
    "write_videos",
]

