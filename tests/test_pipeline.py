"""VideoSegmenter end to end on the bundled architecture (random weights, a forced class so segments exist)."""

import numpy as np
import pytest
import torch

from dvis_models import build_model, frame_store, postprocess
from dvis_models.errors import Cancelled, DVISError
from dvis_models.pipeline import FINISHED, POSTPROCESSING, REFINING, SEGMENTING, TrackIdAssigner, VideoSegmenter
from dvis_models.postprocess import PanopticSegment, video_panoptic
from dvis_models.preprocess import prepare_frames

torch.set_num_threads(1)
PERSON_LABEL, PERSON_ID = 17, 60
SMALL = dict(short_edge=96, max_size=160)  # keep CPU tests fast


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = build_model("bundled_small")
    with torch.no_grad():  # every slot says "person" with certainty: segments exist, their masks come from the model
        model.tracker.class_embed.weight.zero_()
        model.tracker.class_embed.bias.zero_()
        model.tracker.class_embed.bias[PERSON_LABEL] = 20.0
    return model


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)
    return [np.roll(base, 3 * t, axis=1) for t in range(7)]  # a moving scene


def run(model, frames, device, progress=None, **options):
    options.setdefault("overlap_threshold", 0.0)
    options.update(SMALL)
    segmenter = VideoSegmenter(model, device=device, **options)
    return list(segmenter.run(iter(frames), num_frames=len(frames), progress=progress))


def id_bijection(results_a, results_b) -> dict[int, int]:
    """Map ids of run a to ids of run b; fails if the two runs partition any frame differently."""
    mapping: dict[int, int] = {}
    for a, b in zip(results_a, results_b, strict=True):
        pairs = set(zip(a.track_map.ravel().tolist(), b.track_map.ravel().tolist()))
        for id_a, id_b in pairs:
            assert mapping.setdefault(id_a, id_b) == id_b, "one id of run a covers two ids of run b"
    assert len(set(mapping.values())) == len(mapping), "two ids of run a are one id of run b"
    assert mapping.get(0, 0) == 0, "void must stay void"
    return mapping


def check_invariants(results, num_queries):
    category_of: dict[int, int] = {}
    for index, result in enumerate(results):
        assert result.index == index and result.track_map.dtype == np.int32
        ids = set(np.unique(result.track_map).tolist()) - {0}
        assert ids == {s.track_id for s in result.segments} and min(ids, default=1) >= 1
        for segment in result.segments:
            assert category_of.setdefault(segment.track_id, segment.category_id) == segment.category_id
            assert segment.area == int((result.track_map == segment.track_id).sum())
    assert 0 < len(category_of) <= num_queries  # one forced class: never more than one id per slot


def test_online_chunks_give_the_same_tracks_as_one_chunk(model, frames, device):
    whole = run(model, frames, device, offline=False, chunk_size=64)
    chunked = run(model, frames, device, offline=False, chunk_size=2)
    check_invariants(whole, model.config.num_queries)
    check_invariants(chunked, model.config.num_queries)
    mapping = id_bijection(whole, chunked)
    assert len(mapping) > 2 and all(s.category_id == PERSON_ID for r in chunked for s in r.segments)


def test_offline_whole_video_equals_the_official_computation(model, frames, device):
    results = run(model, frames, device, offline=True, fp16=False)
    config = model.config
    with torch.no_grad():
        prepared = prepare_frames(frames, SMALL["short_edge"], SMALL["max_size"], device=device)
        segmented = model.segment(prepared.images)
        model.tracker.reset()
        tracked = model.tracker(segmented.pred_embds)
        refined = model.refiner(tracked.pred_embds, model.tracker.frame_forward(segmented.pred_embds),
                                segmented.mask_features)
    expected = video_panoptic(refined.pred_logits, refined.pred_masks.transpose(0, 1), prepared.padded_size,
                              prepared.resized_size, prepared.original_size, config.num_thing_classes,
                              aux_cls=tracked.pred_logits.mean(0), overlap_threshold=0.0)
    expected_maps = [id_map for id_map, _ in expected]
    assert any(m.any() for m in expected_maps)
    for result, id_map in zip(results, expected_maps, strict=True):
        np.testing.assert_array_equal(result.track_map > 0, id_map > 0)
    id_bijection(results, [type(results[0])(i, m) for i, m in enumerate(expected_maps)])


def test_online_single_unit_equals_the_official_computation(model, frames, device):
    results = run(model, frames, device, offline=False, chunk_size=64, fp16=False)
    with torch.no_grad():
        prepared = prepare_frames(frames, SMALL["short_edge"], SMALL["max_size"], device=device)
        segmented = model.segment(prepared.images)
        model.tracker.reset()
        tracked = model.tracker(segmented.pred_embds, segmented.mask_features)
    expected = video_panoptic(tracked.pred_logits.mean(0), tracked.pred_masks.transpose(0, 1), prepared.padded_size,
                              prepared.resized_size, prepared.original_size, model.config.num_thing_classes,
                              overlap_threshold=0.0)
    expected_maps = [id_map for id_map, _ in expected]
    assert any(m.any() for m in expected_maps)
    id_bijection(results, [type(results[0])(i, m) for i, m in enumerate(expected_maps)])


def test_offline_windows_cover_every_frame_once_with_stable_ids(model, frames, device):
    results = run(model, frames, device, offline=True, memory_budget_mb=0, window_overlap=2)  # windows of 5 frames
    check_invariants(results, model.config.num_queries)


def test_progress_and_cancel(model, frames, device):
    finished = []
    segmenter = VideoSegmenter(model, device=device, offline=False, chunk_size=2, **SMALL)

    def progress(phase, done, total):
        if phase == FINISHED:
            finished.append((done, total))

    with pytest.raises(Cancelled):
        for _ in segmenter.run(frames, num_frames=7, progress=progress, cancel=lambda: len(finished) >= 3):
            pass
    assert finished == [(1, 7), (2, 7), (3, 7)]
    assert model.tracker._last_output is None  # the next video starts fresh even if nobody calls run() again

    abandoned = segmenter.run(frames)
    next(abandoned)
    assert model.tracker._last_output is not None
    abandoned.close()
    assert model.tracker._last_output is None


def phases(calls) -> list[tuple[str, int | None]]:
    """The phases in the order they were reported (consecutive repeats merged), with each run's last count."""
    merged: list[list] = []
    for phase, done, _total in calls:
        if merged and merged[-1][0] == phase:
            merged[-1][1] = done
        else:
            merged.append([phase, done])
    return [tuple(step) for step in merged]


def test_offline_progress_reports_every_phase_in_order(model, frames, device):
    calls = []
    results = run(model, frames, device, offline=True, progress=lambda *call: calls.append(call))
    assert len(results) == 7
    assert phases(calls) == [(SEGMENTING, 7), (REFINING, 1), (POSTPROCESSING, 7), (FINISHED, 7)]
    assert calls[0] == (SEGMENTING, 0, 7)  # shown from the start, before the first batch is done
    assert all(total == (1 if phase == REFINING else 7) for phase, _, total in calls)
    segmented = [done for phase, done, _ in calls if phase == SEGMENTING]
    assert segmented == sorted(segmented) and len(segmented) > 2

    calls.clear()
    run(model, frames, device, offline=True, memory_budget_mb=0, window_overlap=2,
        progress=lambda *call: calls.append(call))
    windows = [(done, total) for phase, done, total in calls if phase == REFINING]
    assert windows == [(1, 2), (2, 2)]  # 7 frames in windows of 5 overlapping by 2: frames 0-4, then 3-6
    assert [done for phase, done, _ in calls if phase == FINISHED] == list(range(1, 8))


def test_spilled_mask_features_give_identical_results(model, frames, device, tmp_path, monkeypatch):
    spill_files = []
    anonymous_file = frame_store.tempfile.TemporaryFile
    monkeypatch.setattr(frame_store.tempfile, "TemporaryFile",
                        lambda dir=None: spill_files.append(dir) or anonymous_file(dir=dir))
    in_memory = run(model, frames, device, offline=True)
    assert spill_files == []
    spilled = run(model, frames, device, offline=True, memory_budget_mb=1, spill_dir=tmp_path)  # 7 frames, 0.5 MB each
    assert spill_files == [tmp_path]  # one series: the mask features
    assert any(r.segments for r in in_memory)
    for a, b in zip(in_memory, spilled, strict=True):
        np.testing.assert_array_equal(a.track_map, b.track_map)
        assert a.segments == b.segments
    assert list(tmp_path.iterdir()) == []  # spill files are anonymous: nothing left behind


def test_frames_of_different_sizes_are_refused(model, frames, device):
    odd = np.zeros((40, 80, 3), np.uint8)
    for mixed in (frames[:3] + [odd], frames[:1] + [odd]):  # in a later batch, in the first batch
        with pytest.raises(DVISError, match="same size"):
            run(model, mixed, device, offline=False)


def test_track_ids_keep_one_category():
    tracks = TrackIdAssigner()
    person = tracks.track_id(PanopticSegment(1, slot=4, label=PERSON_LABEL, isthing=True, score=0.9))
    assert tracks.track_id(PanopticSegment(7, slot=4, label=PERSON_LABEL, isthing=True, score=0.8)) == person
    changed = tracks.track_id(PanopticSegment(1, slot=4, label=18, isthing=True, score=0.9))  # slot 4 became a cat
    assert changed != person
    wall = tracks.track_id(PanopticSegment(2, slot=1, label=58, isthing=False, score=0.9))
    assert tracks.track_id(PanopticSegment(3, slot=9, label=58, isthing=False, score=0.9)) == wall  # stuff: per class


def test_tta_with_the_same_scale_changes_nothing_and_two_scales_run(model, frames, device):
    plain = run(model, frames[:4], device, offline=True)
    same_scale = run(model, frames[:4], device, offline=True, tta_short_edges=(SMALL["short_edge"],))
    for a, b in zip(plain, same_scale, strict=True):
        np.testing.assert_array_equal(a.track_map, b.track_map)
    two_scales = run(model, frames[:4], device, offline=False, tta_short_edges=(128,))
    check_invariants(two_scales, model.config.num_queries)


def test_post_processing_runs_on_the_model_device(model, frames, device, monkeypatch):
    """Mask logits are kept on the CPU between frames; the full-resolution post-processing runs where the model does."""
    seen = []
    upsample = postprocess._full_resolution_probs

    def recording(mask_logits, *sizes):
        seen.append(mask_logits.device)
        return upsample(mask_logits, *sizes)

    monkeypatch.setattr(postprocess, "_full_resolution_probs", recording)
    for offline in (False, True):
        seen.clear()
        results = run(model, frames[:4], device, offline=offline)
        assert results and seen and all(d.type == device.type for d in seen)
        assert all(isinstance(r.track_map, np.ndarray) for r in results)  # the app gets numpy maps
