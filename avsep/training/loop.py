"""The training loop: DDP from 1 to N processes, checkpoints and exact resume, validation.

Step `s` means `s` optimiser steps are done. The data stream is cut into segments of
`checkpoint_every` steps (see `avsep.data.solos`); mixing gains are drawn from a generator
seeded by (seed, step, rank). A run resumed from any checkpoint therefore computes the same
losses as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from avsep import create_model
from avsep.checkpoint import load_checkpoint, save_checkpoint
from avsep.config import save_config, to_dict
from avsep.data.clips import ClipSpec, clip_spec_from_config
from avsep.data.solos import shard_urls, stream_seed, training_loader, validation_mixtures
from avsep.training import distributed
from avsep.training.config import RunConfig
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
    return torch.optim.Adam(param_groups, weight_decay=o.weight_decay)


def build_scheduler(optimizer, config: RunConfig):
    milestones = [int(e) * config.train.steps_per_epoch for e in config.optim.lr_milestones]
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=config.optim.lr_decay)


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


def validation_shard_urls(root: str | Path) -> list[str]:
    """The val shards of a prepared Solos folder; when there are none, say why and what to do.

    Raises:
        FileNotFoundError: no val shards (with the reason when the train shards exist).
    """
    try:
        return shard_urls(root, "val")
    except FileNotFoundError:
        train = shard_urls(root, "train")  # raises the generic message if this is missing too
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
    local_batch = t.batch_size // info.world_size
    total_steps = t.epochs * t.steps_per_epoch
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        (run_dir / "git_commit.txt").write_text((git_commit() or "unknown") + "\n")
    distributed.barrier()

    torch.manual_seed(stream_seed("init", t.seed))  # same initial weights on every rank
    model = create_model(config.model.name, **config.model.kwargs).to(info.device)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    step, best_val = 0, math.inf
    checkpoint_path = run_dir / CHECKPOINT
    if resume and checkpoint_path.exists():
        loaded, state = load_checkpoint(checkpoint_path, map_location=info.device)
        model.load_state_dict(loaded.state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _restore_rng(state["rng"], info.device)
        step = int(state["step"])
        # Checkpoints before `best_metric` existed kept the best validation loss.
        if state.get("best_metric", "loss") == t.best_metric:
            best_val = float(state.get("best_val", state.get("best_val_loss", math.inf)))
        if info.is_main:
            print(f"resuming from {checkpoint_path} at step {step}", file=sys.stderr)
    elif t.init_from:
        initial, _ = load_checkpoint(t.init_from, map_location=info.device)
        try:
            model.load_state_dict(initial.state_dict())
        except RuntimeError as exc:
            raise ValueError(
                f"train.init_from={t.init_from} holds {initial.model_name} "
                f"{initial.model_kwargs}, which does not fit the configured {model.model_name} "
                f"{model.model_kwargs}; set model.name/model.kwargs to match ({exc})") from None
        if info.is_main:
            print(f"initialised from {t.init_from}", file=sys.stderr)
    if info.device.type == "cuda" and t.channels_last:
        model = model.to(memory_format=torch.channels_last)

    separator = model
    net = (DistributedDataParallel(
        model, find_unused_parameters=model.find_unused_parameters)
        if info.distributed else model)
    if t.compile:
        net = torch.compile(net)
    step_fn = MixAndSeparate(separator, config.data.mixing).to(info.device)
    amp = autocast_dtype(config, info.device)

    spec = clip_spec(config)
    train_urls = shard_urls(config.data.path, "train")
    val_set = validation_mixtures(validation_shard_urls(config.data.path), spec,
                                  config.data.num_sources, config.data.val_mixtures, seed=t.seed,
                                  distinct_classes=config.data.distinct_classes)
    if val_set["too_short"] and info.is_main:
        print(f"validation: {val_set['too_short']} of {val_set['samples']} samples are shorter "
              f"than one clip ({spec.clip_samples} audio samples) and are left out",
              file=sys.stderr)
    tracker = Tracker(run_dir, to_dict(config), t.wandb, t.wandb_project, enabled=info.is_main)
    tracker.log({"step": step, "kind": "val_set", "mixtures": len(val_set["keys"]),
                 "samples": val_set["samples"], "too_short": val_set["too_short"]})
    start_time = time.monotonic()
    deadline = start_time + 60 * t.max_minutes if t.max_minutes > 0 else math.inf
    bar = tqdm(total=total_steps, initial=step, disable=not (progress and info.is_main),
               desc="train", unit="step", dynamic_ncols=True)
    last_val: dict = {}
    stopped_early = False

    def save(path: Path) -> None:
        if info.is_main:
            save_checkpoint(path, separator, step=step, config=to_dict(config),
                            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                            rng=_rng_state(info.device), best_metric=t.best_metric,
                            best_val=best_val,
                            data={"segment_steps": t.checkpoint_every, "seed": t.seed})
        distributed.barrier()

    try:
        while step < total_steps and not stopped_early:
            segment_start, segment_end = segment_bounds(config, step)
            segment_end = min(segment_end, total_steps)
            batches = training_loader(train_urls, spec, local_batch, num_sources_at(config, step),
                                      t.seed, segment_start, config.data.num_workers,
                                      config.data.distinct_classes)
            # A checkpoint written mid-segment (time limit) resumes by skipping the batches
            # that segment already consumed, so the stream stays identical.
            for _ in range(step - segment_start):
                next(batches)
            window_loss, window_count, window_start = 0.0, 0, time.monotonic()
            while step < segment_end:
                fetch_start = time.monotonic()
                batch = next(batches)
                data_wait = time.monotonic() - fetch_start
                net.train()
                step_fn.train()
                generator = torch.Generator(device=info.device)
                generator.manual_seed(stream_seed("gains", t.seed, step, info.rank))
                out = step_fn(net, batch, info.device, generator, amp)
                loss_value = out.loss.detach()
                if not torch.isfinite(distributed.all_reduce_mean(loss_value)):
                    raise NonFiniteLossError(
                        f"loss is {loss_value.item()} at step {step + 1} (batch keys "
                        f"{batch['keys'][0]}...); the last good checkpoint is {checkpoint_path}"
                    )
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), config.optim.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                window_loss += loss_value.item()
                window_count += 1
                bar.update(1)
                if step % t.log_every == 0 or step == segment_end:
                    elapsed = time.monotonic() - window_start
                    record = {"step": step, "kind": "train", "loss": window_loss / window_count,
                              "grad_norm": float(grad_norm), "lr": scheduler.get_last_lr()[-1],
                              "mixtures_per_s": window_count * t.batch_size / max(elapsed, 1e-9),
                              "data_wait_s": data_wait,
                              "num_sources": num_sources_at(config, step - 1)}
                    tracker.log(record)
                    postfix = {"loss": f"{record['loss']:.4f}",
                               "mix_per_s": f"{record['mixtures_per_s']:.1f}"}
                    if math.isfinite(deadline):  # the bar's ETA counts all epochs, not this
                        postfix["time_left"] = f"{max(deadline - time.monotonic(), 0) / 60:.1f}min"
                    bar.set_postfix(postfix)
                    window_loss, window_count, window_start = 0.0, 0, time.monotonic()
                if step % t.steps_per_epoch == 0 or step == total_steps:
                    last_val = validate(separator, step_fn, val_set, info, local_batch, amp)
                    tracker.log({"step": step, "kind": "val", **last_val})
                    tracker.plot()
                    score = best_score(last_val, t.best_metric)
                    if score < best_val:
                        best_val = score
                        save(run_dir / BEST)
                if time.monotonic() > deadline or (until_step is not None and step >= until_step):
                    stopped_early = True
                    break
            save(checkpoint_path)
    finally:
        bar.close()
        tracker.close()
    if not last_val:  # e.g. stopped by the time limit before an epoch ended
        last_val = validate(separator, step_fn, val_set, info, local_batch, amp)
        tracker.log({"step": step, "kind": "val", **last_val})
    if info.is_main:
        tracker.plot()
    return {"rank": info.rank, "step": step, "stopped_early": stopped_early,
            "minutes": (time.monotonic() - start_time) / 60, **{f"val_{k}": v for k, v in last_val.items()}}


def with_overrides(config: RunConfig, **train_fields) -> RunConfig:
    """A copy of `config` with some `train` fields replaced (used by tests and the demo)."""
    return replace(config, train=replace(config.train, **train_fields))
