"""Training data: a synthetic VIPSeg video generator and the clip dataset reader.

- :mod:`~dvis_models.data.synthetic`: procedural VIPSeg-format videos (``python -m dvis_models.data.synthetic``).
- :mod:`~dvis_models.data.clip_dataset`: ``VIPSegClipDataset`` (training clips + targets), ``collate_clips``.
- :mod:`~dvis_models.data.clips` / :mod:`~dvis_models.data.transforms`: clip frame sampling and augmentation.

The VIPSeg format itself (file names, id encodings, PNG/JPEG I/O) is :mod:`dvis_models.vipseg_format`, shared
with the app. The generator is not imported here so that ``python -m dvis_models.data.synthetic`` runs cleanly.
"""

from dvis_models.data.clip_dataset import ClipSample, VIPSegClipDataset, collate_clips, load_split
from dvis_models.data.transforms import AugmentationConfig, ClipTransform

__all__ = ["AugmentationConfig", "ClipSample", "ClipTransform", "VIPSegClipDataset", "collate_clips", "load_split"]
