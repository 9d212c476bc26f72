"""Training pieces: matching, losses, point sampling, optimizer groups, schedule, resumable state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dvis_models.training.checkpointing import TrainingState, load_state, save_state
from dvis_models.training.criterion import SetCriterion
from dvis_models.training.matcher import HungarianMatcher, Targets
from dvis_models.training.optim import LRSchedule, build_optimizer
from dvis_models.training.point_sampling import point_sample, uncertain_point_coords

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
