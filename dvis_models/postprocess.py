"""Video panoptic post-processing (DVIS ``inference_video_vps``), in two passes over frame chunks.

The official code upsamples every kept mask of the whole video to full resolution at once, a
(kept, T, H, W) float volume that grows with video length. Every decision it makes is either per pixel
(which slot wins a pixel) or a sum over all frames (a slot's areas), so a first pass that only accumulates the
per-slot areas and a second pass that paints frame chunks gives the identical result in bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dvis_models import transfer


@dataclass(frozen=True)
class PanopticSegment:
    """One video-level segment: ``id`` is its value in the id maps (1..N), ``slot`` the query it came from."""

    id: int
    slot: int
    label: int  # model label (things first)
    isthing: bool
    score: float


@dataclass(frozen=True)
class LazyMaskLogits:
    """Mask logits computed on demand a range of frames at a time, so a long unit never holds them all.

    ``frames(s)`` returns the (Q, t, h4, w4) logits of frames ``s`` (a contiguous slice of ``range(num_frames)``).
    """

    num_frames: int
    frames: Callable[[slice], torch.Tensor]


def fuse_class_probabilities(pred_cls: torch.Tensor, aux_cls: torch.Tensor | None) -> torch.Tensor:
    """Softmax class probabilities; offline DVIS takes the foreground max of refiner and tracker, no-object from the
    refiner."""
    probs = F.softmax(pred_cls.float(), dim=-1)
    if aux_cls is not None:
        aux = F.softmax(aux_cls.float(), dim=-1)
        probs = torch.cat([torch.maximum(probs[:, :-1], aux[:, :-1]), probs[:, -1:]], dim=-1)
    return probs


def _full_resolution_probs(
    mask_logits: torch.Tensor,
    padded_size: tuple[int, int],
    resized_size: tuple[int, int],
    original_size: tuple[int, int],
) -> torch.Tensor:
    """(K, t, h4, w4) logits -> (K, t, H, W) probabilities, in the official order: pad size, crop, sigmoid, resize."""
    masks = F.interpolate(mask_logits.float(), size=padded_size, mode="bilinear", align_corners=False)
    masks = masks[:, :, : resized_size[0], : resized_size[1]].sigmoid()
    return F.interpolate(masks, size=original_size, mode="bilinear", align_corners=False)


def _frame_chunks(num_frames: int, per_frame_bytes: int, max_chunk_bytes: int) -> Iterator[slice]:
    step = max(1, max_chunk_bytes // max(per_frame_bytes, 1))
    for start in range(0, num_frames, step):
        yield slice(start, min(start + step, num_frames))


def video_panoptic(
    pred_cls: torch.Tensor,
    mask_logits: torch.Tensor | LazyMaskLogits,
    padded_size: tuple[int, int],
    resized_size: tuple[int, int],
    original_size: tuple[int, int],
    num_thing_classes: int,
    aux_cls: torch.Tensor | None = None,
    object_mask_threshold: float = 0.8,
    overlap_threshold: float = 0.8,
    max_chunk_bytes: int = 256 * 2**20,
    measured: Callable[[int], None] | None = None,
    device: torch.device | str | None = None,
) -> Iterator[tuple[np.ndarray, list[PanopticSegment]]]:
    """Yield, per frame, an int32 (H, W) map of segment ids (0 = void) and the segments present in that frame.

    ``pred_cls`` (Q, K+1) are class logits, ``mask_logits`` (Q, T, h4, w4) mask logits at 1/4 of the padded input
    (or a ``LazyMaskLogits`` giving them a range of frames at a time). Segment ids are consistent over the T
    frames. Identical to the one-volume official computation. ``measured(n)`` is called as the first pass
    (which must see every frame before the first one is yielded) finishes each ``n`` more frames.
    The full-resolution work runs on ``device`` (default: where the mask logits are; the CPU for
    ``LazyMaskLogits``), one frame chunk of at most
    ``max_chunk_bytes`` at a time, so logits kept on the CPU are post-processed on the model's GPU.
    """
    num_classes = pred_cls.shape[-1] - 1
    scores, labels = fuse_class_probabilities(pred_cls, aux_cls).max(-1)
    kept = torch.nonzero((labels != num_classes) & (scores > object_mask_threshold)).flatten()
    lazy = isinstance(mask_logits, LazyMaskLogits)
    num_frames = mask_logits.num_frames if lazy else mask_logits.shape[1]
    kept_logits = None if lazy else mask_logits[transfer.to_device(kept, mask_logits.device)]
    device = torch.device(device) if device is not None else torch.device("cpu") if lazy else mask_logits.device

    def kept_frames(chunk: slice) -> torch.Tensor:
        """The kept slots' logits of frames ``chunk``, on ``device`` (copied there without blocking)."""
        if kept_logits is None:
            logits = mask_logits.frames(chunk)
            logits = logits[transfer.to_device(kept, logits.device)]
        else:
            logits = kept_logits[:, chunk]
        return transfer.to_device(logits, device)

    height, width = original_size
    if kept.numel() == 0:
        if measured is not None:
            measured(num_frames)
        for _ in range(num_frames):
            yield np.zeros((height, width), np.int32), []
        return

    chunks = list(_frame_chunks(num_frames, kept.numel() * height * width * 4, max_chunk_bytes))

    count = kept.numel()
    kept_scores = transfer.to_device(scores[kept], device).view(-1, 1, 1, 1)

    def winners(chunk: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per pixel: the winning slot (index into ``kept``), whether its own mask covers the pixel, and all
        probabilities."""
        probs = _full_resolution_probs(kept_frames(chunk), padded_size, resized_size, original_size)
        winner = (kept_scores * probs).argmax(0)
        covered = torch.gather(probs, 0, winner.unsqueeze(0)).squeeze(0) >= 0.5
        return winner, covered, probs

    def painted(winner: torch.Tensor, covered: torch.Tensor) -> torch.Tensor:
        """Index into ``segment_of_kept`` per pixel: the winner, or ``count`` (void) where it does not cover; on
        the device."""
        return torch.where(covered, winner, torch.full_like(winner, count)).to(torch.int16)

    # Pass 1: the three per-slot areas the official filter looks at, summed over the whole video. They stay on
    # ``device`` until the end (index_add_, unlike a boolean-mask index or a CUDA bincount, needs no host sync), so
    # a GPU is synchronised once per unit, not several times per chunk. The painted maps (2 bytes a pixel) are
    # kept while they fit the chunk budget, so pass 2 need not recompute them; they are copied to the host without
    # blocking, and the blocking read of the areas after the last chunk waits for those copies too (same stream).
    areas = torch.zeros(3, count, dtype=torch.long, device=device)  # won, final (won and covered), own (p >= 0.5)
    kept_maps: list[torch.Tensor] = []
    kept_bytes = 0
    for chunk in chunks:
        winner, covered, probs = winners(chunk)
        flat = winner.flatten()
        areas[0].index_add_(0, flat, torch.ones_like(flat))
        areas[1].index_add_(0, flat, covered.flatten().long())
        areas[2] += (probs >= 0.5).flatten(1).sum(1)
        kept_bytes += winner.numel() * 2
        if kept_bytes <= max_chunk_bytes:
            kept_maps.append(transfer.to_host(painted(winner, covered)))
        if measured is not None:
            measured(chunk.stop - chunk.start)
    won_area, final_area, own_area = areas.tolist()

    # Decide each kept slot's segment id (0 = dropped), merging later stuff slots of a class into the first.
    # Python ints and floats, as the official code's ``.item()`` values (the area ratio in float64).
    segment_of_kept = torch.zeros(count + 1, dtype=torch.int32)  # last entry: "not covered" -> void
    segments: list[PanopticSegment] = []
    stuff_segment: dict[int, int] = {}
    slot_labels, slot_scores = labels[kept].tolist(), scores[kept].tolist()
    for index, slot in enumerate(kept.tolist()):
        if min(won_area[index], own_area[index], final_area[index]) == 0:
            continue
        if won_area[index] / own_area[index] < overlap_threshold:
            continue
        label = slot_labels[index]
        isthing = label < num_thing_classes
        if not isthing and label in stuff_segment:
            segment_of_kept[index] = stuff_segment[label]
            continue
        segment_id = len(segments) + 1
        segments.append(PanopticSegment(segment_id, slot, label, isthing, slot_scores[index]))
        if not isthing:
            stuff_segment[label] = segment_id
        segment_of_kept[index] = segment_id

    # Pass 2: paint.
    for index, chunk in enumerate(chunks):
        slots = kept_maps[index] if index < len(kept_maps) else painted(*winners(chunk)[:2]).cpu()
        id_maps = segment_of_kept[slots.long()].numpy()
        for id_map in id_maps:
            present = np.bincount(id_map.ravel(), minlength=len(segments) + 1) > 0  # O(pixels), unlike np.unique's sort
            yield id_map, [segment for segment in segments if present[segment.id]]
