"""What ``chunk_size`` (``dvis infer --chunk-size``) changes and what it does not, on the trained bundled model and a
generated video.

Online, a chunk is the official post-processing unit (DVIS ``demo_long_video.py --windows_size`` with ``keep=True``):
the tracker runs on uninterrupted, but each unit's classes (tracker logits averaged over the unit), score threshold
and overlap filter are decided over that unit's frames only, so the masks depend on it. Offline ignores it.
"""

import numpy as np
import pytest
import torch
from test_pipeline import id_bijection

from dvis_models import load_checkpoint
from dvis_models.data.synthetic import render_video, video_rng
from dvis_models.pipeline import TrackIdAssigner, VideoSegmenter
from dvis_models.postprocess import video_panoptic
from dvis_models.preprocess import prepare_frames
from dvis_models.resources import BUNDLED_CHECKPOINT
from dvis_models.types import FrameResult

torch.set_num_threads(1)
NUM_FRAMES = 12
SEGMENT_BATCH = 3  # the pipeline's default: the reference below segments in the same batches, so floats agree


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(BUNDLED_CHECKPOINT)


@pytest.fixture(scope="module")
def frames(model):
    categories = model.config.categories
    return render_video("v", video_rng(0, "val", 0), categories, (128, 160), NUM_FRAMES).frames


def run(model, frames, **options) -> list[FrameResult]:
    segmenter = VideoSegmenter(model, device="cpu", fp16=False, segment_batch=SEGMENT_BATCH, **options)
    return list(segmenter.run(iter(frames), num_frames=len(frames)))


def assert_identical(results_a: list[FrameResult], results_b: list[FrameResult]) -> None:
    for a, b in zip(results_a, results_b, strict=True):
        np.testing.assert_array_equal(a.track_map, b.track_map)
        assert a.segments == b.segments


@torch.no_grad()
def official_units(model, frames, unit: int) -> tuple[list[FrameResult], int]:
    """The official computation: ONE uninterrupted tracker run over the video, then ``inference_video_vps`` on each
    ``unit`` frames with the class logits averaged over those frames. Track ids: one per (slot, class) for things and
    per class for stuff. Also returns how many slots' decisions (kept or not, class) differ from a whole-video unit."""
    config = model.config
    model.tracker.reset()
    logits, masks = [], []
    for start in range(0, len(frames), SEGMENT_BATCH):
        prepared = prepare_frames(frames[start:start + SEGMENT_BATCH], config.test_short_edge, config.test_max_size)
        segmented = model.segment(prepared.images, with_masks=False)
        tracked = model.track(segmented, segmented.mask_features)
        logits.append(tracked.pred_logits)
        masks.append(tracked.pred_masks)
    model.tracker.reset()
    logits, masks = torch.cat(logits), torch.cat(masks)

    def decisions(unit_logits: torch.Tensor) -> list[int]:
        scores, labels = unit_logits.mean(0).softmax(-1).max(-1)
        return torch.where(scores > config.object_mask_threshold, labels, -1).tolist()

    tracks, results, changed = TrackIdAssigner(), [], 0
    whole = decisions(logits)
    for start in range(0, len(frames), unit):
        window = slice(start, start + unit)
        changed += sum(a != b for a, b in zip(decisions(logits[window]), whole, strict=True))
        panoptic = video_panoptic(logits[window].mean(0), masks[window].transpose(0, 1), prepared.padded_size,
                                  prepared.resized_size, prepared.original_size, config.num_thing_classes,
                                  object_mask_threshold=config.object_mask_threshold,
                                  overlap_threshold=config.overlap_threshold)
        for id_map, segments in panoptic:
            lookup = np.zeros(max((s.id for s in segments), default=0) + 1, np.int32)
            for segment in segments:
                lookup[segment.id] = tracks.track_id(segment)
            results.append(FrameResult(len(results), lookup[id_map]))
    return results, changed


def test_offline_results_do_not_depend_on_chunk_size(model, frames):
    assert_identical(run(model, frames, offline=True, chunk_size=1), run(model, frames, offline=True, chunk_size=16))


def test_online_chunk_sizes_from_the_video_length_up_give_the_official_whole_video_result(model, frames):
    whole = run(model, frames, offline=False, chunk_size=NUM_FRAMES)
    assert_identical(whole, run(model, frames, offline=False, chunk_size=4 * NUM_FRAMES))
    expected, _ = official_units(model, frames, NUM_FRAMES)
    assert sum(len(r.segments) for r in whole) > NUM_FRAMES  # objects were found
    id_bijection(whole, expected)


@pytest.mark.parametrize("chunk_size", [1, 4, 5])
def test_online_chunk_size_sets_only_the_official_post_processing_unit(model, frames, chunk_size):
    """Each unit equals the official post-processing of that unit over one uninterrupted tracker run, with the same
    track id wherever a slot keeps its class (so tracking itself does not depend on the chunk size)."""
    results = run(model, frames, offline=False, chunk_size=chunk_size)
    expected, changed = official_units(model, frames, chunk_size)
    assert changed > 0  # on this video the per-unit decisions differ from the whole video's: the test has teeth
    id_bijection(results, expected)  # the same partition of every frame and the same ids across units
