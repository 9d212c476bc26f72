"""VideoSegmenter: RGB frames in, per-frame panoptic results with stable track ids out, in bounded memory.

Frames are segmented and tracked a few at a time (the tracker's state carries over, so slots are the
same objects for the whole video). Results are produced per *unit* of frames, the official
post-processing unit in which a slot's class is decided and the 0.8 overlap filter is applied:
- online: units of ``chunk_size`` frames, like the official ``demo_long_video`` with ``keep=True``;
- offline: the refiner needs every frame of its unit at once, so a unit is the whole video when its
  per-frame tensors fit ``memory_budget_mb`` (exactly the official offline inference), otherwise long
  windows overlapping by ``window_overlap`` frames (each frame is emitted by the window in which it is
  most central; the tracker still runs continuously, so slot identities hold across windows).
A video shorter than one unit gets exactly the official result. Track ids come from
``TrackIdAssigner``: one id per (slot, category) for things and one per category for stuff, so every
track keeps one category for the whole video.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from dvis_models.errors import DVISError, InferenceCancelled
from dvis_models.fast import fast_model
from dvis_models.model import DVISModel
from dvis_models.postprocess import PanopticSegment, video_panoptic
from dvis_models.preprocess import PreparedFrames, prepare_frames
from dvis_models.tracker import match_embeddings
from dvis_models.types import FrameResult, Segment

ProgressCallback = Callable[[int, "int | None"], None]
CancelCallback = Callable[[], bool]


class TrackIdAssigner:
    """Stable video track ids (>= 1) from per-unit segments.

    Things: one id per (slot, label), so a slot whose category changes between units gets a new id.
    Stuff: one id per label for the whole video (the official merge already makes one segment per
    stuff class per unit).
    """

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}

    def track_id(self, segment: PanopticSegment) -> int:
        key = ("thing", segment.slot, segment.label) if segment.isthing else ("stuff", segment.label)
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return self._ids[key]


@dataclass
class _Geometry:
    padded_size: tuple[int, int]
    resized_size: tuple[int, int]
    original_size: tuple[int, int]


class _FrameBuffer:
    """Per-frame tensors of the frames not yet needed any more, concatenated along time on demand."""

    def __init__(self) -> None:
        self.start = 0  # video index of the first buffered frame
        self._parts: dict[str, list[torch.Tensor]] = {}

    def append(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, tensor in tensors.items():
            self._parts.setdefault(name, []).append(tensor)

    def get(self, name: str, frames: slice) -> torch.Tensor:
        merged = torch.cat(self._parts[name]) if len(self._parts[name]) > 1 else self._parts[name][0]
        self._parts[name] = [merged]
        return merged[frames]

    def drop_before(self, index: int) -> None:
        """Forget frames with video index < ``index``."""
        cut = index - self.start
        for name, parts in self._parts.items():
            merged = torch.cat(parts) if parts else None
            self._parts[name] = [merged[cut:].clone()] if merged is not None and cut < merged.shape[0] else []
        self.start = index


class VideoSegmenter:
    """Runs a ``DVISModel`` over a video given as an iterable of RGB uint8 (H, W, 3) frames."""

    def __init__(
        self,
        model: DVISModel,
        device: torch.device | str | None = None,
        chunk_size: int = 16,
        offline: bool | None = None,
        memory_budget_mb: int = 3072,
        window_overlap: int = 8,
        segment_batch: int = 3,
        fp16: bool | None = None,
        object_mask_threshold: float | None = None,
        overlap_threshold: float | None = None,
        short_edge: int | None = None,
        max_size: int | None = None,
        tta_short_edges: tuple[int, ...] = (),
        fast: bool = False,
    ):
        """``offline=None`` uses the refiner when the model has one. ``fp16=None``: autocast on CUDA only
        (the official evaluation setting; the pixel decoder stays fp32). Thresholds and the test resize
        (``short_edge``/``max_size``, e.g. 480 for speed) default to the model config.
        ``tta_short_edges`` (e.g. ``(800,)``) adds segmenter passes at other scales, fused by ``fuse_scales``.
        ``fast=True`` runs a ``dvis_models.fast.fast_model`` copy on the CPU (int8 linears, channels_last
        convolutions: faster, outputs drift slightly from the official ones); on CUDA it changes nothing, as fp16
        autocast is already the fast path there."""
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.fast = fast and self.device.type == "cpu"
        self.model = (fast_model(model) if self.fast else model.to(self.device)).eval()
        config = model.config
        self.offline = (model.refiner is not None) if offline is None else offline
        if self.offline and model.refiner is None:
            raise DVISError(f"Model {config.name!r} has no temporal refiner; run it online (offline=False).")
        if model.tracker is None:
            raise DVISError(f"Model {config.name!r} has no referring tracker, so it cannot track objects in video.")
        self.chunk_size = max(1, chunk_size)
        self.memory_budget = memory_budget_mb * 2**20
        self.window_overlap = max(0, window_overlap)
        self.segment_batch = max(1, segment_batch)
        self.fp16 = self.device.type == "cuda" and (fp16 is None or fp16)  # autocast exists for CUDA only here
        self.object_mask_threshold = config.object_mask_threshold if object_mask_threshold is None else object_mask_threshold
        self.overlap_threshold = config.overlap_threshold if overlap_threshold is None else overlap_threshold
        self.short_edge = short_edge or config.test_short_edge
        self.max_size = max_size or config.test_max_size
        self.tta_short_edges = tuple(tta_short_edges)

    # ------------------------------------------------------------------------------------- public

    def run(
        self,
        frames: Iterable[np.ndarray],
        num_frames: int | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
    ) -> Iterator[FrameResult]:
        """Yield one ``FrameResult`` per input frame, in order. Raises ``InferenceCancelled`` when ``cancel()``."""
        self.model.tracker.reset()
        try:
            yield from self._results(frames, num_frames, progress, cancel)
        finally:  # a cancelled, failed or abandoned run leaves no tracker state behind
            self.model.tracker.reset()

    def _results(
        self, frames: Iterable[np.ndarray], num_frames: int | None, progress: ProgressCallback | None,
        cancel: CancelCallback | None,
    ) -> Iterator[FrameResult]:
        tracks = TrackIdAssigner()
        buffer = _FrameBuffer()
        geometry: _Geometry | None = None
        first_shape: tuple[int, ...] | None = None
        seen = emitted = 0

        def deliver(unit_end: int, final: bool) -> Iterator[FrameResult]:
            nonlocal emitted
            for result in self._finish_unit(buffer, unit_end, emitted, final, geometry, tracks):
                _check_cancel(cancel)
                emitted += 1
                if progress is not None:
                    progress(emitted, num_frames)
                yield result

        for batch in _batched(frames, self.segment_batch):
            _check_cancel(cancel)
            first_shape = first_shape or batch[0].shape
            _check_frames(batch, first_shape)
            prepared = self._prepare(batch, self.short_edge)
            geometry = _Geometry(prepared.padded_size, prepared.resized_size, prepared.original_size)
            extra_scales = [self._prepare(batch, edge) for edge in self.tta_short_edges]
            buffer.append(self._segment_and_track(prepared, extra_scales))
            seen += len(batch)
            unit = self._unit_length(geometry)
            while seen - buffer.start >= unit:
                yield from deliver(buffer.start + unit, final=False)
        if seen > emitted:
            yield from deliver(seen, final=True)

    # ---------------------------------------------------------------------------------- stages

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.fp16 else nullcontext()

    def _prepare(self, batch: list[np.ndarray], short_edge: int) -> PreparedFrames:
        config = self.model.config
        return prepare_frames(batch, short_edge, self.max_size, config.pixel_mean,
                              config.pixel_std, config.size_divisibility, device=self.device)

    @torch.no_grad()
    def _segment_and_track(self, prepared: PreparedFrames, extra_scales: list[PreparedFrames]) -> dict[str, torch.Tensor]:
        """Segmenter (+ TTA scales) + tracker on a few frames; keeps only what the unit's finishing step needs."""
        with self._autocast():
            segmented = self.model.segment(prepared.images, with_masks=False)
            embeds, mask_features = segmented.pred_embds, segmented.mask_features
            for other in extra_scales:
                scaled = self.model.segment(other.images, with_masks=False)
                embeds, mask_features = fuse_scales(embeds, mask_features, prepared.resized_size,
                                                    scaled.pred_embds, scaled.mask_features, other.resized_size)
            tracked = self.model.tracker(embeds, None if self.offline else mask_features)
        # Large per-frame tensors are kept in the precision the masks are computed in: under fp16 autocast the
        # official code also multiplies fp16-cast mask features, so storing them as fp16 loses nothing.
        kept = {"tracker_logits": tracked.pred_logits.float().cpu()}
        if self.offline:
            kept["segmenter_embeds"] = embeds
            kept["tracker_embeds"] = tracked.pred_embds
            kept["mask_features"] = mask_features.to(self._storage_dtype).cpu()
        else:
            kept["mask_logits"] = tracked.pred_masks.to(self._storage_dtype).cpu()
        return kept

    @property
    def _storage_dtype(self) -> torch.dtype:
        return torch.float16 if self.fp16 else torch.float32

    def _unit_length(self, geometry: _Geometry) -> int:
        """Frames per unit: ``chunk_size`` online; offline as many as ``memory_budget_mb`` holds."""
        if not self.offline:
            return self.chunk_size
        config = self.model.config
        height, width = (side // 4 for side in geometry.padded_size)
        feature_bytes = config.mask_dim * torch.finfo(self._storage_dtype).bits // 8
        per_frame = (feature_bytes + config.num_queries * 4) * height * width  # mask features + float32 mask logits
        return max(self.memory_budget // per_frame, 2 * self.window_overlap + 1, 1)

    @torch.no_grad()
    def _finish_unit(
        self, buffer: _FrameBuffer, end: int, emitted: int, final: bool, geometry: _Geometry, tracks: TrackIdAssigner
    ) -> Iterator[FrameResult]:
        """Decide classes over buffered frames [buffer.start, end) and yield the frames this unit emits."""
        window = slice(0, end - buffer.start)
        emit_end = end if final or not self.offline else end - self.window_overlap // 2
        emit = slice(emitted - buffer.start, emit_end - buffer.start)
        tracker_cls = buffer.get("tracker_logits", window).mean(0)
        if self.offline:
            (pred_cls, mask_logits), aux_cls = self._refine(buffer, window, emit), tracker_cls
        else:
            pred_cls, aux_cls, mask_logits = tracker_cls, None, buffer.get("mask_logits", emit)
        panoptic = video_panoptic(
            pred_cls, mask_logits.transpose(0, 1), geometry.padded_size, geometry.resized_size,
            geometry.original_size, self.model.config.num_thing_classes, aux_cls=aux_cls,
            object_mask_threshold=self.object_mask_threshold, overlap_threshold=self.overlap_threshold,
            device=self.device,
        )
        for offset, (id_map, segments) in enumerate(panoptic):
            yield self._frame_result(emitted + offset, id_map, segments, tracks)
        keep_from = end - self.window_overlap if self.offline and not final else end
        buffer.drop_before(max(keep_from, buffer.start))

    def _refine(self, buffer: _FrameBuffer, window: slice, emit: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Refiner over the whole window; returns its class logits (Q, K+1) and the emitted frames' masks."""
        model = self.model
        with self._autocast():
            frame_embeds = model.tracker.frame_forward(buffer.get("segmenter_embeds", window))
            refined = model.refiner(buffer.get("tracker_embeds", window), frame_embeds)
            mask_logits = model.refiner.predict_masks(
                refined.pred_embds[emit], buffer.get("mask_features", emit), mask_device="cpu"
            )
        return refined.pred_logits.float().cpu(), mask_logits

    def _frame_result(
        self, index: int, id_map: np.ndarray, segments: list[PanopticSegment], tracks: TrackIdAssigner
    ) -> FrameResult:
        lookup = np.zeros(max((s.id for s in segments), default=0) + 1, np.int32)
        for segment in segments:
            lookup[segment.id] = tracks.track_id(segment)
        track_map = lookup[id_map]
        areas = np.bincount(id_map.ravel(), minlength=lookup.size)
        label_to_category = self.model.config.label_to_category
        results = [
            Segment(int(lookup[s.id]), int(label_to_category[s.label]), bool(s.isthing), float(s.score), int(areas[s.id]))
            for s in segments
        ]
        return FrameResult(index, track_map, results)


def fuse_scales(
    embeds: torch.Tensor,
    mask_features: torch.Tensor,
    resized_size: tuple[int, int],
    other_embeds: torch.Tensor,
    other_features: torch.Tensor,
    other_resized_size: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time augmentation: fuse a segmenter pass at another scale into the primary one.

    Queries of the two passes are paired per frame by Hungarian matching on cosine similarity (the
    tracker's matching, aligning form) and averaged, so the class and mask kernels the tracker and refiner
    derive from them see both scales. The other pass's mask features are resized onto the primary grid
    (content region only; the padding is cropped later anyway) and averaged. Mask logits are linear in
    the mask features, so this equals averaging the two scales' mask logits for the same kernels.
    """
    aligned = torch.stack([
        other[torch.as_tensor(match_embeddings(primary, other, official_matching=False), device=other.device)]
        for primary, other in zip(embeds, other_embeds)
    ])
    fused_embeds = (embeds + aligned.to(embeds.dtype)) / 2
    height, width = (-(-side // 4) for side in resized_size)  # content of the 1/4-resolution grid
    other_height, other_width = (-(-side // 4) for side in other_resized_size)
    resized = torch.nn.functional.interpolate(
        other_features[..., :other_height, :other_width].float(), size=(height, width), mode="bilinear",
        align_corners=False,
    )
    fused_features = mask_features.clone()
    fused_features[..., :height, :width] = (mask_features[..., :height, :width] + resized.to(mask_features.dtype)) / 2
    return fused_embeds, fused_features


def _batched(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_frames(batch: list[np.ndarray], first_shape: tuple[int, ...]) -> None:
    """Every frame must be RGB uint8 (H, W, 3) and the size of the video's first frame."""
    for frame in batch:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise DVISError(f"Frames must be RGB uint8 arrays of shape (H, W, 3); got {frame.dtype} {frame.shape}.")
        if frame.shape != first_shape:
            raise DVISError(f"All frames of a video must have the same size; got {frame.shape[:2]} "
                            f"after {first_shape[:2]}.")


def _check_cancel(cancel: CancelCallback | None) -> None:
    if cancel is not None and cancel():
        raise InferenceCancelled("Inference was cancelled; results so far are kept, run again to finish.")
