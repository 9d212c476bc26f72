"""VideoSegmenter: RGB frames in, per-frame panoptic results with stable track ids out, in bounded memory.

Frames are segmented and tracked a few at a time (the tracker's state carries over, so slots are the
same objects for the whole video). Results are produced per *unit* of frames, the official
post-processing unit in which a slot's class is decided and the 0.8 overlap filter is applied:
- online: units of ``chunk_size`` frames, like the official ``demo_long_video`` with ``keep=True`` and
  ``--windows_size chunk_size``: the tracker's outputs do not depend on it, but the class (tracker logits
  averaged over the unit), the score threshold and the overlap filter do, so masks differ between chunk sizes
  as in the official demo; a unit at least as long as the video is the official evaluation's;
- offline: the refiner needs every frame of its unit at once, so a unit is the whole video when the
  refiner's per-frame inputs and working memory fit a quarter of ``memory_budget_mb`` (exactly the official
  offline inference), otherwise long windows overlapping by ``window_overlap`` frames (each frame is
  emitted by the window in which it is most central; the tracker still runs continuously, so slot
  identities hold across windows). A unit's mask features (the largest per-frame tensors) stay in memory
  when they fit a sixteenth of the budget and are spilled to a temporary file otherwise; mask logits
  are computed from them a few frames at a time. So memory does not grow with the video's length.
A video shorter than one unit gets exactly the official result. Track ids come from
``TrackIdAssigner``: one id per (slot, category) for things and one per category for stuff, so every
track keeps one category for the whole video.

Progress is reported per phase as ``progress(phase, done, total)``: ``SEGMENTING`` frames segmented and
tracked, ``REFINING`` the offline window being refined, ``POSTPROCESSING`` frames through the first
post-processing pass (which sees a whole unit before its first frame is painted), ``FINISHED`` frames
handed to the caller. ``total`` is None when the number of frames is not known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from dvis_models import transfer
from dvis_models.errors import Cancelled, DVISError
from dvis_models.fast import fast_model
from dvis_models.frame_store import FrameStore
from dvis_models.mask_decoder import SegmenterOutput
from dvis_models.model import DVISModel
from dvis_models.postprocess import LazyMaskLogits, PanopticSegment, video_panoptic
from dvis_models.preprocess import PreparedFrames, prepare_frames
from dvis_models.tracker import match_embeddings
from dvis_models.types import FrameResult, Segment

SEGMENTING, REFINING, POSTPROCESSING, FINISHED = "segmenting", "refining", "post-processing", "finished"
ProgressCallback = Callable[[str, int, "int | None"], None]  # phase, done, total
CancelCallback = Callable[[], bool]

# The refiner's working memory per frame, in (Q, hidden_dim) float32 tensors alive at once: measured about
# 20 on the bundled model (300 KB a frame at Q=30, C=128); attention runs in memory-efficient kernels.
_REFINER_TENSORS_PER_FRAME = 24


def progress_text(phase: str, done: int, total: int | None) -> str:
    """One progress report as a line: 'segmenting 120/2000 frames', 'refining window 1/2', ..."""
    count = f"{done}/{total if total is not None else '?'}"
    return f"refining window {count}" if phase == REFINING else f"{phase} {count} frames"


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
        spill_dir: str | Path | None = None,
        fast: bool = False,
    ):
        """``chunk_size`` is the online post-processing unit (above): it changes the masks, as the official
        ``demo_long_video.py --windows_size`` does, never which slot is which object; offline runs do not use it.
        ``offline=None`` uses the refiner when the model has one. ``fp16=None``: autocast on CUDA only
        (the official evaluation setting; the pixel decoder stays fp32). Thresholds and the test resize
        (``short_edge``/``max_size``, e.g. 480 for speed) default to the model config.
        ``tta_short_edges`` (e.g. ``(800,)``) adds segmenter passes at other scales, fused by ``fuse_scales``.
        ``memory_budget_mb`` bounds what a run keeps: a quarter for an offline window's queries and the
        refiner, a sixteenth for mask features held in memory (more are spilled to ``spill_dir``, default the
        system temporary folder), a twelfth for each post-processing chunk; the rest is left for the model
        and the caller. ``fast=True`` runs a ``dvis_models.fast.fast_model`` copy on the CPU (int8 linears,
        channels_last convolutions: faster, outputs drift slightly from the official ones); on CUDA it changes nothing,
        as fp16 autocast is already the fast path there."""
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
        self.object_mask_threshold = (config.object_mask_threshold if object_mask_threshold is None
                                      else object_mask_threshold)
        self.overlap_threshold = config.overlap_threshold if overlap_threshold is None else overlap_threshold
        self.short_edge = short_edge or config.test_short_edge
        self.max_size = max_size or config.test_max_size
        self.tta_short_edges = tuple(tta_short_edges)
        self.spill_dir = spill_dir

    # ------------------------------------------------------------------------------------- public

    def run(
        self,
        frames: Iterable[np.ndarray],
        num_frames: int | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCallback | None = None,
    ) -> Iterator[FrameResult]:
        """Yield one ``FrameResult`` per input frame, in order. Raises ``Cancelled`` when ``cancel()``."""
        self.model.tracker.reset()
        try:
            yield from self._results(frames, num_frames, progress, cancel)
        finally:  # a cancelled, failed or abandoned run leaves no tracker state behind
            self.model.tracker.reset()

    def _results(
        self, frames: Iterable[np.ndarray], num_frames: int | None, progress: ProgressCallback | None,
        cancel: CancelCallback | None,
    ) -> Iterator[FrameResult]:
        report = progress or (lambda phase, done, total: None)
        tracks = TrackIdAssigner()
        store: FrameStore | None = None
        geometry: _Geometry | None = None
        first_shape: tuple[int, ...] | None = None
        seen = emitted = measured = windows = 0

        def on_measured(count: int) -> None:
            nonlocal measured
            measured += count
            report(POSTPROCESSING, measured, num_frames)
            _check_cancel(cancel)  # the first pass over a long offline unit takes a while

        def deliver(unit_end: int, final: bool) -> Iterator[FrameResult]:
            nonlocal emitted, windows
            if self.offline:
                windows += 1
                report(REFINING, windows, num_frames and _window_count(num_frames, unit, self.window_overlap))
            for result in self._finish_unit(store, unit_end, emitted, final, geometry, tracks, on_measured):
                _check_cancel(cancel)
                emitted += 1
                report(FINISHED, emitted, num_frames)
                yield result

        report(SEGMENTING, 0, num_frames)
        try:
            for batch in _batched(frames, self.segment_batch):
                _check_cancel(cancel)
                first_shape = first_shape or batch[0].shape
                _check_frames(batch, first_shape)
                prepared = self._prepare(batch, self.short_edge)
                extra_scales = [self._prepare(batch, edge) for edge in self.tta_short_edges]
                kept = self._segment_and_track(prepared, extra_scales)
                if store is None:
                    geometry = _Geometry(prepared.padded_size, prepared.resized_size, prepared.original_size)
                    unit = self._unit_length(kept)
                    store = self._store(kept, min(unit, num_frames or unit))
                store.append(kept)
                seen += len(batch)
                report(SEGMENTING, seen, num_frames)
                while seen - store.start >= unit:
                    yield from deliver(store.start + unit, final=False)
            if seen > emitted:
                yield from deliver(seen, final=True)
        finally:
            if store is not None:
                store.close()

    # ---------------------------------------------------------------------------------- stages

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.fp16 else nullcontext()

    def _prepare(self, batch: list[np.ndarray], short_edge: int) -> PreparedFrames:
        config = self.model.config
        return prepare_frames(batch, short_edge, self.max_size, config.pixel_mean,
                              config.pixel_std, config.size_divisibility, device=self.device)

    @torch.no_grad()
    def _segment_and_track(self, prepared: PreparedFrames,
                           extra_scales: list[PreparedFrames]) -> dict[str, torch.Tensor]:
        """Segmenter (+ TTA scales) + tracker on a few frames; keeps only what the unit's finishing step needs."""
        with self._autocast():
            segmented = self.model.segment(prepared.images, with_masks=False)
            for other in extra_scales:
                segmented = fuse_scales(segmented, prepared.resized_size,
                                        self.model.segment(other.images, with_masks=False), other.resized_size)
            tracked = self.model.track(segmented, None if self.offline else segmented.mask_features)
            memory = self.model.refiner_memory(segmented) if self.offline else None
        # Large per-frame tensors are kept in the precision the masks are computed in: under fp16 autocast the
        # official code also multiplies fp16-cast mask features, so storing them as fp16 loses nothing.
        # Queries are cloned: a slice of a larger output would keep all of that output alive.
        # What goes to the host is copied into pinned memory without blocking, then waited for once.
        kept = {"tracker_logits": transfer.to_host(tracked.pred_logits.float())}
        if self.offline:
            kept["refiner_memory"] = memory.clone()
            kept["tracker_embeds"] = tracked.pred_embds.clone()
            kept["mask_features"] = transfer.to_host(segmented.mask_features.to(self._storage_dtype))
        else:
            kept["mask_logits"] = transfer.to_host(tracked.pred_masks.to(self._storage_dtype))
        transfer.wait_for_device(self.device)
        return kept

    @property
    def _storage_dtype(self) -> torch.dtype:
        return torch.float16 if self.fp16 else torch.float32

    def _unit_length(self, kept: dict[str, torch.Tensor]) -> int:
        """Frames per unit: ``chunk_size`` online; offline as many as a quarter of ``memory_budget_mb`` holds
        of the refiner's per-frame inputs and working memory (mask features are accounted in ``_store``)."""
        if not self.offline:
            return self.chunk_size
        config = self.model.config
        queries = sum(_frame_bytes(kept[name]) for name in ("tracker_logits", "refiner_memory", "tracker_embeds"))
        working = config.num_queries * (_REFINER_TENSORS_PER_FRAME * config.query_dim + 2 * config.dim_feedforward) * 4
        return max(self.memory_budget // 4 // (queries + working), 2 * self.window_overlap + 1, 1)

    def _store(self, kept: dict[str, torch.Tensor], unit_frames: int) -> FrameStore:
        """In memory, except an offline unit's mask features when they exceed a sixteenth of the budget (they are
        read back a few frames at a time, so the disk costs little and memory stays flat whatever the length)."""
        spill = self.offline and unit_frames * _frame_bytes(kept["mask_features"]) > self.memory_budget // 16
        return FrameStore(spill=("mask_features",) if spill else (), spill_dir=self.spill_dir)

    @torch.no_grad()
    def _finish_unit(
        self, store: FrameStore, end: int, emitted: int, final: bool, geometry: _Geometry, tracks: TrackIdAssigner,
        measured: Callable[[int], None],
    ) -> Iterator[FrameResult]:
        """Decide classes over stored frames [store.start, end) and yield the frames this unit emits."""
        window = slice(0, end - store.start)
        emit_end = end if final or not self.offline else end - self.window_overlap // 2
        emit = slice(emitted - store.start, emit_end - store.start)
        tracker_cls = store.get("tracker_logits", window).mean(0)
        if self.offline:
            (pred_cls, mask_logits), aux_cls = self._refine(store, window, emit), tracker_cls
        else:
            pred_cls, aux_cls, mask_logits = tracker_cls, None, store.get("mask_logits", emit).transpose(0, 1)
        panoptic = video_panoptic(
            pred_cls, mask_logits, geometry.padded_size, geometry.resized_size,
            geometry.original_size, self.model.config.num_thing_classes, aux_cls=aux_cls,
            object_mask_threshold=self.object_mask_threshold, overlap_threshold=self.overlap_threshold,
            device=self.device, max_chunk_bytes=self.memory_budget // 12, measured=measured,
        )
        for offset, (id_map, segments) in enumerate(panoptic):
            yield self._frame_result(emitted + offset, id_map, segments, tracks)
        keep_from = end - self.window_overlap if self.offline and not final else end
        store.drop_before(max(keep_from, store.start))

    def _refine(self, store: FrameStore, window: slice, emit: slice) -> tuple[torch.Tensor, LazyMaskLogits]:
        """Refiner over the whole window; returns its class logits (Q, K+1) and the emitted frames' masks,
        computed from the stored mask features when post-processing asks for a range of frames."""
        model = self.model
        with self._autocast():
            refined = model.refiner(store.get("tracker_embeds", window), store.get("refiner_memory", window))
        embeds = refined.pred_embds[emit]

        def mask_logits(frames: slice) -> torch.Tensor:
            features = store.get("mask_features", slice(emit.start + frames.start, emit.start + frames.stop))
            with self._autocast():  # called inside _finish_unit, so without autograd
                masks = model.refiner.predict_masks(embeds[frames], features, mask_device="cpu")
            return masks.transpose(0, 1)

        return refined.pred_logits.float().cpu(), LazyMaskLogits(embeds.shape[0], mask_logits)

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
            Segment(int(lookup[s.id]), int(label_to_category[s.label]), bool(s.isthing), float(s.score),
                    int(areas[s.id]))
            for s in segments
        ]
        return FrameResult(index, track_map, results)


def fuse_scales(
    primary: SegmenterOutput, resized_size: tuple[int, int],
    other: SegmenterOutput, other_resized_size: tuple[int, int],
) -> SegmenterOutput:
    """Test-time augmentation: fuse a segmenter pass at another scale into the primary one.

    Queries of the two passes are paired per frame by Hungarian matching on cosine similarity (the
    tracker's matching, aligning form) and averaged (DVIS++'s un-normalised queries with the same pairing),
    so the class and mask kernels the tracker and refiner derive from them see both scales. The other pass's
    mask features are resized onto the primary grid (content region only; the padding is cropped later anyway)
    and averaged. Mask logits are linear in the mask features, so this equals averaging the two scales' mask
    logits for the same kernels.
    """
    pairing = [torch.as_tensor(match_embeddings(a, b, official_matching=False), device=b.device)
               for a, b in zip(primary.pred_embds, other.pred_embds)]

    def fused(mine: torch.Tensor | None, theirs: torch.Tensor | None) -> torch.Tensor | None:
        if mine is None:
            return None
        aligned = torch.stack([frame[index] for frame, index in zip(theirs, pairing)])
        return (mine + aligned.to(mine.dtype)) / 2

    mask_features = primary.mask_features
    height, width = (-(-side // 4) for side in resized_size)  # content of the 1/4-resolution grid
    other_height, other_width = (-(-side // 4) for side in other_resized_size)
    resized = torch.nn.functional.interpolate(
        other.mask_features[..., :other_height, :other_width].float(), size=(height, width), mode="bilinear",
        align_corners=False,
    )
    fused_features = mask_features.clone()
    fused_features[..., :height, :width] = (mask_features[..., :height, :width] + resized.to(mask_features.dtype)) / 2
    return replace(primary, pred_embds=fused(primary.pred_embds, other.pred_embds), mask_features=fused_features,
                   pred_embds_without_norm=fused(primary.pred_embds_without_norm, other.pred_embds_without_norm))


def _frame_bytes(tensor: torch.Tensor) -> int:
    """Bytes one frame of a (T, ...) tensor takes."""
    return tensor[:1].numel() * tensor.element_size()


def _window_count(num_frames: int, unit: int, overlap: int) -> int:
    """How many units an offline run of ``num_frames`` frames refines (the rule ``VideoSegmenter._results`` follows)."""
    start = emitted = windows = 0
    while num_frames - start >= unit:
        windows += 1
        emitted, start = start + unit - overlap // 2, start + unit - overlap
    return windows + (num_frames > emitted)


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
        raise Cancelled("Inference was cancelled; results so far are kept, run again to finish.")
