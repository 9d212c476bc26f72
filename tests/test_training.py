"""Training pieces: matching, losses, point sampling, optimizer groups, schedule, resumable state."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dvis_models.training.criterion import SetCriterion
from dvis_models.training.launch import TrainOptions
from dvis_models.training.matcher import HungarianMatcher, Targets
from dvis_models.training.optim import LRSchedule, build_optimizer
from dvis_models.training.point_sampling import point_sample, uncertain_point_coords
from dvis_models.training.training_state import TrainingState, load_state, save_state

NUM_CLASSES = 5


def _square_masks(count: int, size: int = 16) -> torch.Tensor:
    """``count`` disjoint vertical bands, (count, size, size) in {0, 1}."""
    masks = torch.zeros(count, size, size)
    width = size // count
    for i in range(count):
        masks[i, :, i * width : (i + 1) * width] = 1
    return masks


def _predictions_for(targets: Targets, permutation: list[int], num_queries: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Confident predictions in which query ``permutation[i]`` predicts object i; other queries: no object."""
    logits = torch.full((num_queries, NUM_CLASSES + 1), -5.0)
    logits[:, NUM_CLASSES] = 5.0
    masks = torch.full((num_queries,) + targets.masks.shape[1:], -8.0)
    for obj, query in enumerate(permutation):
        logits[query] = -5.0
        logits[query, targets.labels[obj]] = 5.0
        masks[query] = targets.masks[obj] * 16.0 - 8.0
    return logits, masks


def test_matcher_recovers_the_query_of_each_object():
    torch.manual_seed(0)
    targets = Targets(torch.tensor([1, 3, 3]), _square_masks(3))
    logits, masks = _predictions_for(targets, [4, 0, 2], num_queries=6)
    rows, cols = HungarianMatcher(num_points=256).match_image(logits, masks, targets)
    assert dict(zip(cols.tolist(), rows.tolist())) == {0: 4, 1: 0, 2: 2}


def test_matcher_costs_are_float32_under_autocast():
    targets = Targets(torch.tensor([1, 3, 3]), _square_masks(3))
    logits, masks = _predictions_for(targets, [4, 0, 2], num_queries=6)
    matcher = HungarianMatcher(num_points=256)
    torch.manual_seed(0)
    expected = matcher.cost(logits, masks, targets)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # stands in for CUDA fp16, whose matmul sums overflow
        torch.testing.assert_close(matcher.cost(logits, masks, targets), expected, rtol=0, atol=0)


def test_matcher_without_targets_matches_nothing():
    empty = Targets(torch.zeros(0, dtype=torch.long), torch.zeros(0, 16, 16))
    logits, masks = torch.randn(4, NUM_CLASSES + 1), torch.randn(4, 16, 16)
    rows, cols = HungarianMatcher(num_points=64).match_image(logits, masks, empty)
    assert rows.numel() == cols.numel() == 0


def test_consistent_matching_uses_each_objects_first_appearance():
    torch.manual_seed(0)
    masks = _square_masks(2)
    # object 0 present in both frames, object 1 appears only in frame 1
    frame0 = Targets(torch.tensor([1, 2]), torch.stack([masks[0], torch.zeros_like(masks[1])]))
    frame1 = Targets(torch.tensor([1, 2]), masks)
    logits0, masks0 = _predictions_for(Targets(frame0.labels[:1], frame0.masks[:1]), [3], 5)
    # in frame 1 query 3 predicts object 1 too well; it is taken, so object 1 must get another query
    logits1, masks1 = _predictions_for(frame1, [1, 3], 5)
    logits1[0], masks1[0] = logits1[3] * 0.6, masks1[3]  # a slightly worse copy of query 3
    match = HungarianMatcher(num_points=256).match_first_appearance(
        torch.stack([logits0, logits1]), torch.stack([masks0, masks1]), [frame0, frame1]
    )
    assignment = dict(zip(match[1].tolist(), match[0].tolist()))
    assert assignment[0] == 3  # matched on frame 0
    assert assignment[1] == 0  # query 3 was already used, 0 is the next best on frame 1


def test_criterion_prefers_correct_predictions_and_normalises_by_mask_count():
    torch.manual_seed(0)
    targets = Targets(torch.tensor([1, 3]), _square_masks(2))
    criterion = SetCriterion(NUM_CLASSES, num_points=128)
    matcher = HungarianMatcher(num_points=128)
    good = _predictions_for(targets, [2, 0], num_queries=4)
    bad_logits, bad_masks = _predictions_for(targets, [2, 0], num_queries=4)
    bad_masks[[2, 0]] = -bad_masks[[2, 0]]
    bad_logits[[2, 0]] = bad_logits[[2, 0]].flip(-1)

    def total(logits, masks, num_masks=2.0):
        layers = [(logits[None], masks[None])]
        matches = [[matcher.match_image(logits, masks, targets)]]
        return criterion(layers, [targets], matches, num_masks)

    good_losses, bad_losses = total(*good), total(bad_logits, bad_masks)
    assert set(good_losses) == {"loss_ce", "loss_mask", "loss_dice"}
    for key in good_losses:
        assert good_losses[key] < bad_losses[key]
    halved = total(bad_logits, bad_masks, num_masks=4.0)
    assert torch.allclose(halved["loss_mask"] * 2, bad_losses["loss_mask"], rtol=0.2)


def test_criterion_deep_supervision_names_and_empty_targets_keep_graph():
    masks = torch.randn(2, 4, 8, 8, requires_grad=True)
    logits = torch.randn(2, 4, NUM_CLASSES + 1, requires_grad=True)
    empty = Targets(torch.zeros(0, dtype=torch.long), torch.zeros(0, 32, 32))
    no_match = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    layers = [(logits, masks), (logits * 2, masks * 2)]
    losses = SetCriterion(NUM_CLASSES, num_points=16)(layers, [empty, empty], [[no_match] * 2] * 2, 1.0)
    assert set(losses) == {"loss_ce_0", "loss_mask_0", "loss_dice_0", "loss_ce", "loss_mask", "loss_dice"}
    sum(losses.values()).backward()
    assert masks.grad is not None and torch.isfinite(masks.grad).all()
    # only "no object" targets: CE pushes every query to the last class
    assert logits.grad[..., NUM_CLASSES].sum() < 0


def test_point_sampling_reads_values_and_prefers_uncertain_points():
    ramp = torch.linspace(-1, 1, 64).repeat(64, 1)[None, None]  # logit 0 at the vertical centre line
    coords = torch.tensor([[[0.25, 0.5], [0.75, 0.5]]])
    values = point_sample(ramp, coords)[0, 0]
    assert values[0] < 0 < values[1]
    torch.manual_seed(0)
    chosen = uncertain_point_coords(ramp * 10, num_points=100, oversample_ratio=3.0, importance_sample_ratio=0.75)
    assert chosen.shape == (1, 100, 2)
    important = chosen[0, :75, 0]
    assert (important - 0.5).abs().mean() < 0.1  # near the boundary; uniform would give 0.25


def test_optimizer_groups_skip_decay_on_norms_and_slow_the_backbone():
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4))
    model.head = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Embedding(3, 4))
    model.head[0].weight.requires_grad_(False)
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.05, backbone_lr_multiplier=0.1)
    settings = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            settings[id(parameter)] = (group["lr"], group["weight_decay"])
    assert settings[id(model.backbone[0].weight)] == (pytest.approx(1e-4), 0.05)
    assert settings[id(model.backbone[1].weight)] == (pytest.approx(1e-4), 0.0)
    assert settings[id(model.head[0].bias)] == (1e-3, 0.05)
    assert settings[id(model.head[1].weight)] == (1e-3, 0.0)
    assert settings[id(model.head[2].weight)] == (1e-3, 0.0)
    assert id(model.head[0].weight) not in settings  # frozen


def test_lr_schedules():
    steps = LRSchedule(max_iter=100, kind="multistep", warmup_iters=10, warmup_factor=0.1, milestones=(50, 80))
    assert steps.factor(0) == pytest.approx(0.1)
    assert steps.factor(10) == 1.0 and steps.factor(49) == 1.0
    assert steps.factor(50) == pytest.approx(0.1) and steps.factor(80) == pytest.approx(0.01)
    cosine = LRSchedule(max_iter=100, kind="cosine", warmup_iters=0)
    assert cosine.factor(0) == 1.0 and cosine.factor(50) == pytest.approx(0.5)
    assert cosine.factor(100) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        LRSchedule(max_iter=10, kind="linear").factor(0)


def test_training_state_round_trips_with_weights_only(tmp_path):
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = TrainingState(
        stage="tracker", iteration=7, model=model.state_dict(), model_config={"name": "x", "categories": [{"id": 1}]},
        optimizer=optimizer.state_dict(), schedule={"max_iter": 10, "milestones": (5,)},
        train_config={"lr": 1e-3, "loss": {"num_points": 16}}, rng=[{"torch": torch.get_rng_state()}],
    )
    save_state(state, tmp_path / "last.pth")
    loaded = load_state(tmp_path / "last.pth")  # load_state uses weights_only=True
    assert loaded.iteration == 7 and loaded.stage == "tracker"
    assert torch.equal(loaded.model["weight"], model.weight.detach())
    restored = torch.optim.AdamW(nn.Linear(3, 2).parameters(), lr=1e-3)
    restored.load_state_dict(loaded.optimizer)
    assert math.isclose(restored.param_groups[0]["lr"], 1e-3)
    assert not list(tmp_path.glob("*.tmp"))


def test_training_state_that_needs_code_is_refused(tmp_path):
    from fractions import Fraction

    from dvis_models.training.training_state import TrainingStateError

    torch.save({"format": "dvis-studio-training-state", "iteration": Fraction(1, 3)}, tmp_path / "last.pth")
    with pytest.raises(TrainingStateError, match="last.pth"):
        load_state(tmp_path / "last.pth")


# ----- real model, real synthetic data ---------------------------------------------------------------------------

import json  # noqa: E402
from dataclasses import replace  # noqa: E402

from dvis_models.data.clip_dataset import VIPSegClipDataset  # noqa: E402
from dvis_models.data.synthetic import generate_dataset  # noqa: E402
from dvis_models.presets import build_model, preset_config  # noqa: E402
from dvis_models.training.data import DatasetClips  # noqa: E402
from dvis_models.training.distributed import DistributedContext  # noqa: E402
from dvis_models.training.stages import LossConfig  # noqa: E402
from dvis_models.training.trainer import TrainConfig, Trainer  # noqa: E402


def tiny_config():
    """bundled_small's architecture shrunk to a size that trains in seconds."""
    return replace(
        preset_config("bundled_small"), name="tiny", num_queries=8, hidden_dim=32, mask_dim=32, nheads=4,
        dim_feedforward=64, enc_layers=1, enc_dim_feedforward=64, dec_layers=2, tracker_layers=1, refiner_layers=1,
        backbone_kwargs={"channels": [8, 16, 32, 64], "blocks": [1, 1, 1, 1], "norm_groups": 4},
    )


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, num_videos=2, num_frames=6, size=(64, 64), seed=3, split="train")
    return root


def tiny_clips(root, frames: int, model, world_size: int = 1) -> DatasetClips:
    dataset = VIPSegClipDataset(root, "train", label_to_category=model.config.label_to_category, num_frames=frames,
                                augmentation=None, length=10_000)
    return DatasetClips(dataset, world_size, model.config.pixel_mean, model.config.pixel_std)


def run_trainer(model, stage: str, clips, out, iters: int, lr: float = 1e-3, **overrides) -> list[dict]:
    config = TrainConfig(stage=stage, max_iter=iters, lr=lr, backbone_lr_multiplier=1.0, milestones=(), warmup_iters=0,
                         log_period=1, checkpoint_period=1000, loss=LossConfig(num_points=256), **overrides)
    trainer = Trainer(model, config, clips, out, DistributedContext(0, 1, 0, torch.device("cpu")),
                      save_model=lambda m, path: torch.save(m.state_dict(), path), log=lambda line: None)
    trainer.resume()
    trainer.run()
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _mean_loss(records: list[dict]) -> float:
    return sum(r["loss"] for r in records) / len(records)


def test_segmenter_training_overfits_one_clip(tiny_data, tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_config())
    clips = tiny_clips(tiny_data, 2, model)
    fixed = clips(0, 0)
    records = run_trainer(model, "segmenter", lambda iteration, rank: fixed, tmp_path, iters=30)
    assert len(records) == 30
    assert _mean_loss(records[-5:]) < 0.7 * _mean_loss(records[:5])
    assert (tmp_path / "last.pth").exists() and (tmp_path / "model_final.pth").exists()


@pytest.mark.parametrize("stage, trained, frozen", [
    ("tracker", ("tracker",), ("backbone", "sem_seg_head", "refiner")),
    ("refiner", ("refiner",), ("backbone", "sem_seg_head", "tracker")),
])
def test_video_stages_train_only_their_part(tiny_data, tmp_path, stage, trained, frozen):
    torch.manual_seed(0)
    model = build_model(tiny_config())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clips = tiny_clips(tiny_data, 4, model)
    fixed = clips(0, 0)
    records = run_trainer(model, stage, lambda iteration, rank: fixed, tmp_path, iters=16, match_switch_iter=8)
    assert _mean_loss(records[-4:]) < _mean_loss(records[:4])
    after = model.state_dict()
    for key, value in before.items():
        changed = not torch.equal(value, after[key])
        if key.startswith(frozen):
            assert not changed, f"{key} changed although {stage} training freezes it"
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(trained))


def test_resumed_run_equals_uninterrupted_run(tiny_data, tmp_path):
    def fresh():
        torch.manual_seed(0)
        return build_model(tiny_config())

    straight_model = fresh()
    clips = tiny_clips(tiny_data, 2, straight_model)
    run_trainer(straight_model, "segmenter", clips, tmp_path / "straight", iters=4)
    interrupted = fresh()
    run_trainer(interrupted, "segmenter", clips, tmp_path / "resumed", iters=2)  # stops at 2, state saved
    resumed = fresh()  # a new process: weights come from last.pth
    run_trainer(resumed, "segmenter", clips, tmp_path / "resumed", iters=4)
    for key, value in straight_model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key

    from dvis_models.training.training_state import TrainingStateError

    wider = build_model(replace(tiny_config(), num_queries=9))  # same folder, another model: explained, not a traceback
    with pytest.raises(TrainingStateError, match="another model"):
        run_trainer(wider, "segmenter", clips, tmp_path / "resumed", iters=6)


DDP_SCRIPT = """
import sys
from pathlib import Path

import torch

sys.path.insert(0, {tests_dir!r})
from test_training import tiny_clips, tiny_config

from dvis_models.presets import build_model
from dvis_models.training.distributed import setup, teardown
from dvis_models.training.stages import LossConfig
from dvis_models.training.trainer import TrainConfig, Trainer

torch.set_num_threads(1)
context = setup("cpu")
torch.manual_seed(100 + context.rank)  # different initial weights: DDP must broadcast rank 0's
model = build_model(tiny_config())
clips = tiny_clips(Path(sys.argv[1]), 2, model, world_size=context.world_size)
config = TrainConfig(stage="segmenter", max_iter=3, lr=1e-3, milestones=(), warmup_iters=0, log_period=1,
                     loss=LossConfig(num_points=128))
out = Path(sys.argv[2])
Trainer(model, config, clips, out, context, save_model=lambda m, p: torch.save(m.state_dict(), p)).run()
torch.save(model.state_dict(), out / f"rank{{context.rank}}.pth")
teardown()
"""


def test_two_process_ddp_training_keeps_ranks_identical(tiny_data, tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests_dir=str(Path(__file__).parent)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
               str(script), str(tiny_data), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[segmenter] it 3/3" in result.stdout  # rank 0 logs progress
    rank0 = torch.load(out / "rank0.pth", weights_only=True)
    rank1 = torch.load(out / "rank1.pth", weights_only=True)
    torch.manual_seed(100)
    initial = build_model(tiny_config()).state_dict()  # rank 0's starting weights
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert any(not torch.equal(rank0[k], initial[k]) for k in rank0)
    state = torch.load(out / "last.pth", weights_only=True)
    assert state["iteration"] == 3 and len(state["rng"]) == 2  # every rank's RNG state is kept


def _options(tmp_path, stage: str, init) -> TrainOptions:
    return TrainOptions(stage=stage, data=tmp_path, out=tmp_path / "run", init=init)


def test_refiner_stage_adds_a_refiner_to_an_online_model(tmp_path):
    from dvis_models.checkpoint import save_checkpoint
    from dvis_models.training.launch import build_initial_model

    online = build_model(replace(tiny_config(), refiner_layers=0))
    save_checkpoint(online, tmp_path / "online.pth")
    model = build_initial_model(_options(tmp_path, "refiner", tmp_path / "online.pth"))
    assert model.refiner is not None and model.config.refiner_layers == online.config.tracker_layers
    for key, value in online.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key  # segmenter and tracker come from the file


def test_stage_refuses_an_init_file_without_the_parts_it_freezes(tmp_path):
    from dvis_models.checkpoint import FORMAT, FORMAT_VERSION
    from dvis_models.errors import CheckpointError
    from dvis_models.training.launch import build_initial_model

    model = build_model(tiny_config())
    tracker_only = {k: v for k, v in model.state_dict().items() if k.startswith("tracker.")}
    torch.save({"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(),
                "state_dict": tracker_only}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="sem_seg_head|backbone"):
        build_initial_model(_options(tmp_path, "refiner", tmp_path / "partial.pth"))
    with pytest.raises(CheckpointError, match="--init"):
        build_initial_model(_options(tmp_path, "tracker", None))


def test_video_stages_of_a_dvispp_model_are_refused_clearly(tmp_path):
    from dvis_models.checkpoint import save_checkpoint
    from dvis_models.errors import CheckpointError
    from dvis_models.training.launch import build_initial_model

    plus = build_model(replace(tiny_config(), family="DVIS++"))
    save_checkpoint(plus, tmp_path / "plus.pth")
    for stage in ("tracker", "refiner"):
        with pytest.raises(CheckpointError, match=f"DVIS\\+\\+ model; training its {stage}"):
            build_initial_model(_options(tmp_path, stage, tmp_path / "plus.pth"))
    assert build_initial_model(_options(tmp_path, "segmenter", tmp_path / "plus.pth")).config.family == "DVIS++"
