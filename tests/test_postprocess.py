"""The chunked two-pass post-processing must equal the straightforward one-volume computation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dvis_models.postprocess import video_panoptic


def one_volume_reference(pred_cls, masks, padded, resized, original, num_things, thr=0.8, overlap=0.8):
    """The official algorithm written plainly over the whole (kept, T, H, W) volume."""
    scores, labels = F.softmax(pred_cls, -1).max(-1)
    keep = (labels != pred_cls.shape[-1] - 1) & (scores > thr)
    scores, labels, masks = scores[keep], labels[keep], masks[keep]
    masks = F.interpolate(masks, size=padded, mode="bilinear", align_corners=False)
    masks = masks[:, :, : resized[0], : resized[1]].sigmoid()
    masks = F.interpolate(masks, size=original, mode="bilinear", align_corners=False)
    panoptic = torch.zeros((masks.shape[1], *original), dtype=torch.int32)
    segments = []
    if masks.shape[0] == 0:
        return panoptic, segments
    ids = (scores.view(-1, 1, 1, 1) * masks).argmax(0)
    stuff = {}
    for k in range(masks.shape[0]):
        label = int(labels[k])
        won = int((ids == k).sum())
        own = int((masks[k] >= 0.5).sum())
        mask = (ids == k) & (masks[k] >= 0.5)
        if won > 0 and own > 0 and int(mask.sum()) > 0:
            if won / own < overlap:
                continue
            if label >= num_things:
                if label in stuff:
                    panoptic[mask] = stuff[label]
                    continue
                stuff[label] = len(segments) + 1
            segments.append((len(segments) + 1, label))
            panoptic[mask] = len(segments)
    return panoptic, segments


def make_case(seed, queries=12, classes=6, frames=5):
    generator = torch.Generator().manual_seed(seed)
    pred_cls = torch.randn(queries, classes + 1, generator=generator) * 4
    pred_cls[: queries // 2, seed % classes] += 12  # confident slots, some sharing a (stuff) class
    masks = torch.randn(queries, frames, 6, 10, generator=generator) * 3
    return pred_cls, masks


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk_bytes", [1, 10_000, 2**30])
def test_chunked_equals_one_volume(seed, chunk_bytes, device):
    pred_cls, masks = make_case(seed)
    padded, resized, original = (24, 40), (21, 37), (30, 47)
    expected_maps, expected_segments = one_volume_reference(pred_cls, masks, padded, resized, original, num_things=3)
    results = list(video_panoptic(pred_cls.to(device), masks.to(device), padded, resized, original,
                                  num_thing_classes=3, max_chunk_bytes=chunk_bytes))
    assert len(results) == masks.shape[1]
    maps = np.stack([id_map for id_map, _ in results])
    np.testing.assert_array_equal(maps, expected_maps.numpy())
    seen = {segment.id: segment.label for _, frame_segments in results for segment in frame_segments}
    assert seen == {segment_id: label for segment_id, label in expected_segments if (maps == segment_id).any()}
    for id_map, frame_segments in results:
        assert {s.id for s in frame_segments} == set(np.unique(id_map).tolist()) - {0}


def test_stuff_slots_of_one_class_share_one_segment():
    pred_cls = torch.full((2, 4), -10.0)
    pred_cls[:, 2] = 10.0  # both slots: label 2, which is stuff when num_things = 2
    masks = torch.full((2, 1, 4, 4), -10.0)
    masks[0, 0, :, :2] = 10.0
    masks[1, 0, :, 2:] = 10.0
    (id_map, segments), = video_panoptic(pred_cls, masks, (16, 16), (16, 16), (16, 16), num_thing_classes=2)
    assert len(segments) == 1 and not segments[0].isthing and segments[0].slot == 0
    assert np.all(id_map == 1)


def test_offline_fusion_takes_foreground_max_of_tracker_and_refiner():
    pred_cls = torch.tensor([[0.0, 0.0, 3.0]])  # refiner: mostly "no object"
    aux_cls = torch.tensor([[9.0, 0.0, 0.0]])  # tracker: confident class 0
    masks = torch.full((1, 1, 4, 4), 10.0)
    (id_map, segments), = video_panoptic(pred_cls, masks, (16, 16), (16, 16), (8, 8), num_thing_classes=1,
                                         aux_cls=aux_cls)
    assert [s.label for s in segments] == [0] and segments[0].isthing
    assert np.all(id_map == 1)
    (id_map, segments), = video_panoptic(pred_cls, masks, (16, 16), (16, 16), (8, 8), num_thing_classes=1)
    assert segments == [] and not id_map.any()
