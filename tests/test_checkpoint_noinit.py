"""Loading a checkpoint skips the random initialisation the file overwrites, and nothing else.

A full file (strict) must give exactly the file's weights, buffers computed as in a fresh build, and consume no
random numbers (the initialisers did not run); a partial file (``strict=False``) must give the weights it lacks
the values of a seeded fresh build, never uninitialised memory.
"""

from dataclasses import replace

import pytest
import torch
from seeded_weights import seeded_state
from test_presets import official_shapes

from dvis_models import build_model, load_checkpoint, save_checkpoint
from dvis_models.checkpoint import read_checkpoint
from dvis_models.presets import preset_config

torch.set_num_threads(1)
LEFT_OUT = "tracker.transformer_self_attention_layers."


def tiny_swin():
    """The bundled model's head on a tiny Swin: the initialiser Swin-L uses (``trunc_normal_``) included."""
    return replace(preset_config("bundled_small"), name="tiny_swin", backbone="swinl",
                   backbone_kwargs={"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 2, 2, 4],
                                    "window_size": 4})


def own_file(config, path, keep=lambda key: True) -> str:
    """Our own format holding seeded weights (all keys, or those ``keep`` accepts)."""
    model = build_model(config)
    model.load_state_dict(seeded_state({k: tuple(v.shape) for k, v in model.state_dict().items()}, seed=3))
    save_checkpoint(model, path)
    data = torch.load(path, weights_only=True)
    data["state_dict"] = {key: value for key, value in data["state_dict"].items() if keep(key)}
    torch.save(data, path)
    return str(path)


def official_r50(path, keep=lambda key: True) -> str:
    state = seeded_state(official_shapes("dvis_offline_r50_vipseg"), seed=5)
    torch.save({"model": {key: value for key, value in state.items() if keep(key)}}, path)
    return str(path)


def non_persistent_buffers(model) -> dict[str, torch.Tensor]:
    persistent = model.state_dict()
    return {key: value for key, value in model.named_buffers() if key not in persistent}


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("make", ["bundled_small", "tiny_swin", "official_r50"])
def test_full_file_loads_bit_for_bit_without_drawing_random_numbers(make, strict, tmp_path):
    path = (official_r50(tmp_path / "r50.pth") if make == "official_r50"
            else own_file(tiny_swin() if make == "tiny_swin" else preset_config(make), tmp_path / "own.pth"))
    file_state, _ = read_checkpoint(path)

    torch.manual_seed(0)
    model = load_checkpoint(path, strict=strict)
    after_load = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after_load, torch.rand(4)), "the load drew random numbers: initialisers ran"

    loaded = model.state_dict()
    assert loaded.keys() == file_state.keys()
    for key, value in file_state.items():
        assert torch.equal(loaded[key], value.to(loaded[key].dtype)), key
    fresh = non_persistent_buffers(build_model(model.config))
    computed = non_persistent_buffers(model)
    assert computed.keys() == fresh.keys()
    assert all(torch.equal(computed[key], fresh[key]) for key in fresh)


def test_partial_file_initialises_what_it_lacks_like_a_seeded_fresh_build(tmp_path):
    """An official file without the tracker's self-attention (only official files can be partial, never ours)."""
    path = official_r50(tmp_path / "r50.pth", keep=lambda key: not key.startswith(LEFT_OUT))
    torch.manual_seed(7)
    model = load_checkpoint(path, strict=False)
    torch.manual_seed(7)
    fresh = build_model(model.config).state_dict()

    loaded = model.state_dict()
    missing = [key for key in loaded if key.startswith(LEFT_OUT)]
    assert missing
    for key in missing:
        assert torch.equal(loaded[key], fresh[key]), key
    file_state, _ = read_checkpoint(path)
    assert all(torch.equal(loaded[key], value) for key, value in file_state.items())
