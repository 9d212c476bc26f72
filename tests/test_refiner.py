"""Temporal refiner: temporal conv semantics, video-level class, chunked masks, slot equivariance."""

from pathlib import Path

import torch

from dvis_models.refiner import TemporalRefiner, temporal_conv

torch.set_num_threads(1)


def small_refiner(mask_frame_chunk: int = 2) -> TemporalRefiner:
    torch.manual_seed(0)
    return TemporalRefiner(hidden_dim=32, num_classes=5, num_layers=2, nheads=4, dim_feedforward=64, mask_dim=32,
                           mask_frame_chunk=mask_frame_chunk).eval()


def test_temporal_conv_uses_replicate_padding_and_keeps_length():
    conv = temporal_conv(4)
    x = torch.randn(3, 4, 6)
    y = conv(x)
    assert y.shape == x.shape
    padded = torch.cat([x[..., :1]] * 2 + [x] + [x[..., -1:]] * 2, dim=-1)
    first = torch.relu(torch.nn.functional.conv1d(padded, conv[0].weight, conv[0].bias))
    first = torch.cat([first[..., :1], first, first[..., -1:]], dim=-1)
    torch.testing.assert_close(y, torch.nn.functional.conv1d(first, conv[2].weight, conv[2].bias))


def test_output_shapes_and_chunked_masks_equal_direct_einsum(device):
    refiner = small_refiner(mask_frame_chunk=2).to(device)
    instance, frames = torch.randn(5, 6, 32, device=device), torch.randn(5, 6, 32, device=device)
    features = torch.randn(5, 32, 4, 3)  # mask features may stay on the CPU; masks come back there
    with torch.no_grad():
        out = refiner(instance, frames, features, mask_device="cpu")
        direct = torch.einsum("tqc,tchw->tqhw", refiner.mask_embed(out.pred_embds).cpu(), features)
    assert out.pred_logits.shape == (6, 6)
    assert out.pred_masks.shape == (5, 6, 4, 3)
    torch.testing.assert_close(out.pred_masks, direct)


def test_class_is_softmax_weighted_over_time():
    refiner = small_refiner()
    normed = torch.randn(4, 3, 32)
    weights = torch.softmax(refiner.activation_proj(normed)[..., 0], dim=0)
    expected = refiner.class_embed(torch.einsum("tq,tqc->qc", weights, normed))
    torch.testing.assert_close(refiner.classify(normed), expected)


def test_slots_are_permutation_equivariant_and_single_frame_works():
    refiner = small_refiner()
    instance, frames = torch.randn(3, 6, 32), torch.randn(3, 6, 32)
    perm = torch.randperm(6)
    with torch.no_grad():
        a = refiner(instance, frames)
        b = refiner(instance[:, perm], frames[:, perm])
        single = refiner(instance[:1], frames[:1])
    torch.testing.assert_close(b.pred_logits, a.pred_logits[perm])
    assert single.pred_logits.shape == (6, 6) and torch.isfinite(single.pred_logits).all()


def test_temporal_context_changes_the_result():
    """The time attention and convolution see other frames: refining 3 frames != refining 1."""
    refiner = small_refiner()
    instance, frames = torch.randn(3, 6, 32), torch.randn(3, 6, 32)
    with torch.no_grad():
        whole = refiner(instance, frames).pred_embds[0]
        alone = refiner(instance[:1], frames[:1]).pred_embds[0]
    assert not torch.allclose(whole, alone, atol=1e-4)


def test_matches_the_official_refiner_outputs():
    """Fixture made by running the official DVIS TemporalRefiner (eval, windowed masks) on seeded weights."""
    data = torch.load(Path(__file__).parent / "data" / "dvis_official_tracker_refiner.pt", weights_only=True)
    refiner = TemporalRefiner(**data["config"]).eval()
    refiner.load_state_dict(data["refiner_state"])
    with torch.no_grad():
        out = refiner(data["tracker_embeds"], data["frame_forward"], data["mask_features"])
    torch.testing.assert_close(out.pred_logits, data["refiner_logits"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.pred_masks, data["refiner_masks"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.pred_embds, data["refiner_embeds"], atol=1e-5, rtol=1e-5)
