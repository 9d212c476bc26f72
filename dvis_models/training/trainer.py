"""The training loop shared by the three stages: AdamW, clipping, schedule, DDP, progress, resume.

One clip per process per iteration (the DVIS recipe assumes it: the frozen segmenter's eval mode
treats all frames of a process as one video). The clip of (iteration, rank) comes from a
deterministic ``ClipSource``, and the RNG state of every rank is saved, so a resumed run continues
exactly where it stopped.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dvis_models.training import training_state
from dvis_models.training.distributed import DistributedContext, barrier, is_distributed
from dvis_models.training.optim import LRSchedule, build_optimizer
from dvis_models.training.stages import Clip, LossConfig, build_stage
from dvis_models.training.training_state import STATE_FILE_NAME, TrainingState, TrainingStateError

FINAL_MODEL_NAME = "model_final.pth"
METRICS_FILE_NAME = "metrics.jsonl"


class ClipSource(Protocol):
    def __call__(self, iteration: int, rank: int) -> Clip: ...


@dataclass
class TrainConfig:
    """Hyper-parameters of one stage's run (defaults: the official VIPSeg recipe, DVIS ``configs/VIPSeg/``)."""

    stage: str
    max_iter: int = 20000
    lr: float = 1e-4
    weight_decay: float = 0.05
    backbone_lr_multiplier: float = 0.1
    clip_norm: float = 0.01  # full-model L2 gradient clipping
    schedule: str = "multistep"
    warmup_iters: int = 10
    warmup_factor: float = 1.0
    milestones: tuple[int, ...] = (14000,)
    gamma: float = 0.1
    match_switch_iter: int | None = None  # default: max_iter // 2
    checkpoint_period: int = 1000
    log_period: int = 20
    seed: int = 42
    amp: bool = True  # fp16 autocast; only ever used on CUDA
    loss: LossConfig = field(default_factory=LossConfig)

    def lr_schedule(self) -> LRSchedule:
        return LRSchedule(self.max_iter, self.schedule, self.warmup_iters, self.warmup_factor,
                          tuple(self.milestones), self.gamma)


class Trainer:
    """Runs one stage on ``model`` (a ``DVISModel``) and writes ``out_dir``:

    ``last.pth`` (training state, for resuming), ``metrics.jsonl`` (losses per logged iteration) and
    ``model_final.pth`` (the trained model, loadable by the app) when done.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        clips: ClipSource,
        out_dir: Path,
        context: DistributedContext,
        save_model: Callable[[nn.Module, Path], None],
        log: Callable[[str], None] = print,
    ):
        self.config = config
        self.clips = clips
        self.out_dir = Path(out_dir)
        self.context = context
        self.save_model = save_model
        self.log = log if context.is_main else (lambda message: None)
        switch = config.match_switch_iter if config.match_switch_iter is not None else config.max_iter // 2
        self.stage = build_stage(config.stage, model.to(context.device), config.loss, switch)
        self.optimizer = build_optimizer(self.stage.model, config.lr, config.weight_decay,
                                         config.backbone_lr_multiplier)
        self.schedule = config.lr_schedule()
        self.use_amp = config.amp and context.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.iteration = 0
        self.trainable = [p for p in self.stage.parameters() if p.requires_grad]

    # ----- state -----------------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE_NAME

    def resume(self) -> bool:
        """Continue from ``out_dir/last.pth`` when it exists; True when a state was loaded."""
        if not self.state_path.exists():
            return False
        state = training_state.load_state(self.state_path)
        if state.stage != self.config.stage:
            raise TrainingStateError(
                f"{self.state_path} is a {state.stage!r} run, not {self.config.stage!r}; use another output folder."
            )
        try:
            self.stage.model.load_state_dict(state.model)
            self.optimizer.load_state_dict(state.optimizer)
            if state.scaler:
                self.scaler.load_state_dict(state.scaler)
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as error:
            raise TrainingStateError(
                f"{self.state_path} belongs to a run of another model or optimizer ({str(error).splitlines()[0]}); "
                "train with the same options as that run, or choose another output folder."
            ) from None
        if len(state.rng) == self.context.world_size:
            training_state.restore_rng(state.rng[self.context.rank])
        self.iteration = state.iteration
        self.log(f"resumed {self.config.stage} training from {self.state_path} at iteration {self.iteration}")
        return True

    def save(self) -> None:
        rng = [training_state.rng_snapshot()]
        if is_distributed():
            rng = [None] * self.context.world_size
            dist.all_gather_object(rng, training_state.rng_snapshot())
        if self.context.is_main:
            state = TrainingState(
                stage=self.config.stage,
                iteration=self.iteration,
                model=self.stage.model.state_dict(),
                model_config=self.stage.model.config.to_dict(),
                optimizer=self.optimizer.state_dict(),
                schedule=asdict(self.schedule),
                train_config=asdict(self.config),
                rng=rng,
                scaler=self.scaler.state_dict() if self.use_amp else None,
            )
            training_state.save_state(state, self.state_path)
        barrier()

    # ----- loop ------------------------------------------------------------------------------------------

    @property
    def final_path(self) -> Path:
        return self.out_dir / FINAL_MODEL_NAME

    def run(self) -> Path:
        """Train up to ``max_iter`` and export the model; returns the path of ``model_final.pth``."""
        for _ in self.iterate():
            pass
        return self.final_path

    def iterate(self) -> Iterator[dict]:
        """The loop, one iteration per step of the generator: yields each iteration's record (``iteration``,
        ``lr``, ``it_per_s`` and the losses) and, after the last, saves the state and exports the model.

        A caller that stops early (the app's Cancel) calls ``save`` so a resumed run starts at the iteration reached.
        """
        config = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.iteration == 0:
            torch.manual_seed(config.seed + self.context.rank)
        network: nn.Module = self.stage
        if is_distributed():
            device_ids = [self.context.device.index] if self.context.device.type == "cuda" else None
            network = DistributedDataParallel(self.stage, device_ids=device_ids)
        network.train()
        progress = _Progress(config.max_iter, self.iteration)
        metrics_path = self.out_dir / METRICS_FILE_NAME
        while self.iteration < config.max_iter:
            lr_factor = self.schedule.apply(self.optimizer, self.iteration)
            losses = self.step(network)
            self.iteration += 1
            rate = progress.tick(self.iteration)
            record = {"iteration": self.iteration, "lr": config.lr * lr_factor, "it_per_s": rate, **losses}
            if self.iteration % config.log_period == 0 or self.iteration == config.max_iter:
                self.log(progress.line(config.stage, self.iteration, record))
                if self.context.is_main:
                    with metrics_path.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(record) + "\n")
            if self.iteration % config.checkpoint_period == 0 and self.iteration < config.max_iter:
                self.save()
            yield record
        self.save()
        if self.context.is_main:
            self.save_model(self.stage.model, self.final_path)
            self.log(f"wrote {self.final_path}")
        barrier()

    def step(self, network: nn.Module) -> dict[str, float]:
        """One optimisation step on this process's clip; returns the losses as floats (this process)."""
        clip = self.clips(self.iteration, self.context.rank).to(self.context.device)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()
        with autocast:
            losses = network(clip, self.iteration)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"{self.config.stage} loss became {total.item()} at iteration {self.iteration}; "
                "lower the learning rate (--lr) or resume from the last checkpoint."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, self.config.clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        summary = {"loss": total.item(), "grad_norm": grad_norm.item()}
        for key in ("loss_ce", "loss_mask", "loss_dice"):
            summary[key] = losses[key].item()
        return summary


class _Progress:
    """Iterations per second over the run so far and the time left."""

    def __init__(self, max_iter: int, start_iteration: int):
        self.max_iter = max_iter
        self.start_iteration = start_iteration
        self.start_time = time.perf_counter()

    def tick(self, iteration: int) -> float:
        elapsed = max(time.perf_counter() - self.start_time, 1e-9)
        return (iteration - self.start_iteration) / elapsed

    def line(self, stage: str, iteration: int, record: dict) -> str:
        rate = record["it_per_s"]
        eta = (self.max_iter - iteration) / rate if rate > 0 else math.inf
        return (
            f"[{stage}] it {iteration}/{self.max_iter}  loss {record['loss']:.3f} "
            f"(ce {record['loss_ce']:.3f} mask {record['loss_mask']:.3f} dice {record['loss_dice']:.3f})  "
            f"lr {record['lr']:.2e}  {rate:.2f} it/s  ETA {_duration(eta)}"
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
