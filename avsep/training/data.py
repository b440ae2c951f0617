"""The data of a training run: its shards, the fixed validation set (and the fixed training
set of `data.fixed_mixtures`), and the batches of each data segment.

Step `s` means `s` optimiser steps are done. The data stream is cut into segments of
`checkpoint_every` steps, which also break where the curriculum changes the number of
sources; the stream of a segment is a pure function of (seed, its first step, rank, worker)
(`avsep.data.solos`), so a run resumed at any step reads what an uninterrupted run reads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avsep.config import ConfigError
from avsep.data.solos import (
    check_shard_rate,
    fixed_mixture_batches,
    shard_urls,
    stream_seed,
    training_loader,
    validation_mixtures,
)
from avsep.faults import InputError
from avsep.run_config import RunConfig
from avsep.sources import DEFAULT_POLICY, ReadPolicy, ShardReadError


class ShardListError(InputError, OSError):
    """The run's shards could not be listed when it started (nothing was built yet)."""


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


def check_data(config: RunConfig) -> None:
    """What can be checked of a run's data before anything is built: a data path, settings
    that go together, train and val shards that exist.

    Raises:
        ConfigError: no `data.path`; `data.fixed_mixtures` with a curriculum.
        FileNotFoundError: no train or no val shards (saying why and what to do).
        ShardListError: the shard list or index could not be read.
    """
    data = config.data
    if not data.path:
        if data.dataset == "synthetic":
            raise ConfigError("data.dataset=synthetic: data.path must name the stand-in's "
                              "prepared Solos shards (`avsep train --dataset synthetic` makes "
                              "them, as does avsep.workflows.standin.ensure_standin)")
        raise ConfigError(f"--data SHARDS is required with --dataset {data.dataset} "
                          f"(the output of `avsep prepare {data.dataset}`)")
    if data.fixed_mixtures and data.curriculum:
        raise ConfigError("data.fixed_mixtures cannot follow a curriculum (the set has one "
                          "number of sources)")
    policy = read_policy(config)
    try:
        shard_urls(data.path, "train", policy)
        validation_shard_urls(data.path, policy)
    except ShardReadError as exc:
        if isinstance(exc, InputError):
            raise
        raise ShardListError(str(exc)) from None


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


class RunData:
    """The shards of a run (listed when it is made) and the fixed sets built from them.

    Attributes:
        spec: the clip geometry (`data.clip`).
        val_set: the validation mixtures (`validation_mixtures`), after `load_sets`.
        fixed_set: with `data.fixed_mixtures`, the mixtures every step draws from.
    """

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.spec = config.data.clip
        self.policy = read_policy(config)
        self.train_urls = shard_urls(config.data.path, "train", self.policy)
        self.val_urls = validation_shard_urls(config.data.path, self.policy)
        self.val_set: dict[str, Any] = {}
        self.fixed_set: dict[str, Any] | None = None

    def check_sample_rate(self, rate: int) -> None:
        """Check that the clips and the first train and val shards are at `rate` Hz (the
        model's).

        Raises:
            ConfigError: `data.clip.sample_rate` is another rate.
            ShardFormatError: a shard's header gives another rate (naming both).
        """
        if self.spec.sample_rate != rate:
            raise ConfigError(f"data.clip.sample_rate is {self.spec.sample_rate} Hz; the model "
                              f"works at {rate} Hz")
        check_shard_rate(self.train_urls[0], rate, self.policy)
        check_shard_rate(self.val_urls[0], rate, self.policy)

    def load_sets(self, is_main: bool) -> None:
        """Build the validation set (and the fixed training set), reading their shards."""
        config, data = self.config, self.config.data
        if data.fixed_mixtures:
            self.fixed_set = validation_mixtures(
                self.train_urls, self.spec, data.num_sources, data.fixed_mixtures,
                seed=config.train.seed, distinct_classes=data.distinct_classes,
                policy=self.policy, same_class_share=data.same_class_share)
        self.val_set = validation_mixtures(
            self.val_urls, self.spec, data.num_sources, data.val_mixtures,
            seed=config.train.seed, distinct_classes=data.distinct_classes, policy=self.policy,
            same_class_share=data.same_class_share)
        if self.val_set["too_short"] and is_main:
            print(f"validation: {self.val_set['too_short']} of {self.val_set['samples']} "
                  f"samples are shorter than one clip ({self.spec.clip_samples} audio samples) "
                  "and are left out", file=sys.stderr)

    def segment_batches(self, step: int, local_batch: int, rank: int) -> Iterator[dict[str, Any]]:
        """This rank's batches of the data segment containing `step`, from `step` on.

        A checkpoint written mid-segment (by the time limit) resumes by reading and dropping
        the batches that segment already gave, so the stream stays identical (their shard
        failures were counted before the checkpoint).
        """
        config, seed = self.config, self.config.train.seed
        start, _ = segment_bounds(config, step)
        batches: Iterator[dict[str, Any]]
        if self.fixed_set is not None:
            batches = fixed_mixture_batches(self.fixed_set, local_batch,
                                            stream_seed("fixed", seed, start, rank))
        else:
            batches = training_loader(self.train_urls, self.spec, local_batch,
                                      num_sources_at(config, step), seed, start,
                                      config.data.num_workers, config.data.distinct_classes,
                                      self.policy, config.data.same_class_share)
        for _ in range(step - start):
            next(batches)
        return batches
