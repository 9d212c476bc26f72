"""Presets build models whose state-dict keys and shapes equal the official DVIS and DVIS++ checkpoints exactly."""

from pathlib import Path

import pytest
import torch

from dvis_models.errors import PresetError
from dvis_models.model import ModelConfig
from dvis_models.refiner import TemporalRefiner
from dvis_models.tracker import ReferringTracker

KEYS_DIR = Path(__file__).parent / "data" / "checkpoint_keys"  # generated from the official code (see data/README.md)


def official_shapes(name: str, prefix: str = "") -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in (KEYS_DIR / f"{name}.tsv").read_text().splitlines()[1:]:
        key, shape, _dtype = line.split("\t")
        if key.startswith(prefix) and key != "criterion.empty_weight":
            shapes[key[len(prefix):]] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return shapes


def shapes_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def test_tracker_and_refiner_match_official_keys():
    with torch.device("meta"):
        tracker = ReferringTracker(hidden_dim=256, num_classes=124)
        refiner = TemporalRefiner(hidden_dim=256, num_classes=124)
    assert shapes_of(tracker) == official_shapes("dvis_offline_r50_vipseg", "tracker.")
    assert shapes_of(refiner) == official_shapes("dvis_offline_r50_vipseg", "refiner.")


@pytest.mark.parametrize(
    "preset, reference",
    [
        ("r50_vipseg_online", "dvis_online_r50_vipseg"),
        ("r50_vipseg_offline", "dvis_offline_r50_vipseg"),
        ("swinl_vipseg_online", "dvis_online_swinl_vipseg"),
        ("swinl_vipseg_offline", "dvis_offline_swinl_vipseg"),
        ("dvispp_r50_vipseg_online", "dvispp_online_r50_vipseg"),
        ("dvispp_r50_vipseg_offline", "dvispp_offline_r50_vipseg"),
    ],
)
def test_official_presets_match_official_state_dicts(preset, reference):
    from dvis_models import build_model

    model = build_model(preset, device="meta")  # shapes only: no memory, no init time
    assert shapes_of(model) == official_shapes(reference)
    assert model.config.mode == ("offline" if "offline" in preset else "online")
    assert model.config.family == ("DVIS++" if preset.startswith("dvispp") else "DVIS")


def test_list_presets_and_unknown_name():
    from dvis_models import list_presets, preset_config

    assert set(list_presets()) >= {"r50_vipseg_online", "r50_vipseg_offline", "swinl_vipseg_online",
                                   "swinl_vipseg_offline", "dvispp_r50_vipseg_online", "dvispp_r50_vipseg_offline",
                                   "bundled_small"}
    with pytest.raises(PresetError, match="r50_vipseg_online"):
        preset_config("r101_coco")


def test_label_to_category_puts_things_first():
    from dvis_models import preset_config

    config = preset_config("r50_vipseg_offline")
    # model label -> VIPSeg id: things by id, then stuff (DVIS dvis/data_video/dataset_mapper_vps.py)
    assert config.label_to_category[0] == 2  # door
    assert config.label_to_category[17] == 60  # person
    assert config.label_to_category[57] == 123  # train
    assert config.label_to_category[58] == 0  # wall
    assert config.label_to_category[123] == 121  # food
    assert all(config.category_of(label)["isthing"] == (label < 58) for label in range(124))


def test_bundled_small_is_small_and_runs():
    from dvis_models import build_model

    torch.manual_seed(0)
    model = build_model("bundled_small")
    megabytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    assert 2 < megabytes < 16
    with torch.no_grad():
        out = model.segment(torch.randn(2, 3, 64, 96))
    assert out.pred_embds.shape == (2, model.config.num_queries, model.config.hidden_dim)
    assert out.mask_features.shape == (2, model.config.mask_dim, 16, 24)


def test_config_round_trips_through_a_dict():
    from dvis_models import preset_config

    config = preset_config("bundled_small")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(PresetError, match="unknown fields"):
        ModelConfig.from_dict({**config.to_dict(), "future_field": 1})
