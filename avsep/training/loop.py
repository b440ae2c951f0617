"""The training loop: DDP from 1 to N processes, checkpoints and exact resume, validation.

With `train.weight_average` the loop also keeps a running average of the weights
(`avsep.training.averaging`): validation scores it and best.pt holds it; checkpoint.pt holds
the trained weights with the average beside them, so a resumed run continues both.

Step `s` means `s` optimiser steps are done. The data stream is cut into segments of
`checkpoint_every` steps (see `avsep.data.solos`); mixing gains are drawn from a generator
seeded by (seed, step, rank). A run resumed from any checkpoint therefore computes the same
losses as an uninterrupted run with the same seed.

A resume compares the configuration with the one the checkpoint recorded before it writes
anything (`avsep.training.resume`).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from avsep import create_model, distributed
from avsep.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from avsep.config import save_config, to_dict
from avsep.data.solos import (
    fixed_mixture_batches,
    shard_urls,
    stream_seed,
    training_loader,
    validation_mixtures,
)
from avsep.geometry import ClipSpec, clip_spec_from_config
from avsep.sources import DEFAULT_POLICY, ReadPolicy, report_failures
from avsep.training.averaging import WeightAverage
from avsep.training.config import RunConfig
from avsep.training.resume import (
    CONFIG_HISTORY,
    RESUME_SAFE,
    SCHEDULE_KEYS,
    ResumeConfigError,
    describe_changes,
    lr_milestone_steps,
    read_resume_checkpoint,
    record_changes,
    resume_changes,
    set_schedule,
)
from avsep.training.step import MixAndSeparate
from avsep.training.tracking import Tracker
from avsep.training.validate import validate

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite."""


def clip_spec(config: RunConfig) -> ClipSpec:
    """The clip geometry of a training config (the same reading checkpoints get)."""
    return clip_spec_from_config(to_dict(config))


def num_sources_at(config: RunConfig, step: int) -> int:
    """Sources per mixture at `step`: the last curriculum entry at or before it."""
    n = config.data.num_sources
    for start, count in sorted((int(s), int(c)) for s, c in config.data.curriculum):
        if step >= start:
            n = count
    return n


def segment_bounds(config: RunConfig, step: int) -> tuple[int, int]:
    """(first step, first step after) of the data segment containing `step`.

    Segments are `checkpoint_every` steps long and also break where the curriculum changes
    the number of sources, because one segment's stream has one mixture size. A segment is
    identified by its first step, which seeds its stream.
    """
    every = config.train.checkpoint_every
    start, end = (step // every) * every, (step // every + 1) * every
    for change in (int(s) for s, _ in config.data.curriculum):
        if start < change <= step:
            start = change
        if step < change < end:
            end = change
    return start, end


def best_score(val: dict, metric: str) -> float:
    """What `best.pt` minimises: the validation loss, or minus the validation SDR (a NaN,
    e.g. every validation source silent, never counts as best)."""
    value = val["loss"] if metric == "loss" else -val["sdr"]
    return value if math.isfinite(value) else math.inf


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """Parameter groups as in Sound of Pixels: the ResNet backbone at `lr_frame`, the
    synthesizer at `lr_synthesizer`, everything else (U-Net, the vision projection) at
    `lr_sound`."""
    o = config.optim
    groups: dict[str, list] = {"frame": [], "synthesizer": [], "sound": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("vision.backbone."):
            groups["frame"].append(param)
        elif name.startswith("synthesizer."):
            groups["synthesizer"].append(param)
        else:
            groups["sound"].append(param)
    lrs = {"frame": o.lr_frame, "synthesizer": o.lr_synthesizer, "sound": o.lr_sound}
    param_groups = [{"params": p, "lr": lrs[k], "name": k} for k, p in groups.items() if p]
    if o.optimizer == "sgd":
        return torch.optim.SGD(param_groups, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(param_groups, momentum=o.momentum,
                                   weight_decay=o.weight_decay)
    others = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
              "adadelta": torch.optim.Adadelta}
    return others[o.optimizer](param_groups, weight_decay=o.weight_decay)


def build_scheduler(optimizer, config: RunConfig):
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, lr_milestone_steps(config),
                                                gamma=config.optim.lr_decay)


def max_grad_norm(config: RunConfig) -> float:
    """The gradient-norm bound: `optim.grad_clip`, or no bound (inf: the norm is still
    measured and logged) when it is 0, as in the original."""
    return config.optim.grad_clip if config.optim.grad_clip > 0 else math.inf


def autocast_dtype(config: RunConfig, device: torch.device):
    precision = config.train.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def read_policy(config: RunConfig) -> ReadPolicy:
    """How hard the run tries to read a shard (`data.read_attempts`, `data.read_retry_delay_s`)."""
    return ReadPolicy(config.data.read_attempts, config.data.read_retry_delay_s,
                      config.data.allow_pipe_lists)


def validation_shard_urls(root: str | Path, policy: ReadPolicy = DEFAULT_POLICY) -> list[str]:
    """The val shards of a prepared Solos folder; when there are none, say why and what to do.

    Raises:
        FileNotFoundError: no val shards (with the reason when the train shards exist).
    """
    try:
        return shard_urls(root, "val", policy)
    except FileNotFoundError:
        train = shard_urls(root, "train", policy)  # raises the generic message if this is missing too
        raise FileNotFoundError(
            f"no validation shards in {Path(root) / 'val'}, although {len(train)} train shards "
            f"exist: `avsep prepare solos` put no video in val (it holds out --val-fraction of "
            "the videos, 0.1 by default, picked by a hash of the video id, so a small dataset "
            "can end up with none). Run `avsep prepare solos` again on the same folders with a "
            "larger --val-fraction, e.g. 0.25"
        ) from None


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(config: RunConfig, run_dir: str | os.PathLike, device: str = "auto",
          resume: bool = True, progress: bool = True, until_step: int | None = None) -> dict:
    """Train `config` in `run_dir` (created if needed, never deleted); returns a summary.

    Resumes from `run_dir/checkpoint.pt` when it exists and `resume` is true. `until_step`
    stops this invocation (with a checkpoint) once that many steps are done, as a job
    scheduler's time slice would; a later call continues the same run.
    """
    info = distributed.setup(device)
    run_dir = Path(run_dir)
    try:
        return _train(config, run_dir, info, resume, progress, until_step)
    finally:
        distributed.teardown()


def _train(config: RunConfig, run_dir: Path, info, resume: bool, progress: bool,
           until_step: int | None) -> dict:
    t = config.train
    if t.batch_size % info.world_size:
        raise ValueError(f"train.batch_size={t.batch_size} is not divisible by the "
                         f"{info.world_size} processes")
    total_steps = t.epochs * t.steps_per_epoch
    run = _Run.build(config, run_dir, info, resume)
    deadline = run.start_time + 60 * t.max_minutes if t.max_minutes > 0 else math.inf
    run.bar = tqdm(total=total_steps, initial=run.step, disable=not (progress and info.is_main),
                   desc="train", unit="step", dynamic_ncols=True)
    stopped_early = False
    try:
        while run.step < total_steps and not stopped_early:
            stopped_early = run.train_segment(total_steps, deadline, until_step)
            run.save(run_dir / CHECKPOINT)
    finally:
        run.bar.close()
        run.tracker.close()
    if not run.last_val:  # e.g. stopped by the time limit before an epoch ended
        run.last_val = validate(run.evaluated, run.step_fn, run.val_set, info, run.local_batch,
                                run.amp)
        run.tracker.log({"step": run.step, "kind": "val", **run.last_val})
    if info.is_main:
        run.tracker.plot()
    return {"rank": info.rank, "step": run.step, "stopped_early": stopped_early,
            "minutes": (time.monotonic() - run.start_time) / 60,
            **{f"val_{k}": v for k, v in run.last_val.items()}}


class _Run:
    """The state of one training run and the three things done with it: build (or resume),
    train one data segment, validate and keep the best checkpoint."""

    separator: Any  # the registered model (a Separator); `net` wraps it for DDP / compile
    net: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.MultiStepLR
    step_fn: MixAndSeparate
    amp: torch.dtype | None
    spec: ClipSpec
    policy: ReadPolicy
    train_urls: list[str]
    val_set: dict
    fixed_set: dict | None  # data.fixed_mixtures: the mixtures every step draws from
    tracker: Tracker
    average: WeightAverage | None  # train.weight_average: the averaged weights

    def __init__(self, config: RunConfig, run_dir: Path, info) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.local_batch = config.train.batch_size // info.world_size
        self.step, self.best_val = 0, math.inf
        self.last_val: dict = {}
        self.reported_shards: set[str] = set()  # failed shards already printed
        self.start_time = time.monotonic()
        self.bar = tqdm(disable=True)

    @classmethod
    def build(cls, config: RunConfig, run_dir: Path, info, resume: bool) -> _Run:
        """Run directory, model, optimiser and scheduler (resumed or initialised), data."""
        run, t = cls(config, run_dir, info), config.train
        checkpoint = run_dir / CHECKPOINT
        # Read before building anything, and write nothing until it is loaded: a refused or
        # failed resume leaves the run directory as it was (config.yaml still describes the
        # checkpoint's run).
        payload = (read_resume_checkpoint(checkpoint, info.device, run_dir / BEST)
                   if resume and checkpoint.exists() else None)
        torch.manual_seed(stream_seed("init", t.seed))  # same initial weights on every rank
        run.separator = create_model(config.model.name, **config.model.kwargs).to(info.device)
        run.average = None
        if t.weight_average:
            run.average = WeightAverage(
                create_model(config.model.name, **config.model.kwargs).to(info.device),
                run.separator, t.weight_average)
        run.optimizer = build_optimizer(run.separator, config)
        run.scheduler = build_scheduler(run.optimizer, config)
        changes: dict[str, tuple[Any, Any]] = {}
        if payload is not None:
            changes = run._resume(checkpoint, payload)
        elif t.init_from:
            run._init_from(t.init_from)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / "config.yaml")
            (run_dir / "git_commit.txt").write_text((git_commit() or "unknown") + "\n")
            if changes:
                record_changes(run_dir, run.step, checkpoint, changes)
        distributed.barrier()
        if t.channels_last:
            # On every device: the same arithmetic in another memory layout. It makes the
            # demo's CPU step faster (`benchmarks/train.py --channels-last`), and on GPUs it
            # is what bf16 convolutions want.
            run.separator = run.separator.to(memory_format=torch.channels_last)
            if run.average is not None:
                run.average.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        run.net = (DistributedDataParallel(
            run.separator, find_unused_parameters=run.separator.find_unused_parameters)
            if info.distributed else run.separator)
        if t.compile:
            run.net = torch.compile(run.net)
        run.step_fn = MixAndSeparate(run.separator, config.data.mixing,
                                     config.data.silent_sources, config.data.off_screen_audio,
                                     config.data.off_screen_noise).to(info.device)
        run.amp = autocast_dtype(config, info.device)
        run.spec = clip_spec(config)
        run.policy = read_policy(config)
        run.train_urls = shard_urls(config.data.path, "train", run.policy)
        run.fixed_set = None
        if config.data.fixed_mixtures:
            if config.data.curriculum:
                raise ValueError("data.fixed_mixtures cannot follow a curriculum (the set "
                                 "has one number of sources)")
            run.fixed_set = validation_mixtures(
                run.train_urls, run.spec, config.data.num_sources + config.data.silent_sources,
                config.data.fixed_mixtures,
                seed=t.seed, distinct_classes=config.data.distinct_classes, policy=run.policy)
        run.val_set = validation_mixtures(
            validation_shard_urls(config.data.path, run.policy), run.spec,
            config.data.num_sources, config.data.val_mixtures, seed=t.seed,
            distinct_classes=config.data.distinct_classes, policy=run.policy)
        if run.val_set["too_short"] and info.is_main:
            print(f"validation: {run.val_set['too_short']} of {run.val_set['samples']} samples "
                  f"are shorter than one clip ({run.spec.clip_samples} audio samples) and are "
                  "left out", file=sys.stderr)
        run.tracker = Tracker(run_dir, to_dict(config), t.wandb, t.wandb_project,
                              enabled=info.is_main)
        run.tracker.log({"step": run.step, "kind": "val_set", "mixtures": len(run.val_set["keys"]),
                         "samples": run.val_set["samples"], "too_short": run.val_set["too_short"]})
        return run

    def _resume(self, path: Path, state: dict) -> dict[str, tuple[Any, Any]]:
        """Restore the checkpoint `state` read from `path`; returns the settings changed.

        Raises:
            ResumeConfigError: the config changes settings outside `RESUME_SAFE` (nothing
                is restored).
            CheckpointError: the checkpoint's state does not fit this run.
        """
        changes = resume_changes(self.config, self.separator, state)
        refused = {k: v for k, v in changes.items() if k not in RESUME_SAFE}
        if refused:
            raise ResumeConfigError(
                f"cannot resume {path} with changed settings: {describe_changes(refused)} (the "
                "checkpoint's weights, optimiser state and data stream depend on them). To "
                "resume, set them back to the checkpoint's values; to train with the new "
                "ones, start a new run in another --run-dir")
        group_names = [group["name"] for group in self.optimizer.param_groups]
        try:
            self.separator.load_state_dict(state["state_dict"])
            if self.average is not None:
                if "weight_average" in state:
                    self.average.load_state_dict(state["weight_average"])
                else:  # averaging switched on for a run begun without it: start from here
                    self.average.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path}: its training state does not fit this run "
                                  f"({str(exc).strip().splitlines()[0]})") from None
        if SCHEDULE_KEYS & set(changes):
            set_schedule(self.optimizer, self.scheduler, group_names, self.config)
        _restore_rng(state["rng"], self.info.device)
        self.step = int(state["step"])
        # Checkpoints before `best_metric` existed kept the best validation loss.
        if state.get("best_metric", "loss") == self.config.train.best_metric:
            self.best_val = float(state.get("best_val", state.get("best_val_loss", math.inf)))
        if self.info.is_main:
            print(f"resuming from {path} at step {self.step}", file=sys.stderr)
            if changes:
                print(f"resume: changed settings (recorded in {self.run_dir / CONFIG_HISTORY}):"
                      f" {describe_changes(changes)}", file=sys.stderr)
        return changes

    def _init_from(self, path: str) -> None:
        initial, _ = load_checkpoint(path, map_location=self.info.device)
        model = self.separator
        try:
            model.load_state_dict(initial.state_dict())
            if self.average is not None:
                self.average.model.load_state_dict(initial.state_dict())
        except RuntimeError as exc:
            raise CheckpointError(
                f"train.init_from={path} holds {initial.model_name} {initial.model_kwargs}, "
                f"which does not fit the configured {model.model_name} {model.model_kwargs}; "
                f"set model.name/model.kwargs to match ({exc})") from None
        if self.info.is_main:
            print(f"initialised from {path}", file=sys.stderr)

    @property
    def evaluated(self) -> Any:
        """The weights validation scores and best.pt holds: the average, else the trained."""
        return self.separator if self.average is None else self.average.model

    def save(self, path: Path, weights: Any = None) -> None:
        """Weights (the trained ones unless `weights` is given), optimiser, scheduler, RNG,
        step and the weight average (main rank), then a barrier."""
        t = self.config.train
        extra = {}
        if self.average is not None and weights is None:  # what a resume needs
            extra["weight_average"] = self.average.state_dict()
        if self.info.is_main:
            save_checkpoint(path, self.separator if weights is None else weights,
                            step=self.step, config=to_dict(self.config),
                            optimizer=self.optimizer.state_dict(),
                            scheduler=self.scheduler.state_dict(),
                            rng=_rng_state(self.info.device), best_metric=t.best_metric,
                            best_val=self.best_val,
                            data={"segment_steps": t.checkpoint_every, "seed": t.seed},
                            **extra)
        distributed.barrier()

    def train_segment(self, total_steps: int, deadline: float, until_step: int | None) -> bool:
        """Steps to the end of the current data segment; True if time or `until_step` ran out."""
        config, t = self.config, self.config.train
        segment_start, segment_end = segment_bounds(config, self.step)
        segment_end = min(segment_end, total_steps)
        if self.fixed_set is not None:
            batches = fixed_mixture_batches(self.fixed_set, self.local_batch,
                                            stream_seed("fixed", t.seed, segment_start,
                                                        self.info.rank))
        else:
            batches = training_loader(self.train_urls, self.spec, self.local_batch,
                                      num_sources_at(config, self.step)
                                      + config.data.silent_sources, t.seed, segment_start,
                                      config.data.num_workers, config.data.distinct_classes,
                                      self.policy)
        # A checkpoint written mid-segment (time limit) resumes by skipping the batches
        # that segment already consumed, so the stream stays identical (their shard failures
        # were counted before the checkpoint).
        for _ in range(self.step - segment_start):
            next(batches)
        window = _LogWindow()
        while self.step < segment_end:
            fetch_start = time.monotonic()
            batch = next(batches)
            window.data_wait = time.monotonic() - fetch_start
            window.shard_failures += report_failures(batch.pop("shard_failures", []),
                                                     self.reported_shards)
            loss, grad_norm = self._optimizer_step(batch)
            window.add(loss)
            if self.step % t.log_every == 0 or self.step == segment_end:
                self._log_train(window, grad_norm, deadline)
                window = _LogWindow()
            if self.step % t.steps_per_epoch == 0 or self.step == total_steps:
                self.validate_and_keep_best()
            if time.monotonic() > deadline or (until_step is not None and self.step >= until_step):
                return True
        return False

    def _optimizer_step(self, batch: dict) -> tuple[float, torch.Tensor]:
        """One mix-and-separate step; returns (loss, gradient norm before clipping)."""
        info, t = self.info, self.config.train
        self.net.train()
        self.step_fn.train()
        generator = torch.Generator(device=info.device)
        generator.manual_seed(stream_seed("gains", t.seed, self.step, info.rank))
        out = self.step_fn(self.net, batch, info.device, generator, self.amp)
        loss_value = out.loss.detach()
        if not torch.isfinite(distributed.all_reduce_mean(loss_value)):
            raise NonFiniteLossError(
                f"loss is {loss_value.item()} at step {self.step + 1} (batch keys "
                f"{batch['keys'][0]}...); the last good checkpoint is {self.run_dir / CHECKPOINT}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(),
                                                   max_grad_norm(self.config))
        self.optimizer.step()
        if self.average is not None:
            self.average.update()
        self.scheduler.step()
        self.step += 1
        self.bar.update(1)
        return loss_value.item(), grad_norm

    def _log_train(self, window: _LogWindow, grad_norm: torch.Tensor, deadline: float) -> None:
        elapsed = time.monotonic() - window.start
        record = {"step": self.step, "kind": "train", "loss": window.loss / window.count,
                  "grad_norm": float(grad_norm), "lr": self.scheduler.get_last_lr()[-1],
                  "mixtures_per_s": window.count * self.config.train.batch_size
                  / max(elapsed, 1e-9),
                  "data_wait_s": window.data_wait,
                  "shard_failures": _sum_over_ranks(window.shard_failures, self.info),
                  "num_sources": num_sources_at(self.config, self.step - 1)}
        self.tracker.log(record)
        postfix = {"loss": f"{record['loss']:.4f}", "mix_per_s": f"{record['mixtures_per_s']:.1f}"}
        if math.isfinite(deadline):  # the bar's ETA counts all epochs, not this
            postfix["time_left"] = f"{max(deadline - time.monotonic(), 0) / 60:.1f}min"
        self.bar.set_postfix(postfix)

    def validate_and_keep_best(self) -> dict:
        """Validate, log, and write best.pt when this is the best score so far."""
        self.last_val = validate(self.evaluated, self.step_fn, self.val_set, self.info,
                                 self.local_batch, self.amp)
        self.tracker.log({"step": self.step, "kind": "val", **self.last_val})
        self.tracker.plot()
        score = best_score(self.last_val, self.config.train.best_metric)
        if score < self.best_val:
            self.best_val = score
            self.save(self.run_dir / BEST, self.evaluated)
        return self.last_val


class _LogWindow:
    """Training losses since the last log record."""

    def __init__(self) -> None:
        self.loss, self.count, self.start, self.data_wait = 0.0, 0, time.monotonic(), 0.0
        self.shard_failures = 0  # shard reads that failed (and were skipped) in this window

    def add(self, loss: float) -> None:
        self.loss += loss
        self.count += 1


def _sum_over_ranks(count: int, info) -> int:
    """`count` summed over all ranks (every rank must call this)."""
    if not info.distributed:
        return count
    mean = distributed.all_reduce_mean(torch.tensor(float(count), device=info.device))
    return round(mean.item() * info.world_size)
