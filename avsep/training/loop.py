"""The training loop: DDP from 1 to N processes, checkpoints and exact resume, validation.

`run_training` builds the run (`_Run.build`: model, optimiser, resumed or initialised state,
data) and trains it segment by segment (`avsep.training.data`), writing checkpoint.pt at
the end of each segment and best.pt when validation, at each epoch's end, finds the best
score so far (`avsep.training.checkpoints`). Start runs with `avsep.training.train`, which
checks the config and the data first.

With `train.weight_average` the loop also keeps a running average of the weights
(`avsep.training.averaging`): validation scores it and best.pt holds it; checkpoint.pt holds
the trained weights with the average beside them, so a resumed run continues both.

Mixing gains are drawn from a generator seeded by (seed, step, rank), and each data segment's
stream from (seed, segment, rank, worker). A run resumed from any checkpoint therefore
computes the same losses as an uninterrupted run with the same seed. A resume compares the
configuration with the one the checkpoint recorded before it writes anything
(`avsep.training.resume`).
"""

from __future__ import annotations

import gc
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from avsep import create_model, distributed
from avsep.checkpoint import save_checkpoint
from avsep.config import to_dict
from avsep.data.solos import stream_seed
from avsep.distributed import DistInfo
from avsep.run_config import RunConfig
from avsep.sources import report_failures
from avsep.training.averaging import WeightAverage
from avsep.training.checkpoints import (
    BEST,
    CHECKPOINT,
    best_score,
    best_so_far,
    load_initial_weights,
    restore_rng,
    restore_training_state,
    rng_state,
    write_run_files,
)
from avsep.training.data import RunData, num_sources_at, segment_bounds
from avsep.training.optim import (
    autocast_dtype,
    budget_decay_due,
    build_optimizer,
    build_scheduler,
    max_grad_norm,
)
from avsep.training.resume import (
    CONFIG_HISTORY,
    SCHEDULE_KEYS,
    allowed_changes,
    describe_changes,
    read_resume_checkpoint,
    set_schedule,
)
from avsep.training.step import MixAndSeparate
from avsep.training.tracking import Tracker
from avsep.training.validate import validate


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite."""


def run_training(config: RunConfig, run_dir: Path, info: DistInfo, resume: bool,
                 progress: bool, until_step: int | None) -> dict[str, Any]:
    """Build the run in `run_dir` (resumed from its checkpoint.pt when `resume`) and train
    it to the end, the time limit or `until_step`; returns the summary of
    `avsep.training.train`."""
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
        # The last segment's loader iterator sits in a reference cycle: collect it now, so
        # its worker processes end here and are not copied into processes a caller forks
        # next (where its clean-up fails with "can only test a child process").
        gc.collect()
    if not run.last_val:  # e.g. stopped by the time limit before an epoch ended
        run.validate()
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
    data: RunData
    tracker: Tracker
    average: WeightAverage | None  # train.weight_average: the averaged weights

    def __init__(self, config: RunConfig, run_dir: Path, info: DistInfo) -> None:
        self.config, self.run_dir, self.info = config, run_dir, info
        self.local_batch = config.train.batch_size // info.world_size
        self.step, self.best_val = 0, math.inf
        self.last_val: dict[str, float] = {}
        self.reported_shards: set[str] = set()  # failed shards already printed
        self.start_time = time.monotonic()
        self.bar = tqdm(disable=True)

    @classmethod
    def build(cls, config: RunConfig, run_dir: Path, info: DistInfo, resume: bool) -> _Run:
        """Model, optimiser and scheduler (resumed or initialised), the run's files, data."""
        run, t = cls(config, run_dir, info), config.train
        checkpoint = run_dir / CHECKPOINT
        # Read before building anything, and write nothing until it is loaded: a refused or
        # failed resume leaves the run directory as it was (config.yaml still describes the
        # checkpoint's run).
        payload = (read_resume_checkpoint(checkpoint, info.device, run_dir / BEST)
                   if resume and checkpoint.exists() else None)
        torch.manual_seed(stream_seed("init", t.seed))  # same initial weights on every rank
        run.separator = create_model(config.model.name, **config.model.kwargs).to(info.device)
        run.data = RunData(config)
        run.data.check_sample_rate(run.separator.sample_rate)
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
            load_initial_weights(t.init_from, run.separator, run.average, info.device)
            if info.is_main:
                print(f"initialised from {t.init_from}", file=sys.stderr)
        if info.is_main:
            write_run_files(run_dir, config, run.step, changes)
        distributed.barrier()
        run._prepare_net()
        run.step_fn = MixAndSeparate(run.separator, config.data.mixing).to(info.device)
        run.amp = autocast_dtype(config, info.device)
        run.data.load_sets(info.is_main)
        run.tracker = Tracker(run_dir, to_dict(config), t.wandb, t.wandb_project,
                              enabled=info.is_main)
        val_set = run.data.val_set
        run.tracker.log({"step": run.step, "kind": "val_set", "mixtures": len(val_set["keys"]),
                         "samples": val_set["samples"], "too_short": val_set["too_short"]})
        return run

    def _prepare_net(self) -> None:
        """The memory layout, the DDP wrapper and compilation the config asks for."""
        t = self.config.train
        if t.channels_last:
            # On every device: the same arithmetic in another memory layout. It makes the
            # demo's CPU step faster (`benchmarks/train.py --channels-last`), and on GPUs it
            # is what bf16 convolutions want.
            self.separator = self.separator.to(memory_format=torch.channels_last)
            if self.average is not None:
                self.average.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net = (DistributedDataParallel(
            self.separator, find_unused_parameters=self.separator.find_unused_parameters)
            if self.info.distributed else self.separator)
        if t.compile:
            self.net = torch.compile(self.net)

    def _resume(self, path: Path, payload: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Restore the checkpoint `payload` read from `path`; returns the settings changed.

        Raises:
            ResumeConfigError: the config changes settings outside `RESUME_SAFE` (nothing
                is restored).
            CheckpointError: the checkpoint's state does not fit this run.
        """
        changes = allowed_changes(self.config, self.separator, payload, path)
        group_names = [group["name"] for group in self.optimizer.param_groups]
        restore_training_state(path, payload, self.separator, self.average, self.optimizer,
                               self.scheduler)
        if SCHEDULE_KEYS & set(changes):
            set_schedule(self.optimizer, self.scheduler, group_names, self.config)
        restore_rng(payload["rng"], self.info.device)
        self.step = int(payload["step"])
        self.best_val = best_so_far(payload, self.config.train.best_metric)
        if self.info.is_main:
            print(f"resuming from {path} at step {self.step}", file=sys.stderr)
            if changes:
                print(f"resume: changed settings (recorded in {self.run_dir / CONFIG_HISTORY}):"
                      f" {describe_changes(changes)}", file=sys.stderr)
        return changes

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
                            rng=rng_state(self.info.device), best_metric=t.best_metric,
                            best_val=self.best_val,
                            data={"segment_steps": t.checkpoint_every, "seed": t.seed},
                            **extra)
        distributed.barrier()

    def train_segment(self, total_steps: int, deadline: float, until_step: int | None) -> bool:
        """Steps to the end of the current data segment; True if time or `until_step` ran out."""
        t = self.config.train
        segment_end = min(segment_bounds(self.config, self.step)[1], total_steps)
        batches = self.data.segment_batches(self.step, self.local_batch, self.info.rank)
        window = _LogWindow()
        while self.step < segment_end:
            fetch_start = time.monotonic()
            batch = next(batches)
            window.data_wait = time.monotonic() - fetch_start
            window.shard_failures += report_failures(batch.pop("shard_failures", []),
                                                     self.reported_shards)
            if t.max_minutes > 0 and self.config.optim.lr_budget_fractions:
                self._schedule_by_budget(deadline)
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

    def _schedule_by_budget(self, deadline: float) -> None:
        """Decay the rates at this step when the next of `optim.lr_budget_fractions` of the
        time budget has passed: a milestone at the step the scheduler is about to take,
        which checkpoints keep. Every rank decides on the same (mean) clock reading."""
        budget = 60 * self.config.train.max_minutes
        elapsed = torch.tensor(time.monotonic() - (deadline - budget), device=self.info.device)
        share = float(distributed.all_reduce_mean(elapsed)) / budget
        if budget_decay_due(self.config, sum(self.scheduler.milestones.values()), share):
            self.scheduler.milestones[self.step + 1] += 1

    def _optimizer_step(self, batch: dict[str, Any]) -> tuple[float, torch.Tensor]:
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

    def validate(self) -> dict[str, float]:
        """Validate the evaluated weights on the fixed set and log the result."""
        self.last_val = validate(self.evaluated, self.step_fn, self.data.val_set, self.info,
                                 self.local_batch, self.amp)
        self.tracker.log({"step": self.step, "kind": "val", **self.last_val})
        return self.last_val

    def validate_and_keep_best(self) -> dict[str, float]:
        """Validate, log, and write best.pt when this is the best score so far."""
        self.validate()
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


def _sum_over_ranks(count: int, info: DistInfo) -> int:
    """`count` summed over all ranks (every rank must call this)."""
    if not info.distributed:
        return count
    mean = distributed.all_reduce_mean(torch.tensor(float(count), device=info.device))
    return round(mean.item() * info.world_size)
