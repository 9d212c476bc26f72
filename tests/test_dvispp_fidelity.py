"""DVIS++ against the official implementation: segmenter (with the re-id branch), tracker, refiner, VPS output.

The fixtures were produced once by running the official code (DVIS_Plus @c0eb249, detectron2 @02b5c4e) on CPU in
float32, eval mode, with a small configuration of ``DVIS_Plus_{Online,Offline}_R50.yaml``: ResNet-50 layout with
narrow widths (stem 8, bottleneck 4, res2 16), pixel decoder width 32 with 2 encoder layers, 10 queries, hidden 32
(queries 64 wide with the re-id embedding), 4 heads, decoder FFN 40 and 3 layers, tracker and refiner 2 layers,
all 124 VIPSeg classes. Weights are not stored: both sides draw them from the key names with
``tests/seeded_weights.py`` (the stored checksum proves the same weights were drawn).
- ``dvispp_official_modules.pt``: the segmenter on 2 frames (backbone levels, mask features, logits, masks, both
  query embeddings); the tracker on 8 frames whose queries are permuted between frames (3-cycles: the aligning
  matching is exercised), run in windows of 3 with ``resume``; the refiner on the tracker's output.
- ``dvispp_official_vps.pt``: the whole official inference (``DVIS_Plus_online`` / ``DVIS_Plus_offline``
  ``forward`` with window inference and ``inference_video_vps``) on 7 frames of 48x64, with the object-mask
  threshold at 0 and the overlap threshold at 0.5 (random weights give low class scores): the id maps and
  segments (id, label, isthing, query).
The modules are compared at 1e-4 on the official inputs of each stage (the measured differences are 1e-7 to 1e-5;
the head is not fed our own backbone features because at this size the pixel decoder's GroupNorm normalises
channels over 4 pixels at 1/32, which turns 1e-7 differences into 2e-4); the VPS output must give the same segments,
the same void pixels and the same partition (up to near-tie pixels, at most 1 in 10,000).
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from seeded_weights import checksum, seeded_state

from dvis_models import build_model, preset_config
from dvis_models.pipeline import VideoSegmenter

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data"
TOLERANCE = dict(rtol=1e-4, atol=1e-4)


def tiny_model(mode: str, seed: int, gains: torch.Tensor, expected_checksum: torch.Tensor):
    config = replace(
        preset_config(f"dvispp_r50_vipseg_{mode}"), name=f"tiny_dvispp_{mode}", num_queries=10, hidden_dim=32,
        mask_dim=32, nheads=4, dim_feedforward=40, enc_layers=2, dec_layers=3, tracker_layers=2,
        refiner_layers=2 if mode == "offline" else 0,
        backbone_kwargs={"stem_channels": 8, "bottleneck_channels": 4, "res2_channels": 16},
    )
    model = build_model(config)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    state = seeded_state(shapes, int(seed), *gains.tolist())
    torch.testing.assert_close(checksum(state), expected_checksum, rtol=0, atol=0)  # the official weights
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def modules():
    data = torch.load(DATA / "dvispp_official_modules.pt", weights_only=True)
    return tiny_model("offline", data["seed"], data["gain"], data["checksum"]), data


def test_segmenter_with_reid_branch_matches_official(modules):
    model, data = modules
    frames = data["segmenter.frames"].permute(0, 3, 1, 2).float()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (model.config.pixel_mean, model.config.pixel_std))
    levels = ("res2", "res3", "res4", "res5")
    with torch.no_grad():
        features = model.backbone((frames - mean) / std)
        out = model.sem_seg_head({level: data[f"segmenter.{level}"] for level in levels})  # the official features
    for level in levels:
        torch.testing.assert_close(features[level], data[f"segmenter.{level}"], **TOLERANCE)
    torch.testing.assert_close(out.mask_features, data["segmenter.mask_features"], **TOLERANCE)
    torch.testing.assert_close(out.pred_logits, data["segmenter.pred_logits"], **TOLERANCE)
    torch.testing.assert_close(out.pred_masks, data["segmenter.pred_masks"], **TOLERANCE)
    assert out.pred_embds.shape == (2, 10, 64)  # [decoder_norm(query), re-id embedding]
    torch.testing.assert_close(out.pred_embds, data["segmenter.pred_embds"], **TOLERANCE)
    torch.testing.assert_close(out.pred_embds_without_norm, data["segmenter.pred_embds_without_norm"], **TOLERANCE)


def test_tracker_matches_official_across_chunks(modules):
    model, data = modules
    tracker = model.tracker
    embeds, raw = data["tracker.frame_embeds"], data["tracker.frame_embeds_no_norm"]
    features = data["tracker.mask_features"]
    tracker.reset()
    with torch.no_grad():  # chunks of 4, the official run used windows of 3: the carried state must not care
        parts = [tracker(embeds[i:i + 4], features[i:i + 4], frame_embeds_no_norm=raw[i:i + 4]) for i in (0, 4)]
    tracker.reset()
    indices = np.stack([index for part in parts for index in part.match_indices])
    np.testing.assert_array_equal(indices, data["tracker.indices"].numpy())
    assert any((p[p] != np.arange(len(p))).any() for p in indices), "fixture must have a non-involution matching"
    torch.testing.assert_close(torch.cat([p.pred_logits for p in parts]), data["tracker.pred_logits"], **TOLERANCE)
    torch.testing.assert_close(torch.cat([p.pred_masks for p in parts]), data["tracker.pred_masks"], **TOLERANCE)
    torch.testing.assert_close(torch.cat([p.pred_embds for p in parts]), data["tracker.pred_embds"], **TOLERANCE)


def test_refiner_matches_official(modules):
    model, data = modules
    with torch.no_grad():
        out = model.refiner(data["tracker.pred_embds"], data["tracker.frame_embeds_no_norm"],
                            data["tracker.mask_features"])
    torch.testing.assert_close(out.pred_logits, data["refiner.pred_logits"], **TOLERANCE)
    torch.testing.assert_close(out.pred_masks, data["refiner.pred_masks"], **TOLERANCE)
    torch.testing.assert_close(out.pred_embds, data["refiner.pred_embds"], **TOLERANCE)


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_video_panoptic_output_matches_official(mode):
    data = torch.load(DATA / "dvispp_official_vps.pt", weights_only=True)
    model = tiny_model(mode, data[f"{mode}.seed"], data["gain"], data[f"{mode}.checksum"])
    frames = list(data["frames"].numpy())
    object_threshold, overlap_threshold = data["thresholds"].tolist()
    segmenter = VideoSegmenter(model, device="cpu", chunk_size=64, fp16=False, short_edge=48,
                               object_mask_threshold=object_threshold, overlap_threshold=overlap_threshold)
    results = list(segmenter.run(iter(frames), num_frames=len(frames)))

    official_maps = data[f"{mode}.id_maps"].numpy().astype(np.int32)
    official = {int(i): (int(label), bool(isthing)) for i, label, isthing, _query in data[f"{mode}.segments"].tolist()}
    assert len(official) >= 3 and any(t for _, t in official.values()) and not all(t for _, t in official.values())
    ours = np.stack([result.track_map for result in results])
    np.testing.assert_array_equal(ours > 0, official_maps > 0)
    # Each official segment is one of our tracks. A pixel where two kept masks tie to ~1e-6 may go either way
    # (the online video has one such pixel out of 21504), so the pairing is taken by majority and stray pixels
    # are bounded.
    pairs, counts = np.unique(np.stack([official_maps.ravel(), ours.ravel()]), axis=1, return_counts=True)
    track_of = {}
    for (official_id, track_id), _count in sorted(zip(pairs.T.tolist(), counts.tolist()), key=lambda item: -item[1]):
        track_of.setdefault(official_id, track_id)
    assert sorted(track_of) == [0, *sorted(official)] and len(set(track_of.values())) == len(track_of)
    stray = int((np.vectorize(track_of.get)(official_maps) != ours).sum())
    assert stray <= official_maps.size // 10_000
    for result in results:
        for segment in result.segments:
            official_id = next(i for i, t in track_of.items() if t == segment.track_id)
            label, isthing = official[official_id]
            assert (segment.category_id, segment.isthing) == (model.config.label_to_category[label], isthing)


def test_test_time_scales_fuse_both_query_embeddings():
    """TTA pairs the other scale's queries once and averages both DVIS++ embeddings with that pairing."""
    data = torch.load(DATA / "dvispp_official_vps.pt", weights_only=True)
    model = tiny_model("offline", data["offline.seed"], data["gain"], data["offline.checksum"])
    frames = list(data["frames"].numpy()[:3])
    segmenter = VideoSegmenter(model, device="cpu", fp16=False, short_edge=48, tta_short_edges=(64,))
    results = list(segmenter.run(iter(frames), num_frames=len(frames)))
    assert [r.track_map.shape for r in results] == [(48, 64)] * 3

    from dvis_models.pipeline import fuse_scales
    with torch.no_grad():
        primary = model.segment(torch.randn(2, 3, 64, 64))
        other = model.segment(torch.randn(2, 3, 64, 64))
        swapped = replace(other, pred_embds=other.pred_embds.flip(1),
                          pred_embds_without_norm=other.pred_embds_without_norm.flip(1))
        fused = fuse_scales(primary, (64, 64), swapped, (64, 64))
        direct = fuse_scales(primary, (64, 64), other, (64, 64))
    torch.testing.assert_close(fused.pred_embds, direct.pred_embds)  # pairing undoes the query order
    torch.testing.assert_close(fused.pred_embds_without_norm, direct.pred_embds_without_norm)
    assert not torch.allclose(direct.pred_embds_without_norm, primary.pred_embds_without_norm)
