"""What a run keeps in its directory, and what a resume or `train.init_from` takes back.

- checkpoint.pt: everything an exact resume needs (weights, optimiser, scheduler, RNG, step,
  best score, the weight average), written every `checkpoint_every` steps and at the end;
- best.pt: the best validated weights so far (`train.best_metric`);
- config.yaml, git_commit.txt: what the run is, written once its start is certain (a
  refused or failed resume leaves them as they were); config_history.jsonl: the settings
  resumes changed (`avsep.training.resume`).
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import torch

from avsep.checkpoint import CheckpointError, load_checkpoint
from avsep.config import save_config
from avsep.run_config import RunConfig
from avsep.training.averaging import WeightAverage
from avsep.training.resume import record_changes

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


def best_score(val: dict[str, float], metric: str) -> float:
    """What `best.pt` minimises: the validation loss, or minus the validation SDR (a NaN,
    e.g. every validation source silent, never counts as best)."""
    value = val["loss"] if metric == "loss" else -val["sdr"]
    return value if math.isfinite(value) else math.inf


def best_so_far(payload: dict[str, Any], metric: str) -> float:
    """The best score a checkpoint recorded, when it was kept by `metric`; otherwise none
    yet (inf: a changed `train.best_metric` starts over). Checkpoints written before
    `best_metric` existed kept the best validation loss."""
    if payload.get("best_metric", "loss") != metric:
        return math.inf
    return float(payload.get("best_val", payload.get("best_val_loss", math.inf)))


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_files(run_dir: Path, config: RunConfig, step: int,
                    changes: dict[str, tuple[Any, Any]]) -> None:
    """config.yaml and git_commit.txt (the main rank, once the run's state is loaded), and
    the settings a resume at `step` changed (config_history.jsonl)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    (run_dir / "git_commit.txt").write_text((git_commit() or "unknown") + "\n")
    if changes:
        record_changes(run_dir, step, run_dir / CHECKPOINT, changes)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def restore_training_state(path: Path, payload: dict[str, Any], separator: torch.nn.Module,
                           average: WeightAverage | None, optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.MultiStepLR) -> None:
    """Load a resume checkpoint's weights, weight average, optimiser and scheduler state.

    Raises:
        CheckpointError: the state does not fit this run's model or optimiser.
    """
    try:
        separator.load_state_dict(payload["state_dict"])
        if average is not None:
            if "weight_average" in payload:
                average.load_state_dict(payload["weight_average"])
            else:  # averaging switched on for a run begun without it: start from here
                average.model.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: its training state does not fit this run "
                              f"({str(exc).strip().splitlines()[0]})") from None


def load_initial_weights(path: str, separator: Any, average: WeightAverage | None,
                         device: torch.device) -> None:
    """Start a new run from the weights of the checkpoint at `path` (`train.init_from`).

    Raises:
        CheckpointError: unreadable, or its model is not the configured one.
    """
    initial, _ = load_checkpoint(path, map_location=device)
    try:
        separator.load_state_dict(initial.state_dict())
        if average is not None:
            average.model.load_state_dict(initial.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(
            f"train.init_from={path} holds {initial.model_name} {initial.model_kwargs}, "
            f"which does not fit the configured {separator.model_name} "
            f"{separator.model_kwargs}; set model.name/model.kwargs to match ({exc})") from None
