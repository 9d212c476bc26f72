"""Referring tracker: official pre-matching quirk, state across chunks, first-frame semantics."""

from pathlib import Path

import numpy as np
import torch

from dvis_models.tracker import ReferringTracker, match_embeddings

torch.set_num_threads(1)


def small_tracker(**kwargs) -> ReferringTracker:
    torch.manual_seed(0)
    return ReferringTracker(hidden_dim=32, num_classes=5, num_layers=2, nheads=4, dim_feedforward=64, mask_dim=32,
                            **kwargs).eval()


def test_three_cycle_official_gives_inverse_and_corrected_aligns():
    torch.manual_seed(1)
    reference = torch.randn(5, 16)
    perm = np.array([1, 2, 0, 3, 4])  # a 3-cycle on the first three slots
    current = reference[perm]  # current[j] is reference object perm[j]
    official = match_embeddings(reference, current, official_matching=True)
    corrected = match_embeddings(reference, current, official_matching=False)
    assert torch.equal(current[corrected], reference)
    np.testing.assert_array_equal(corrected, np.argsort(perm))
    np.testing.assert_array_equal(official, perm)  # the inverse of the aligning permutation
    assert not torch.equal(current[official], reference)


def test_swap_is_the_same_for_both_matchings():
    reference = torch.randn(4, 8)
    perm = np.array([1, 0, 3, 2])  # an involution: the quirk is invisible
    current = reference[perm]
    np.testing.assert_array_equal(match_embeddings(reference, current, True),
                                  match_embeddings(reference, current, False))


def test_chunked_calls_equal_one_call(device):
    tracker = small_tracker().to(device)
    embeds = torch.randn(7, 6, 32, device=device)
    features = torch.randn(7, 32, 4, 5, device=device)
    with torch.no_grad():
        whole = tracker(embeds, features)
        tracker.reset()
        parts = [tracker(embeds[a:b], features[a:b]) for a, b in ((0, 3), (3, 4), (4, 7))]
    torch.testing.assert_close(torch.cat([p.pred_logits for p in parts]), whole.pred_logits)
    torch.testing.assert_close(torch.cat([p.pred_masks for p in parts]), whole.pred_masks)
    torch.testing.assert_close(torch.cat([p.pred_embds for p in parts]), whole.pred_embds)
    assert whole.pred_logits.shape == (7, 6, 6) and whole.pred_masks.shape == (7, 6, 4, 5)


def test_reset_starts_a_new_video_and_first_frame_equals_frame_forward():
    tracker = small_tracker()
    embeds = torch.randn(3, 6, 32)
    with torch.no_grad():
        tracker(embeds)
        assert tracker._last_output is not None
        tracker.reset()
        first = tracker(embeds[1:2]).pred_embds
        per_frame = tracker.frame_forward(embeds)
    torch.testing.assert_close(first[0], per_frame[1])


def test_tracker_follows_a_permuted_object_into_its_slot():
    """Segmenter queries that swap order between frames stay in the same slot (with identical embeddings)."""
    tracker = small_tracker(official_matching=False)
    frame = torch.randn(6, 32)
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    with torch.no_grad():
        out = tracker(torch.stack([frame, frame[perm]]))
    np.testing.assert_array_equal(out.match_indices[1], np.argsort(perm.numpy()))
    torch.testing.assert_close(frame[perm][out.match_indices[1]], frame)  # RCA identity per slot = same object


def test_aux_outputs_when_asked():
    tracker = small_tracker()
    with torch.no_grad():
        out = tracker(torch.randn(2, 6, 32), torch.randn(2, 32, 3, 3), return_aux=True)
    assert len(out.aux_outputs) == 1
    assert out.aux_outputs[0]["pred_masks"].shape == (2, 6, 3, 3)


OFFICIAL = Path(__file__).parent / "data" / "dvis_official_tracker_refiner.pt"


def test_matches_the_official_tracker_outputs():
    """Fixture made by running the official DVIS ReferringTracker (windows of 3, resume) on seeded weights."""
    data = torch.load(OFFICIAL, weights_only=True)
    tracker = ReferringTracker(**data["config"]).eval()
    tracker.load_state_dict(data["tracker_state"])
    embeds, features = data["frame_embeds"], data["mask_features"]
    with torch.no_grad():
        parts = [tracker(embeds[i:i + 4], features[i:i + 4]) for i in range(0, len(embeds), 4)]  # other chunking
        frame_forward = tracker.frame_forward(embeds)
    permutations = [index for part in parts for index in part.match_indices]
    assert any((p[p] != np.arange(len(p))).any() for p in permutations), "fixture must exercise the inverse quirk"
    torch.testing.assert_close(torch.cat([p.pred_logits for p in parts]), data["tracker_logits"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([p.pred_masks for p in parts]), data["tracker_masks"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([p.pred_embds for p in parts]), data["tracker_embeds"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(frame_forward, data["frame_forward"], atol=1e-5, rtol=1e-5)


def test_matching_runs_in_float32_under_autocast():
    generator = torch.Generator().manual_seed(5)
    reference = torch.randn(30, 64, generator=generator)
    current = reference[torch.randperm(30, generator=generator)] + 0.3 * torch.randn(30, 64, generator=generator)
    expected = match_embeddings(reference, current)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # stands in for CUDA fp16: matmuls would run in half
        np.testing.assert_array_equal(match_embeddings(reference, current), expected)
