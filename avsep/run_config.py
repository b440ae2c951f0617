"""The run configuration: one typed tree from a YAML preset to a checkpoint and back.

`RunConfig` (model, data, optim, train; frozen dataclasses) is what `avsep train` runs, what
a run directory's config.yaml and every checkpoint record (as `avsep.config.to_dict` gives
it), and what evaluation, inference and a resume read back. Two functions make one:

- `load_run_config(path, overrides)`: the defaults, a YAML preset (avsep/configs/ or a
  user's file), then `--set key=value` overrides;
- `run_config_from_dict(recorded)`: a recorded config (a checkpoint's `config`, a
  config.yaml), missing settings at their defaults.

Both read configs written by earlier versions of avsep by one rule (`current_key`):

- the clip geometry's keys, once flat under `data` (`data.image_size`), are read as
  `data.clip.<key>` (`data.clip.image_size`): in presets, recorded configs and overrides
  alike, so old files and `--set data.image_size=96` keep working; configs are written
  with the new names. A file that gives both names different values is an error.
- retired options (`RETIRED_DATA_KEYS`) at their default are dropped; at any other value
  the config describes a run this avsep cannot train or rebuild, and reading it is an
  error saying so.
- `imported_from`, which `avsep import-sop` records in its checkpoints, is provenance, not a
  setting, and is dropped.

This module sits below training, evaluation and inference: all of them import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from avsep.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    merge,
    read_mapping,
    to_dict,
)
from avsep.geometry import ClipSpec
from avsep.sources import READ_ATTEMPTS, READ_RETRY_DELAY_S


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to build (`avsep.create_model`), and its constructor
    arguments."""

    name: str = "sop"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from, what one clip is, and how mixtures are made.

    `dataset`: "solos" reads prepared shards at `path` (a folder, a URL prefix, a shard list
    or a brace pattern: see `avsep.sources`); "music" reads prepared MUSIC shards the same
    way (class indices count in MUSIC-21's list); "synthetic" generates the stand-in
    (`synthetic_preset`), prepares it and reads that.
    `clip`: the clip geometry (`ClipSpec`: window length, frames, crop sizes, colour
    jitter); evaluation and inference read it back from the checkpoint. Its `sample_rate`
    must be the model's, and the shards' (checked when training starts).
    `curriculum`: optional [[step, num_sources], ...]; from each step on, mixtures have that
    many sources (MHU-Net grows from 2 to 7). Empty: always `num_sources`.
    """

    dataset: Literal["solos", "music", "synthetic"] = "solos"
    path: str = ""
    synthetic_preset: str = "bench"
    clip: ClipSpec = field(default_factory=ClipSpec)
    num_sources: int = 2
    curriculum: list[tuple[int, int]] = field(default_factory=list)
    distinct_classes: bool = True
    # The share of mixtures whose sources all play one class (different videos): players of
    # the same instrument, which only their motion tells apart (0: as the original, where
    # distinct_classes decides; docs/same-instrument.md). Applies to the training and the
    # validation mixtures.
    same_class_share: float = 0.0
    mixing: Literal["sop", "peak"] = "sop"
    num_workers: int = 4
    val_mixtures: int = 256
    # 0 (the original, mix-and-separate): fresh mixtures every step. N > 0: a fixed set of N
    # mixtures (the centre clip of each training sample, grouped once with the run's seed),
    # drawn in shuffled batches, to measure what dynamic mixing buys (the U-Net thesis'
    # claim); the SoP gains are still drawn per step. Building the set reads the whole
    # training split once (like the validation set), so keep it to the stand-in or small data.
    fixed_mixtures: int = 0
    # Reading shards (local or remote): tries per shard, and seconds between tries. A training
    # shard that still fails is reported, counted (`shard_failures` in metrics.jsonl) and
    # skipped; a validation shard that fails stops the run.
    read_attempts: int = READ_ATTEMPTS
    read_retry_delay_s: float = READ_RETRY_DELAY_S
    # A shard list file (data.path) may hold `pipe:` lines, which run shell commands: only
    # for a list of one's own (avsep.sources).
    allow_pipe_lists: bool = False


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule. SoP: SGD momentum 0.9, weight decay 1e-4; lr 1e-3 for the audio
    net, the synthesizer and the vision net's last conv, 1e-4 for the ResNet features; lr x0.1
    at the `lr_milestones` (in epochs)."""

    # sgd and adam as the seeds; rmsprop, adagrad and adadelta for the optimiser comparison
    # of the U-Net thesis (momentum applies to sgd and rmsprop).
    optimizer: Literal["sgd", "adam", "rmsprop", "adagrad", "adadelta"] = "sgd"
    lr_sound: float = 1e-3
    lr_frame: float = 1e-4
    lr_synthesizer: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_milestones: list[int] = field(default_factory=lambda: [40, 80])
    lr_decay: float = 0.1
    # Shares of train.max_minutes after which the rates are multiplied by lr_decay, instead
    # of lr_milestones (which must then be empty); none, as the original. A time-budgeted
    # run then gets the same shape of schedule on a slower host, where a step milestone
    # may never come. A resumed run keeps the decays it had and counts the remaining shares
    # in its own budget.
    lr_budget_fractions: list[float] = field(default_factory=list)
    # Largest gradient norm (torch.nn.utils.clip_grad_norm_); 0 = no clipping, as the
    # original. The demo and MHU-Net presets clip at 5 (a guard for training from scratch).
    grad_clip: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """The loop. `batch_size` is global (split over ranks); an epoch is `steps_per_epoch`
    optimiser steps; validation runs at each epoch's end; checkpoints every
    `checkpoint_every` steps and at the end. `max_minutes` stops early (with a checkpoint).
    `init_from`: a checkpoint (e.g. the original SoP weights imported with `avsep import-sop`)
    whose weights start a new run (fine-tuning); ignored when the run resumes.
    `best_metric`: what `best.pt` keeps the best of: "loss" (lowest validation loss, as the
    original) or "sdr" (highest validation SDR of the separated sources). On the stand-in the
    two disagreed and SDR chose the checkpoint that separated held-out URMP better, so the
    demo preset uses "sdr" (docs/results/2026-12-07-demo-preset-reasons.md).
    `weight_average`: see the field's comment."""

    batch_size: int = 80
    epochs: int = 100
    steps_per_epoch: int = 1000
    checkpoint_every: int = 500
    log_every: int = 20
    max_minutes: float = 0.0
    seed: int = 1234
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # Convolution weights and activations in channels-last layout (CPU and GPU; the same
    # arithmetic, faster kernels; see `avsep.training.loop`).
    channels_last: bool = True
    compile: bool = False
    wandb: Literal["online", "offline", "disabled"] = "offline"
    wandb_project: str = "avsep"
    init_from: str = ""
    best_metric: Literal["loss", "sdr"] = "loss"
    # 0 (the original): validation and best.pt use the trained weights. d in (0, 1): they use
    # an exponential moving average of the weights over about 1 / (1 - d) steps
    # (`avsep.training.averaging`); checkpoint.pt keeps the trained weights and the average.
    weight_average: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run is: the model, its data, the optimiser, the loop."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.data.same_class_share <= 1.0:
            raise ConfigError(f"data.same_class_share must be in [0, 1], "
                              f"got {self.data.same_class_share}")
        shares = self.optim.lr_budget_fractions
        if not shares:
            return
        if self.optim.lr_milestones:
            raise ConfigError("optim.lr_budget_fractions replaces optim.lr_milestones: set "
                              "optim.lr_milestones=[] to schedule by the time budget")
        if self.train.max_minutes <= 0:
            raise ConfigError("optim.lr_budget_fractions are shares of train.max_minutes, "
                              "which is not set")
        if list(shares) != sorted(shares) or not all(0 < f < 1 for f in shares):
            raise ConfigError(f"optim.lr_budget_fractions must increase within (0, 1), "
                              f"got {list(shares)}")


# ------------------------------------------------------------------ configs of earlier versions
FLAT_CLIP_KEYS = frozenset({"clip_samples", "num_frames", "frame_stride", "image_size",
                            "resize_short_side", "color_jitter"})
"""Clip geometry keys that configs before `data.clip` held directly under `data`."""

RETIRED_DATA_KEYS: Mapping[str, float] = {
    "silent_sources": 0, "off_screen_audio": 0.0, "off_screen_noise": 0.0}
"""Options removed from `data`, with the default at which a run did not use them."""

RETIRED_MEASUREMENT = "docs/results/2026-12-07-retired-options.md"
"""What each retired option did and the measurement it went for (the models' retired
options too: `avsep.models.RETIRED`)."""

PROVENANCE_KEYS = frozenset({"imported_from"})
"""Top-level keys some checkpoints record beside the settings (`avsep import-sop`)."""


def current_key(key: str, value: Any) -> str | None:
    """The dotted key that `key`, as a config of an earlier avsep names it, means now.

    `data.<clip key>` -> `data.clip.<clip key>`; a retired option at its default and a
    provenance key -> None (dropped); any other key is returned as it is.

    Raises:
        ConfigError: `key` is a retired option set to something other than its default.
    """
    key = key.strip()
    if key in PROVENANCE_KEYS:
        return None
    section, _, name = key.partition(".")
    if section != "data":
        return key
    if name in FLAT_CLIP_KEYS:
        return f"data.clip.{name}"
    if name in RETIRED_DATA_KEYS:
        if value == RETIRED_DATA_KEYS[name] and not isinstance(value, bool):
            return None
        raise ConfigError(
            f"{key}={value!r}: this option was retired (measured not to help; see "
            f"{RETIRED_MEASUREMENT}); only {RETIRED_DATA_KEYS[name]!r} is still accepted")
    return key


def upgrade(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """A config mapping in the current layout (see `current_key`); the input is not changed.

    Raises:
        ConfigError: a retired option in use, or a clip key given under both its names with
            different values.
    """
    out: dict[str, Any] = {}
    for top, value in recorded.items():
        if current_key(str(top), value) is None:
            continue
        if top == "data" and isinstance(value, Mapping):
            value = _upgrade_data(value)
        out[top] = value
    return out


def _upgrade_data(data: Mapping[str, Any]) -> dict[str, Any]:
    out = {name: value for name, value in data.items()
           if current_key(f"data.{name}", value) == f"data.{name}"}
    renamed = {name: value for name, value in data.items() if name in FLAT_CLIP_KEYS}
    if not renamed:
        return out
    clip = out.get("clip", {})
    if not isinstance(clip, Mapping):
        raise ConfigError(f"data.clip: expected a mapping for ClipSpec, got {clip!r}")
    clip = dict(clip)
    for name, value in renamed.items():
        if name in clip and clip[name] != value:
            raise ConfigError(
                f"data.{name}={value!r} and data.clip.{name}={clip[name]!r}: data.{name} is "
                f"the earlier name of data.clip.{name}; give one of them")
        clip[name] = value
    out["clip"] = clip
    return out


def upgrade_override(item: str) -> str | None:
    """A `key=value` override in the current layout (`current_key`), None when it sets a
    retired option to its default. Not of the form key=value: returned as it is (the
    override parser says what is wrong)."""
    if "=" not in item:
        return item
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    new = current_key(key, value)
    return None if new is None else f"{new}={raw}"


# ----------------------------------------------------------------------------------- reading
def run_config_from_dict(recorded: Mapping[str, Any] | None) -> RunConfig:
    """The `RunConfig` a recorded config describes (a checkpoint's `config`, a config.yaml):
    missing settings at their defaults, earlier layouts read by `current_key`.

    Raises:
        ConfigError: not a mapping, an unknown key, a wrong type, a retired option in use.
    """
    if recorded is None:
        return RunConfig()
    if not isinstance(recorded, Mapping):
        raise ConfigError(f"a run config must be a mapping, got {type(recorded).__name__}")
    return from_dict(RunConfig, upgrade(recorded))


def load_run_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """The defaults, updated by the YAML preset at `path` (if any), then by `overrides`
    (`dotted.key=value`, values parsed as YAML, applied in order).

    Raises:
        ConfigError: the preset or an override names an unknown key or gives a wrong type.
        FileNotFoundError: no file at `path`.
    """
    data = to_dict(RunConfig())
    if path is not None:
        data = merge(data, upgrade(read_mapping(path)))
    current = [new for new in map(upgrade_override, overrides) if new is not None]
    return run_config_from_dict(apply_overrides(data, current, RunConfig))
