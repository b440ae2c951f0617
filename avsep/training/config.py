"""Typed training configuration (frozen dataclasses), filled from a YAML preset in avsep/configs/
and `--set key=value` overrides (see avsep.config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from avsep.geometry import ClipSpec
from avsep.sources import READ_ATTEMPTS, READ_RETRY_DELAY_S


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to build, and its constructor overrides."""

    name: str = "sop"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how mixtures are made.

    `dataset`: "solos" reads prepared shards at `path` (a folder, a URL prefix, a shard list
    or a brace pattern: see `avsep.sources`); "music" reads prepared MUSIC shards the same
    way (class indices count in MUSIC-21's list); "synthetic" generates the stand-in
    (`synthetic_preset`), prepares it under the run directory and reads that.
    `curriculum`: optional [[step, num_sources], ...]; from each step on, mixtures have that
    many sources (MHU-Net grows from 2 to 7). Empty: always `num_sources`.
    """

    dataset: Literal["solos", "music", "synthetic"] = "solos"
    path: str = ""
    synthetic_preset: str = "bench"
    num_sources: int = 2
    curriculum: list = field(default_factory=list)
    distinct_classes: bool = True
    mixing: Literal["sop", "peak"] = "sop"
    num_workers: int = 4
    # The clip geometry (flat keys for `--set data.image_size=...`): defaults and meaning
    # are ClipSpec's, read back with `avsep.geometry.clip_spec_from_config`.
    clip_samples: int = ClipSpec.clip_samples
    num_frames: int = ClipSpec.num_frames
    frame_stride: int = ClipSpec.frame_stride
    image_size: int = ClipSpec.image_size
    resize_short_side: int = ClipSpec.resize_short_side
    color_jitter: float = ClipSpec.color_jitter
    val_mixtures: int = 256
    # 0 (the original, mix-and-separate): fresh mixtures every step. N > 0: a fixed set of N
    # mixtures (the centre clip of each training sample, grouped once with the run's seed),
    # drawn in shuffled batches, to measure what dynamic mixing buys (the U-Net thesis'
    # claim); the SoP gains are still drawn per step. Building the set reads the whole
    # training split once (like the validation set), so keep it to the stand-in or small data.
    fixed_mixtures: int = 0
    # 0 (the original): every clip of a training mixture is heard. S > 0: each training
    # mixture also shows S more clips (other videos and, with distinct_classes, other
    # classes) whose audio is left out of the mixture: their target is silence. Mix-and-
    # separate otherwise never asks for the sound of a player that is not playing, so the
    # per-location maps learn nothing about players that are in the picture but silent (or
    # about audio from off screen). Validation mixtures have no silent clips.
    silent_sources: int = 0
    # 0 (the original): a training mixture is the sum of its shown clips. p > 0: with
    # probability p, a mixture also carries the audio of a clip it does not show (another
    # mixture's clip of an instrument it has not; `avsep.mixing.OffScreenSound`), and the
    # targets stay the shown clips' sound. The audio direction of `silent_sources`: sound
    # with no picture instead of a picture with no sound, at no extra vision cost.
    off_screen_audio: float = 0.0
    # The same with white noise as the off-screen sound (RMS about one source's).
    off_screen_noise: float = 0.0
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
    lr_milestones: list = field(default_factory=lambda: [40, 80])
    lr_decay: float = 0.1
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
    # arithmetic, faster kernels; see the loop).
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
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
