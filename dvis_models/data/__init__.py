"""Training data: the VIPSeg format, a synthetic VIPSeg video generator and the clip dataset reader.

- :mod:`~dvis_models.data.vipseg_format`: paths, id encodings, PNG/JPEG I/O, ``DatasetFormatError``.
- :mod:`~dvis_models.data.synthetic`: procedural VIPSeg-format videos (``python -m dvis_models.data.synthetic``).
- :mod:`~dvis_models.data.vipseg_reader`: ``VIPSegClipDataset`` (training clips + targets), ``collate_clips``.
- :mod:`~dvis_models.data.clips` / :mod:`~dvis_models.data.transforms`: clip frame sampling and augmentation.

Uses OpenCV (``cv2``, a project dependency) for image decode/encode, besides torch/numpy.
The generator is not imported here so that ``python -m dvis_models.data.synthetic`` runs cleanly.
"""

from dvis_models.data.transforms import AugmentationConfig, ClipTransform
from dvis_models.data.vipseg_format import DatasetFormatError, load_categories
from dvis_models.data.vipseg_reader import ClipSample, VIPSegClipDataset, collate_clips, load_split

__all__ = [
    "AugmentationConfig", "ClipSample", "ClipTransform", "DatasetFormatError", "VIPSegClipDataset",
    "collate_clips", "load_categories", "load_split",
]
