"""Mask2Former segmenter: official checkpoint layout, shapes, and the semantics that are easy to get wrong."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dvis_models.backbones import FrozenBatchNorm2d, ResNet50, SmallBackbone, SwinTransformer
from dvis_models.backbones.resnet import ConvNorm
from dvis_models.backbones.swin import SwinTransformerBlock, relative_position_index, shifted_window_mask
from dvis_models.mask_decoder import attention_mask_from_logits
from dvis_models.ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn_sample,
    ms_deform_attn_sample_gather,
    ms_deform_attn_sample_grid,
)
from dvis_models.pixel_decoder import FFN_CHUNK_TOKENS, MSDeformAttnEncoderLayer
from dvis_models.position_encoding import PositionEmbeddingSine
from dvis_models.segmenter_head import SegmenterOutput, build_maskformer_head

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
KEYS_DIR = REPO / "tests" / "data" / "checkpoint_keys"


def _load_reference():
    """The straightforward MSDeformAttn formulation lives in the benchmark script (one copy only)."""
    spec = importlib.util.spec_from_file_location("bench_ms_deform_attn",
                                                  REPO / "benchmarks" / "bench_ms_deform_attn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_ms_deform_attn_sample


reference_ms_deform_attn_sample = _load_reference()


class Segmenter(nn.Module):
    """Just the two official top-level prefixes."""

    def __init__(self, backbone: nn.Module, sem_seg_head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head


def official_segmenter_keys(tsv_name: str) -> list[tuple[str, tuple[int, ...], str]]:
    rows = []
    for line in (KEYS_DIR / tsv_name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split("\t")
        if key.startswith(("backbone.", "sem_seg_head.")):
            rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype))
    return rows


def our_keys(model: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    return [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]


@pytest.mark.parametrize(
    ("tsv_name", "make_backbone", "num_queries"),
    [("dvis_online_r50_vipseg.tsv", ResNet50, 100), ("dvis_online_swinl_vipseg.tsv", SwinTransformer, 200)],
)
def test_state_dict_matches_official_keys_shapes_dtypes_and_order(tsv_name, make_backbone, num_queries):
    with torch.device("meta"):  # Swin-L has ~200M parameters: no memory, no init time
        backbone = make_backbone()
        model = Segmenter(backbone, build_maskformer_head(backbone.out_channels, num_classes=124,
                                                          num_queries=num_queries))
    assert our_keys(model) == official_segmenter_keys(tsv_name)


def test_r50_and_small_segmenters_forward_shapes():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 96)
    configs = [
        (ResNet50(), {}),
        (SmallBackbone(), dict(hidden_dim=64, enc_layers=2, dec_layers=3, nheads=4, dim_feedforward=128,
                               enc_dim_feedforward=128, mask_dim=64, norm_groups=8)),
    ]
    for backbone, head_kwargs in configs:
        head = build_maskformer_head(backbone.out_channels, num_classes=124, num_queries=10, **head_kwargs).eval()
        with torch.no_grad():
            features = backbone.eval()(images)
            assert [tuple(features[f"res{i}"].shape[-2:]) for i in (2, 3, 4, 5)] == [(16, 24), (8, 12), (4, 6), (2, 3)]
            out = head(features)
        dim = head_kwargs.get("hidden_dim", 256)
        assert isinstance(out, SegmenterOutput)
        assert out.pred_logits.shape == (2, 10, 125)
        assert out.pred_masks.shape == (2, 10, 16, 24)
        assert out.pred_embds.shape == (2, 10, dim)
        assert out.mask_features.shape == (2, dim, 16, 24)
        assert out.aux_outputs == []
        assert all(torch.isfinite(t).all() for t in (out.pred_logits, out.pred_masks, out.pred_embds))


AUTOCAST_DTYPE = {"cpu": torch.bfloat16, "cuda": torch.float16}  # what inference autocasts to on each device


def small_head(dec_layers: int = 3):
    torch.manual_seed(0)
    backbone = SmallBackbone(channels=(16, 32, 64, 128), blocks=(1, 1, 1, 1), norm_groups=8)
    head = build_maskformer_head(backbone.out_channels, num_classes=7, num_queries=12, hidden_dim=32, enc_layers=1,
                                 dec_layers=dec_layers, nheads=4, dim_feedforward=64, enc_dim_feedforward=64,
                                 mask_dim=32, norm_groups=8)
    return backbone.eval(), head.eval()


def test_fast_attention_masks_equal_deep_supervision_path(device):
    backbone, head = (module.to(device) for module in small_head(dec_layers=6))
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 96, 128, device=device))
        fast = head(features)
        full = head(features, return_aux=True)
    assert len(full.aux_outputs) == 6  # learnable queries + layers 0..4; the last layer is the main output
    assert full.aux_outputs[0]["pred_masks"].shape == full.pred_masks.shape
    # The attention masks really restrict something, so the equality below is not vacuous.
    blocked = attention_mask_from_logits(F.interpolate(full.aux_outputs[1]["pred_masks"], size=(6, 8),
                                                       mode="bilinear", align_corners=False), 4)
    assert 0 < blocked.float().mean() < 1
    torch.testing.assert_close(fast.pred_masks, full.pred_masks, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.pred_logits, full.pred_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.pred_embds, full.pred_embds, rtol=1e-4, atol=1e-4)


def test_decoder_layers_visit_levels_coarse_to_fine_in_turn():
    backbone, head = small_head(dec_layers=6)
    seen = []
    for layer in head.predictor.transformer_cross_attention_layers:
        layer.register_forward_hook(lambda mod, args, kwargs, out: seen.append(args[1].shape[0]), with_kwargs=True)
    with torch.no_grad():
        head(backbone(torch.randn(1, 3, 64, 96)))
    sizes = [2 * 3, 4 * 6, 8 * 12]  # 1/32, 1/16, 1/8 of 64x96
    assert seen == sizes + sizes


def test_training_mode_fills_aux_outputs_and_backpropagates():
    backbone, head = small_head(dec_layers=2)
    head.train()
    out = head(backbone(torch.randn(1, 3, 64, 64)))
    assert len(out.aux_outputs) == 2
    (out.pred_masks.mean() + out.pred_logits.mean()).backward()
    assert head.predictor.query_feat.weight.grad is not None
    assert head.pixel_decoder.transformer.encoder.layers[0].self_attn.sampling_offsets.weight.grad.abs().sum() > 0


def test_attention_mask_rule_blocks_low_probability_and_unblocks_empty_rows():
    logits = torch.tensor([[[[-1.0, 2.0], [0.5, -3.0]],    # query 0: two pixels allowed
                            [[-1.0, -2.0], [-0.5, -3.0]]]])  # query 1: nothing allowed -> everything allowed
    mask = attention_mask_from_logits(logits, num_heads=3)
    assert mask.dtype == torch.bool and mask.shape == (3, 2, 4)
    for head in range(3):  # same mask for every head (batch-major, heads inner, as nn.MultiheadAttention wants)
        assert mask[head, 0].tolist() == [True, False, False, True]
        assert mask[head, 1].tolist() == [False, False, False, False]


def test_pixel_decoder_stays_float32_under_autocast(device):
    backbone, head = (module.to(device) for module in small_head())
    with torch.no_grad(), torch.autocast(device.type, dtype=AUTOCAST_DTYPE[device.type]):
        mask_features, maps = head.pixel_decoder(backbone(torch.randn(1, 3, 64, 64, device=device)))
    assert mask_features.dtype == torch.float32 and all(m.dtype == torch.float32 for m in maps)


@pytest.mark.parametrize("sampler", [ms_deform_attn_sample, ms_deform_attn_sample_grid, ms_deform_attn_sample_gather])
@pytest.mark.parametrize("frames", [1, 2])
def test_ms_deform_attn_sampling_equals_straightforward_formulation(frames, sampler, device):
    gen = torch.Generator().manual_seed(frames)
    shapes = [(7, 9), (4, 5), (2, 3)]
    total = sum(h * w for h, w in shapes)
    value = torch.randn(frames, total, 4, 8, generator=gen)
    locations = torch.rand(frames, 11, 4, 3, 5, 2, generator=gen) * 1.4 - 0.2  # some outside the map
    weights = torch.rand(frames, 11, 4, 3, 5, generator=gen)
    value, locations, weights = (tensor.to(device) for tensor in (value, locations, weights))
    fast = sampler(value, shapes, locations, weights)
    assert fast.shape == (frames, 11, 32)
    torch.testing.assert_close(fast, reference_ms_deform_attn_sample(value, shapes, locations, weights),
                               rtol=1e-5, atol=1e-5)


def test_gather_sampling_equals_grid_sample_at_borders_and_far_outside():
    """The gather formulation's clamped coordinates and zero border reproduce grid_sample's zero padding wherever
    a point lands: on pixel centres and edges, half outside, on the last row/column, and far outside."""
    shapes = [(5, 7), (3, 4)]
    gen = torch.Generator().manual_seed(3)
    value = torch.randn(2, 35 + 12, 2, 4, generator=gen)
    edges = torch.tensor([-3.0, -1.0, -0.6, -0.5, -0.25, 0.0, 0.5, 1.0, 2.0, 5.5, 6.0, 6.5, 6.75, 7.0, 7.5, 20.0])
    x, y = torch.meshgrid(edges, edges, indexing="ij")  # pixel coordinates on the 7x5 level, reused on the 4x3 one
    size = torch.tensor([[7.0, 5.0], [4.0, 3.0]])
    locations = (torch.stack((x.reshape(-1), y.reshape(-1)), -1)[:, None, :] + 0.5) / size  # (Q, L, 2)
    q = locations.shape[0]
    locations = locations.view(1, q, 1, 2, 1, 2).expand(2, q, 2, 2, 3, 2).clone()
    locations[..., 1:, :] += torch.rand(2, q, 2, 2, 2, 2, generator=gen) * 0.1  # and near them
    weights = torch.rand(2, q, 2, 2, 3, generator=gen)
    torch.testing.assert_close(ms_deform_attn_sample_gather(value, shapes, locations, weights),
                               ms_deform_attn_sample_grid(value, shapes, locations, weights), rtol=1e-5, atol=1e-6)


def test_gather_sampling_gradients_equal_grid_sample_gradients():
    """Training on the CPU backpropagates through the gather formulation: same gradients as grid_sample's."""
    gen = torch.Generator().manual_seed(5)
    shapes = [(6, 8), (3, 4)]
    inputs = (torch.randn(2, 60, 2, 4, generator=gen), torch.rand(2, 9, 2, 2, 3, 2, generator=gen) * 1.2 - 0.1,
              torch.rand(2, 9, 2, 2, 3, generator=gen))
    grads = {}
    for sampler in (ms_deform_attn_sample_grid, ms_deform_attn_sample_gather):
        leaves = [tensor.clone().requires_grad_() for tensor in inputs]
        (sampler(leaves[0], shapes, leaves[1], leaves[2]) ** 2).sum().backward()
        grads[sampler] = [leaf.grad for leaf in leaves]
    for grid_grad, gather_grad in zip(*grads.values()):
        torch.testing.assert_close(gather_grad, grid_grad, rtol=1e-4, atol=1e-4)


def test_encoder_layer_ffn_in_token_chunks_equals_the_whole_ffn():
    """The encoder's FFN runs in chunks of FFN_CHUNK_TOKENS tokens: same output and gradients as in one piece."""
    torch.manual_seed(0)
    layer = MSDeformAttnEncoderLayer(d_model=16, dim_feedforward=24, n_levels=2, n_heads=2, n_points=2)
    shapes = [(50, 60), (25, 30)]
    tokens = 50 * 60 + 25 * 30
    assert 2 * tokens > FFN_CHUNK_TOKENS  # two frames span several chunks, one chunk straddling them
    src, pos = torch.randn(2, tokens, 16, requires_grad=True), torch.randn(2, tokens, 16)
    refs = torch.rand(2, tokens, 2, 2)
    out = layer(src, pos, refs, shapes)
    attn = layer.self_attn(src + pos, refs, src, shapes)
    mid = layer.norm1(src + attn)
    expected = layer.norm2(mid + layer.linear2(F.relu(layer.linear1(mid))))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    grad, = torch.autograd.grad(out.square().sum(), src)
    expected_grad, = torch.autograd.grad(expected.square().sum(), src)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-5)


def test_ms_deform_attn_module_offsets_are_in_level_pixels():
    torch.manual_seed(0)
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=2, n_points=1)
    shapes = [(4, 6), (2, 3)]
    source = torch.randn(1, 24 + 6, 16)
    query = torch.randn(1, 5, 16)
    refs = torch.rand(1, 5, 2, 2)
    out = attn(query, refs, source, shapes)
    # Recompute by hand: offsets divided by (W, H) of each level, softmax over levels*points.
    offsets = attn.sampling_offsets(query).view(1, 5, 2, 2, 1, 2)
    weights = attn.attention_weights(query).view(1, 5, 2, 2).softmax(-1).view(1, 5, 2, 2, 1)
    norm = torch.tensor([[6.0, 4.0], [3.0, 2.0]]).view(1, 1, 1, 2, 1, 2)
    locations = refs[:, :, None, :, None, :] + offsets / norm
    value = attn.value_proj(source).view(1, 30, 2, 8)
    expected = attn.output_proj(reference_ms_deform_attn_sample(value, shapes, locations, weights))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_ms_deform_attn_initial_offsets_point_along_head_directions():
    attn = MSDeformAttn(d_model=16, n_levels=2, n_heads=4, n_points=3)
    grid = attn.sampling_offsets.bias.view(4, 2, 3, 2)
    torch.testing.assert_close(grid[0, 1, :, :], torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]))  # head 0 → +x
    torch.testing.assert_close(grid[1, 0, 2, :], torch.tensor([0.0, 3.0]), atol=1e-6, rtol=0)  # head 1 → +y


def test_frozen_batchnorm_formula_and_buffers():
    bn = FrozenBatchNorm2d(3)
    assert [name for name, _ in bn.named_buffers()] == ["weight", "bias", "running_mean", "running_var"]
    assert list(bn.parameters()) == []
    bn.weight.copy_(torch.tensor([1.0, 2.0, -0.5]))
    bn.bias.copy_(torch.tensor([0.0, 1.0, 3.0]))
    bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    x = torch.randn(2, 3, 4, 5)
    expected = torch.empty_like(x)
    for c in range(3):
        scale = bn.weight[c] / math.sqrt(bn.running_var[c] + 1e-5)
        expected[:, c] = x[:, c] * scale + (bn.bias[c] - bn.running_mean[c] * scale)
    torch.testing.assert_close(bn(x), expected)
    bn.train()  # frozen: training mode changes nothing
    torch.testing.assert_close(bn(x), expected)


def test_conv_with_folded_frozen_batchnorm_equals_conv_then_batchnorm():
    torch.manual_seed(0)
    conv = ConvNorm(4, 6, 3, stride=2)
    conv.norm.weight.uniform_(0.5, 2.0)
    conv.norm.bias.normal_()
    conv.norm.running_mean.normal_()
    conv.norm.running_var.uniform_(0.1, 3.0)
    x = torch.randn(2, 4, 9, 11)
    expected = conv.norm(F.conv2d(x, conv.weight, None, stride=2, padding=1))
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_position_encoding_matches_cumsum_definition():
    pe = PositionEmbeddingSine(8)
    pos = pe(torch.zeros(2, 5, 3, 4))
    assert pos.shape == (2, 16, 3, 4)
    y = torch.arange(1, 4, dtype=torch.float32) / (3 + 1e-6) * 2 * math.pi
    x = torch.arange(1, 5, dtype=torch.float32) / (4 + 1e-6) * 2 * math.pi
    dim_t = 10000 ** (2 * (torch.arange(8) // 2) / 8)
    # channel 2k is sin, 2k+1 is cos, first the y half then the x half
    torch.testing.assert_close(pos[0, 2, :, 0], torch.sin(y / dim_t[2]))
    torch.testing.assert_close(pos[0, 3, :, 0], torch.cos(y / dim_t[3]))
    torch.testing.assert_close(pos[1, 8 + 4, 0, :], torch.sin(x / dim_t[4]))
    torch.testing.assert_close(pos[1, 8 + 7, 2, :], torch.cos(x / dim_t[7]))


def test_swin_relative_position_index_and_shift_mask():
    index = relative_position_index(3)
    assert index.dtype == torch.int64 and index.shape == (9, 9)
    assert int(index.min()) == 0 and int(index.max()) == 24
    assert torch.all(index.diagonal() == 12)  # zero offset is the centre of the 5x5 table
    assert int(index[0, 8]) == 0 and int(index[8, 0]) == 24  # offsets (-2,-2) and (+2,+2)
    mask = shifted_window_mask(8, 8, 4, 2, torch.device("cpu"))
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # the top-left window holds a single region
    assert set(mask.unique().tolist()) == {0.0, -100.0}


@pytest.mark.parametrize("shift", [0, 2])
def test_swin_block_attention_stays_inside_its_window_region(shift):
    torch.manual_seed(0)
    block = SwinTransformerBlock(dim=8, num_heads=2, window=4, shift=shift, mlp_ratio=2.0, drop_path=0.0).eval()
    h = w = 8
    x = torch.randn(1, h * w, 8)
    mask = shifted_window_mask(h, w, 4, 2, torch.device("cpu"))
    y = x.clone()
    y[0, 0] += torch.randn(8)  # perturb the top-left token (not by a constant: LayerNorm would remove it)
    with torch.no_grad():
        changed = (block(x, h, w, mask) - block(y, h, w, mask)).abs().amax(-1).view(h, w) > 1e-6
    expected = torch.zeros(h, w, dtype=torch.bool)
    if shift:
        expected[:2, :2] = True  # wraps to the bottom-right shifted window, masked to its own 2x2 region
    else:
        expected[:4, :4] = True  # its 4x4 window
    assert torch.equal(changed, expected)


def test_swin_handles_sizes_that_are_not_window_multiples():
    torch.manual_seed(0)
    swin = SwinTransformer(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7).eval()
    with torch.no_grad():
        out = swin(torch.randn(1, 3, 70, 100))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "res2": (1, 16, 18, 25), "res3": (1, 32, 9, 13), "res4": (1, 64, 5, 7), "res5": (1, 128, 3, 4)}
    assert swin.out_channels == {"res2": 16, "res3": 32, "res4": 64, "res5": 128}


def test_small_backbone_rejects_groups_that_do_not_divide_widths():
    with pytest.raises(ValueError, match="norm_groups"):
        SmallBackbone(channels=(24, 48, 96, 192), norm_groups=16)


def test_swin_segmenter_runs_under_autocast(device):
    torch.manual_seed(0)
    swin = SwinTransformer(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7).eval()
    head = build_maskformer_head(swin.out_channels, num_classes=5, num_queries=6, hidden_dim=32, enc_layers=1,
                                 dec_layers=3, nheads=4, dim_feedforward=32, enc_dim_feedforward=32,
                                 mask_dim=32).eval()
    swin, head = swin.to(device), head.to(device)
    with torch.no_grad(), torch.autocast(device.type, dtype=AUTOCAST_DTYPE[device.type]):
        out = head(swin(torch.randn(1, 3, 70, 100, device=device)))
    assert out.mask_features.dtype == torch.float32  # pixel decoder stays float32
    assert out.pred_masks.shape == (1, 6, 18, 25) and torch.isfinite(out.pred_masks.float()).all()
