"""The resumable training state: one ``weights_only``-loadable file per training run.

It holds the whole model (frozen parts included, so the file alone rebuilds the run), the optimizer,
the schedule, the iteration, the AMP scaler and every process's torch RNG state. Writes are atomic
(temporary file in the same folder, fsync, rename): a crash while saving keeps the previous state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dvis_models import weights_file
from dvis_models.errors import CheckpointError, DVISError

STATE_FORMAT = "dvis-studio-training-state"
STATE_VERSION = 1
STATE_FILE_NAME = "last.pth"


class TrainingStateError(DVISError):
    """A training-state file is unreadable or belongs to another run; the message says what to do."""


@dataclass
class TrainingState:
    stage: str
    iteration: int  # number of completed iterations
    model: dict[str, torch.Tensor]
    model_config: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    train_config: dict[str, Any]
    rng: list[dict[str, Any]]  # one entry per process rank
    scaler: dict[str, Any] | None = None


def save_state(state: TrainingState, path: Path) -> None:
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **state.__dict__}
    weights_file.torch_save(payload, path)


def load_state(path: Path) -> TrainingState:
    weights_file.require_safe_torch()  # an unsafe torch is not the file's fault: say so, unwrapped
    try:
        payload = weights_file.torch_load(path)
    except CheckpointError as error:
        raise TrainingStateError(f"Cannot read the training state: {error} Delete it to start the run "
                                 "again.") from error
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise TrainingStateError(f"{path} is not a DVIS Studio training state; choose another output folder.")
    if payload.get("version") != STATE_VERSION:
        raise TrainingStateError(f"{path} has training-state version {payload.get('version')}; this build reads "
                                 f"version {STATE_VERSION}. Start a new run in another folder.")
    fields = TrainingState.__dataclass_fields__
    return TrainingState(**{name: payload.get(name) for name in fields})


def rng_snapshot() -> dict[str, Any]:
    """This process's torch RNG state (CPU and, when present, every CUDA device)."""
    snapshot: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        snapshot["cuda"] = torch.cuda.get_rng_state_all()
    return snapshot


def restore_rng(snapshot: dict[str, Any]) -> None:
    torch.set_rng_state(snapshot["torch"])
    if "cuda" in snapshot and torch.cuda.is_available() and len(snapshot["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(snapshot["cuda"])
