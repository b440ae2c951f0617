"""Resuming a run with a changed configuration: what may change, and applying it.

A resume compares the configuration with the one the checkpoint recorded (read back with
`avsep.run_config.run_config_from_dict`) before it writes anything. Settings in
`RESUME_SAFE` may change: they are applied (new learning rates and milestones included) and
recorded in config.yaml and config_history.jsonl. A change to any other setting is refused
with `ResumeConfigError`, naming each key with its old and new value.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from avsep.checkpoint import CheckpointError, read_checkpoint
from avsep.config import ConfigError, to_dict
from avsep.faults import InputError
from avsep.models import model_arguments, model_config, retired_arguments
from avsep.run_config import RunConfig, run_config_from_dict
from avsep.training.optim import group_lrs, lr_milestone_steps

CONFIG_HISTORY = "config_history.jsonl"

# The settings a resumed run may change (dotted config keys). Every other key, including any
# added to the config later until it is listed here, must equal the checkpoint's: the
# model's, because the weights and optimiser state belong to that architecture; the data's
# that make a sample (geometry, sources, mixing, augmentation, validation set) and
# train.seed / batch_size / checkpoint_every, because they decide what the resumed steps
# train on and the data stream's segments; optim.optimizer / momentum / weight_decay,
# because the restored optimiser state and parameter groups carry them.
RESUME_SAFE = frozenset({
    "model.kwargs.pretrained",  # only picks the initial weights, which the checkpoint replaces
    "data.path",  # where the shards are read (moved, or a mirror): not what they hold
    "data.num_workers", "data.read_attempts", "data.read_retry_delay_s",
    "data.allow_pipe_lists",  # whether a list file's pipe: lines may run: how, not what
    "optim.lr_sound", "optim.lr_frame", "optim.lr_synthesizer",
    "optim.lr_milestones", "optim.lr_decay", "optim.grad_clip",
    "train.epochs", "train.steps_per_epoch", "train.log_every", "train.max_minutes",
    "train.precision", "train.channels_last", "train.compile",
    "train.wandb", "train.wandb_project",
    "train.init_from",  # ignored by a resume
    "train.best_metric",  # a change restarts the best score (`checkpoints.best_so_far`)
    "train.weight_average",  # read at every update; switched on, it starts from the weights
})
# The safe settings the restored optimiser and scheduler carry: a change is written into them.
SCHEDULE_KEYS = frozenset({"optim.lr_sound", "optim.lr_frame", "optim.lr_synthesizer",
                            "optim.lr_milestones", "optim.lr_decay", "train.steps_per_epoch"})


class ResumeConfigError(InputError, ValueError):
    """A resume asks to change settings that the checkpoint's state depends on."""


def set_schedule(optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.MultiStepLR,
                 group_names: list[str], config: RunConfig) -> None:
    """Give a restored optimiser and scheduler the learning rates, milestones and decay of
    `config`, as a run of `config` started from scratch has them at the scheduler's step.

    The rates are decayed milestone by milestone, as MultiStepLR does while it steps, so
    they equal such a run's bit for bit; the scheduler's base rates, milestones and decay
    become `config`'s, so the milestones still ahead apply to the new rates.
    """
    step = scheduler.last_epoch
    milestones = Counter(lr_milestone_steps(config))
    gamma = config.optim.lr_decay
    initial = group_lrs(config)
    for group, name in zip(optimizer.param_groups, group_names):
        lr = initial[name]
        group["initial_lr"] = lr
        for milestone in sorted(milestones):
            if milestone <= step:
                lr = lr * gamma ** milestones[milestone]
        group["lr"] = lr
    scheduler.milestones = milestones
    scheduler.gamma = gamma
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _plain_value(value: Any) -> Any:
    """`value` with tuples as lists (how YAML and checkpoints give them back)."""
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    return value


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"a.b": value} for the leaves of a nested dict (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _plain_value(value)
    return flat


def _model_changes(separator: Any, payload: dict) -> dict[str, tuple[Any, Any]]:
    """{"model.name" or "model.kwargs.K": (checkpoint's, configured)} where the configured
    model (as built, all its arguments) differs from the checkpoint's."""
    old_name, new_name = payload["model_name"], separator.model_name
    if old_name != new_name:
        return {"model.name": (old_name, new_name)}
    old = _plain_value(dict(payload["model_kwargs"]))
    new = _plain_value(dict(separator.model_kwargs))
    if set(new) - set(old):
        # Arguments added after the checkpoint was written: the old model had their defaults
        # (its config as this avsep reads it; retired options at their off value dropped).
        readable = set(model_arguments(old_name)) | set(retired_arguments(old_name))
        config = model_config(old_name, **{k: v for k, v in old.items() if k in readable})
        old = {**_plain_value(dataclasses.asdict(config)), **old}
    return {f"model.kwargs.{k}": (old.get(k), value) for k, value in new.items()
            if old.get(k) != value}


def resume_changes(config: RunConfig, separator: Any, payload: dict[str, Any]
                   ) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (checkpoint's value, configured value)} for every setting of `config`
    that differs from the run the checkpoint `payload` was written by.

    The model is compared as built (`separator`, every constructor argument) with the
    checkpoint's; the other settings with the config the checkpoint recorded, read back
    with `run_config_from_dict` (a setting it lacks, added to avsep later, counts as its
    default; a retired option at its default is left out).

    Raises:
        ConfigError: the recorded config names a setting this avsep does not know, or a
            retired option in use.
    """
    changes = _model_changes(separator, payload)
    recorded = payload.get("config") or {}
    if not recorded:
        return changes  # e.g. written without a config: only the model can be compared
    old = _flatten(to_dict(run_config_from_dict(recorded)))
    for key, value in _flatten(to_dict(config)).items():
        if key.startswith("model."):
            continue  # compared as built above
        if old.get(key) != value:
            changes[key] = (old.get(key), value)
    return changes


def allowed_changes(config: RunConfig, separator: Any, payload: dict[str, Any], path: Path
                    ) -> dict[str, tuple[Any, Any]]:
    """The settings a resume from the checkpoint `payload` (read from `path`) changes, when
    all of them are in `RESUME_SAFE`.

    Raises:
        ResumeConfigError: a setting outside `RESUME_SAFE` changes (named with both values).
        CheckpointError: the recorded config cannot be read (see `resume_changes`).
    """
    try:
        changes = resume_changes(config, separator, payload)
    except ConfigError as exc:
        raise CheckpointError(f"cannot resume from {path}: the config it recorded cannot be "
                              f"read ({exc})") from None
    refused = {k: v for k, v in changes.items() if k not in RESUME_SAFE}
    if refused:
        raise ResumeConfigError(
            f"cannot resume {path} with changed settings: {describe_changes(refused)} (the "
            "checkpoint's weights, optimiser state and data stream depend on them). To "
            "resume, set them back to the checkpoint's values; to train with the new "
            "ones, start a new run in another --run-dir")
    return changes


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{key} {_show(old)} -> {_show(new)}"
                     for key, (old, new) in sorted(changes.items()))


def read_resume_checkpoint(path: Path, device: torch.device, best: Path) -> dict:
    """The checkpoint a resume restores, with the training state a resume needs.

    Raises:
        CheckpointError: unreadable, not an avsep checkpoint, or not one a run wrote; the
            message says how to go on.
    """
    from_best = (f" (--set train.init_from={best} starts it from the best validated weights)"
                 if best.exists() else "")
    try:
        payload = read_checkpoint(path, map_location=device)
    except CheckpointError as exc:
        raise CheckpointError(
            f"cannot resume from {exc}. Restore {path} from a copy, delete it to train this "
            f"run again from the start, or start a new run in another --run-dir{from_best}"
        ) from None
    missing = [key for key in ("optimizer", "scheduler", "rng", "step") if key not in payload]
    if missing:
        raise CheckpointError(
            f"cannot resume from {path}: it holds no training state ({', '.join(missing)} "
            "missing), so a run did not write it. Move it away; to start a run from its "
            "weights use --set train.init_from=FILE")
    return payload


def record_changes(run_dir: Path, step: int, checkpoint: Path,
                    changes: dict[str, tuple[Any, Any]]) -> None:
    """Append the settings a resume changed to run_dir/config_history.jsonl (one JSON line:
    time, step, checkpoint, {key: {"old": ..., "new": ...}})."""
    record = {"time": time.time(), "step": step, "checkpoint": str(checkpoint),
              "changed": {key: {"old": old, "new": new}
                          for key, (old, new) in sorted(changes.items())}}
    with open(run_dir / CONFIG_HISTORY, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


