"""Checkpoint loading: official layout, Mask2Former .pkl init, our own files, and refusing unsafe or wrong files."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_presets import official_shapes

from dvis_models import build_model, load_checkpoint, save_checkpoint
from dvis_models.checkpoint import FORMAT, infer_config, init_segmenter_from, read_checkpoint
from dvis_models.errors import CheckpointError
from dvis_models.pipeline import VideoSegmenter

torch.set_num_threads(1)


def random_official_state(reference: str) -> dict[str, torch.Tensor]:
    """Random tensors for every key of an official key list (not built from our model), legacy refiner prefix."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in official_shapes(reference).items():
        positive = key.endswith(("norm.weight", "running_var"))  # scales and variances stay > 0
        if positive:
            value = torch.rand(shape, generator=generator) * 0.5 + 0.5
        else:
            value = torch.randn(shape, generator=generator) * 0.05
        state[key.replace("refiner.", "offline_tracker.", 1)] = value
    state["criterion.empty_weight"] = torch.ones(125)
    return state


@pytest.fixture(scope="module")
def official_offline_r50(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "DVIS_offline_vipseg_r50.pth"
    torch.save({"model": random_official_state("dvis_offline_r50_vipseg"), "iteration": 20000}, path)
    return str(path)


def test_official_layout_loads_and_runs_end_to_end(official_offline_r50, device):
    model = load_checkpoint(official_offline_r50)
    assert model.config.backbone == "resnet50" and model.config.mode == "offline"
    assert model.config.num_queries == 100
    file_state = torch.load(official_offline_r50, weights_only=True)["model"]
    torch.testing.assert_close(model.refiner.activation_proj.weight,
                               file_state["offline_tracker.activation_proj.weight"])
    torch.testing.assert_close(model.backbone.stem.conv1.norm.running_var,
                               file_state["backbone.stem.conv1.norm.running_var"])

    assert_runs_on_a_tiny_video(model, device)


def assert_runs_on_a_tiny_video(model, device) -> None:
    """VideoSegmenter on 3 random frames gives one consistent result per frame, with some segments."""
    frames = [np.random.default_rng(i).integers(0, 255, (40, 56, 3), dtype=np.uint8) for i in range(3)]
    segmenter = VideoSegmenter(model, device=device, short_edge=64, max_size=96,
                               object_mask_threshold=0.0, overlap_threshold=0.0)
    results = list(segmenter.run(frames, num_frames=3))
    assert [r.index for r in results] == [0, 1, 2]
    for result in results:
        assert result.track_map.shape == (40, 56) and result.track_map.dtype == np.int32
        assert set(np.unique(result.track_map)) - {0} == {s.track_id for s in result.segments}
    assert any(r.segments for r in results)


def official_dvispp(tmp_path, mode: str):
    """A DVIS++ checkpoint file with the official key names (from the official code's key list) and random values."""
    path = tmp_path / f"DVIS_Plus_{mode}_vipseg_r50.pth"
    torch.save({"model": random_official_state(f"dvispp_{mode}_r50_vipseg"), "iteration": 20000}, path)
    model = load_checkpoint(path)
    assert (model.config.name, model.config.family, model.config.mode) == (f"dvispp_r50_vipseg_{mode}", "DVIS++", mode)
    file_state = torch.load(path, weights_only=True)["model"]
    torch.testing.assert_close(model.tracker.ref_proj.layers[0].weight, file_state["tracker.ref_proj.layers.0.weight"])
    torch.testing.assert_close(model.sem_seg_head.predictor.reid_embed.layers[2].bias,
                               file_state["sem_seg_head.predictor.reid_embed.layers.2.bias"])
    return model


def test_official_dvispp_online_layout_is_recognised(tmp_path):
    assert official_dvispp(tmp_path, "online").refiner is None


def test_official_dvispp_offline_layout_loads_and_runs_like_dvis(tmp_path):
    model = official_dvispp(tmp_path, "offline")
    assert_runs_on_a_tiny_video(model, "cpu")


def test_unsupported_dvispp_backbones_are_named(tmp_path):
    state = random_official_state("dvispp_online_r50_vipseg")
    vit = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    vit["backbone.interactions.0.injector.gamma"] = torch.ones(1024)
    with pytest.raises(CheckpointError, match="ViT-Adapter"):
        infer_config(vit, "vit.pth")
    swin = {**vit, "backbone.patch_embed.proj.weight": torch.ones(1),
            "backbone.layers.0.blocks.0.norm1.weight": torch.ones(1)}
    del swin["backbone.interactions.0.injector.gamma"]
    with pytest.raises(CheckpointError, match="DVIS\\+\\+ checkpoint with a swinl backbone"):
        infer_config(swin, "swin.pth")


def test_bare_state_dict_without_model_key_is_read(tmp_path):
    state = {"backbone.stem.conv1.weight": torch.ones(2), "offline_tracker.class_embed.bias": torch.zeros(3),
             "criterion.empty_weight": torch.ones(125)}
    torch.save(state, tmp_path / "bare.pth")
    read, config = read_checkpoint(tmp_path / "bare.pth")
    assert config is None
    assert set(read) == {"backbone.stem.conv1.weight", "refiner.class_embed.bias"}


def test_malicious_pickles_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for name in ("evil.pkl", "evil.pth"):
        path = tmp_path / name
        if name.endswith(".pth"):
            torch.save({"model": {"x": Exploit()}}, path)
        else:
            path.write_bytes(pickle.dumps({"model": {"x": Exploit()}}))
        with pytest.raises(CheckpointError, match="code|nothing in them is executed"):
            read_checkpoint(path)
        assert not marker.exists()


def test_wrong_shape_names_the_key_and_both_shapes(tmp_path):
    model = build_model("bundled_small")
    state = model.state_dict()
    state["tracker.class_embed.weight"] = torch.zeros(10, 128)
    torch.save({"format": FORMAT, "version": 1, "config": model.config.to_dict(), "state_dict": state},
               tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / "bad.pth")
    message = str(error.value)
    assert "tracker.class_embed.weight" in message and "(10, 128)" in message and "(125, 128)" in message


def test_own_format_round_trip(tmp_path):
    torch.manual_seed(3)
    model = build_model("bundled_small")
    save_checkpoint(model, tmp_path / "sub" / "mine.pth")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["mine.pth"]  # no temp file left behind
    loaded = load_checkpoint(tmp_path / "sub" / "mine.pth")
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    save_checkpoint(model, tmp_path / "half.pth", half=True)
    assert (tmp_path / "half.pth").stat().st_size < 0.6 * (tmp_path / "sub" / "mine.pth").stat().st_size
    halved = load_checkpoint(tmp_path / "half.pth")
    weight = "tracker.class_embed.weight"
    assert halved.state_dict()[weight].dtype == torch.float32
    torch.testing.assert_close(halved.state_dict()[weight], model.state_dict()[weight], atol=1e-3, rtol=1e-3)


def test_segmenter_only_and_garbage_files_are_explained(tmp_path):
    segmenter_only = {k: v for k, v in random_official_state("dvis_online_r50_vipseg").items()
                      if not k.startswith("tracker.")}
    torch.save({"model": segmenter_only}, tmp_path / "minvis.pth")
    with pytest.raises(CheckpointError, match="MinVIS"):
        load_checkpoint(tmp_path / "minvis.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_checkpoint(tmp_path / "junk.pth")


def test_mask2former_pkl_initialises_segmenter_and_skips_class_head(tmp_path):
    model = build_model("bundled_small")
    state = model.state_dict()
    query = np.random.default_rng(0).standard_normal(tuple(state["sem_seg_head.predictor.query_feat.weight"].shape))
    weights = {
        "sem_seg_head.predictor.query_feat.weight": query.astype(np.float32),
        "sem_seg_head.predictor.class_embed.weight": np.zeros((81, 128), np.float32),  # COCO head
    }
    (tmp_path / "model_final.pkl").write_bytes(pickle.dumps({"model": weights, "__author__": "test"}))
    report = init_segmenter_from(model, tmp_path / "model_final.pkl")
    np.testing.assert_allclose(model.sem_seg_head.predictor.query_feat.weight.detach().numpy(), query, rtol=1e-6)
    assert any("class_embed.weight" in note and "(81, 128)" in note for note in report.notes)
    assert all(key.startswith(("backbone.", "sem_seg_head.")) for key in report.missing)


@pytest.mark.parametrize("reference, backbone, queries, refiner_layers", [
    ("dvis_offline_swinl_vipseg", "swinl", 200, 6),
    ("dvis_online_swinl_vipseg", "swinl", 200, 0),
    ("dvis_online_r50_vipseg", "resnet50", 100, 0),
])
def test_infers_variant_from_keys(reference, backbone, queries, refiner_layers):
    state = {key: torch.empty(shape, device="meta") for key, shape in official_shapes(reference).items()}
    config = infer_config(state, reference)
    assert (config.backbone, config.num_queries, config.refiner_layers) == (backbone, queries, refiner_layers)
    assert config.tracker_layers == 6
    assert build_model(config, device="meta").state_dict().keys() == state.keys()


@pytest.mark.parametrize("damage", [
    {"config": None},
    {"pixel_mean": ["x", 1, 2]},
    {"categories": [{"id": "a"}]},
    {"state_dict": [1, 2]},
])
def test_damaged_own_format_files_are_explained(tmp_path, damage):
    config = build_model("bundled_small").config.to_dict()
    payload = {"format": FORMAT, "version": 1, "config": config, "state_dict": {}}
    for key, value in damage.items():
        if key in payload:
            payload[key] = value
        else:
            config[key] = value
    torch.save(payload, tmp_path / "damaged.pth")
    with pytest.raises(CheckpointError, match="damaged.pth"):
        read_checkpoint(tmp_path / "damaged.pth")


def test_unbuildable_stored_config_is_explained(tmp_path):
    model = build_model("bundled_small")
    model.config.backbone_kwargs = {**model.config.backbone_kwargs, "norm_groups": 7}  # does not divide the widths
    save_checkpoint(model, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="odd.pth"):
        load_checkpoint(tmp_path / "odd.pth")


def test_unwritable_destination_is_a_checkpoint_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="Cannot write"):
        save_checkpoint(build_model("bundled_small"), tmp_path / "file" / "model.pth")  # parent is a file


def test_loading_a_checkpoint_does_not_import_the_compiler_stack():
    """The shape check builds the model on the meta device; that must not pull in torch._dynamo / sympy (several
    seconds of a cold start). A fresh interpreter, as other tests may have imported them here."""
    code = (
        "import sys\n"
        "from dvis_models import build_model, load_checkpoint\n"
        "from dvis_models.presets import list_presets\n"
        "from dvis_models.resources import BUNDLED_CHECKPOINT\n"
        "load_checkpoint(BUNDLED_CHECKPOINT)\n"
        "for name in list_presets():\n"
        "    build_model(name, device='meta')\n"
        "print(sorted(m for m in ('torch._dynamo', 'torch._inductor', 'sympy') if m in sys.modules))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
