"""Training and validation streams over prepared Solos shards.

Training follows webdataset's multi-node recipe: shards are *resampled* (an infinite stream
with replacement), seeded per node and per worker so every rank and every DataLoader worker
reads a different stream, and each sample yields one random clip. Clips are then grouped into
mixtures of `num_sources` clips from different videos (and, by default, different classes)
and batched inside the workers; mixing itself happens on the device (`avsep.mixing`).

Reproducibility and resume: the stream is cut into *segments* of a fixed number of steps; the
stream of segment `s` is a pure function of `(seed, s, rank, worker)`. A run that resumes at
the start of segment `s` therefore sees exactly the batches an uninterrupted run sees.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from typing import Any, cast

import numpy as np
import torch
import webdataset as wds

from avsep.data.clips import ClipSpec, sample_clip, sample_header
from avsep.shard_format import check_sample_rate
from avsep.sources import (
    DEFAULT_POLICY,
    FailureLog,
    ReadPolicy,
    dataset_shards,
    read_shards,
    shard_samples,
)


def shard_urls(root: str | os.PathLike, split: str,
               policy: ReadPolicy = DEFAULT_POLICY) -> list[str]:
    """Sorted shard URLs of `split` ("train" or "val") of a prepared Solos dataset: a local
    folder, a URL prefix, a shard list or a brace pattern (see `avsep.sources`)."""
    try:
        return dataset_shards(root, split, policy)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc} (expected the output of `avsep prepare solos --out {root}`)") from None


def check_shard_rate(url: str, rate: int, policy: ReadPolicy = DEFAULT_POLICY) -> None:
    """Check that shard `url` holds audio at `rate` Hz (what the model works at), from the
    header of its first sample; an empty shard passes.

    Raises:
        ShardFormatError: another rate or none, e.g. "data: shard URL has audio at 22050 Hz,
            the model expects 11025 Hz"; or a first sample that is not in the format.
        ShardReadError: the shard cannot be read.
    """
    # A generator (closing it closes the shard at once), though typed as an iterator.
    with closing(cast(Generator[dict, None, None], shard_samples(url, policy))) as samples:
        for sample in samples:
            check_sample_rate(sample_header(sample), rate, f"data: shard {url}")
            return


def stream_seed(*parts: object) -> int:
    """A 63-bit seed that is a pure function of `parts` (unlike Python's salted hash())."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _worker_identity() -> tuple[int, int]:
    rank, _, worker, _ = wds.utils.pytorch_worker_info()
    return rank, worker


class MixtureGrouper:
    """Groups a stream of clips into mixtures of `num_sources` compatible clips.

    Clips of one mixture come from different videos and, with `distinct_classes`, from
    different instrument classes. With `same_class_share` p > 0, each new mixture is, with
    probability p, one of a single class instead (players of the same instrument, which only
    motion tells apart); the draw is seeded by `seed` and the loader worker. A clip that fits
    no open group opens a new one; groups are emitted in the order they fill, so the output
    is a deterministic function of the input and the seed.
    """

    def __init__(self, num_sources: int, distinct_classes: bool = True, max_pending: int = 2048,
                 same_class_share: float = 0.0, seed: int = 0):
        if num_sources < 1:
            raise ValueError(f"num_sources must be >= 1, got {num_sources}")
        if not 0.0 <= same_class_share <= 1.0:
            raise ValueError(f"same_class_share must be in [0, 1], got {same_class_share}")
        self.num_sources = num_sources
        self.distinct_classes = distinct_classes
        self.max_pending = max_pending
        self.same_class_share = same_class_share
        self.seed = seed

    def _fits(self, group: list[dict], clip: dict, same: bool) -> bool:
        for other in group:
            if other["video_id"] == clip["video_id"]:
                return False
            if same and other["class_index"] != clip["class_index"]:
                return False
            if not same and self.distinct_classes and other["class_index"] == clip["class_index"]:
                return False
        return True

    def __call__(self, clips: Iterable[dict]) -> Iterator[list[dict]]:
        rng = random.Random(stream_seed("groups", self.seed, *_worker_identity()))
        open_groups: list[tuple[list[dict], bool]] = []  # (clips, of a single class)
        pending = 0
        for clip in clips:
            for group, same in open_groups:
                if self._fits(group, clip, same):
                    group.append(clip)
                    break
            else:
                group = [clip]
                same = bool(self.same_class_share) and rng.random() < self.same_class_share
                open_groups.append((group, same))
            pending += 1
            if len(group) == self.num_sources:
                open_groups.remove((group, same))
                pending -= self.num_sources
                yield group
            elif pending > self.max_pending:
                classes = sorted({c["class_index"] for g, _ in open_groups for c in g})
                videos = len({c["video_id"] for g, _ in open_groups for c in g})
                raise ValueError(
                    f"cannot form mixtures of {self.num_sources} sources from "
                    f"{'different classes and ' if self.distinct_classes else ''}different videos"
                    f"{' (or one class, data.same_class_share)' if self.same_class_share else ''}"
                    f": {pending} clips wait, from {videos} videos of classes {classes}. "
                    "Use fewer sources, or set data.distinct_classes=false."
                )


def collate_mixtures(groups: list[list[dict]]) -> dict[str, torch.Tensor | list]:
    """Groups of clips -> a batch.

    Returns:
        `audio` float32 (B, N, clip_samples), `frames` uint8 (B, N, 3, T, S, S),
        `class_index` int64 (B, N), `keys` list of B lists of N sample keys.
    """
    return {
        "audio": torch.from_numpy(np.stack([[c["audio"] for c in g] for g in groups])),
        "frames": torch.from_numpy(np.stack([[c["frames"] for c in g] for g in groups])),
        "class_index": torch.tensor([[c["class_index"] for c in g] for g in groups]),
        "keys": [[c["key"] for c in g] for g in groups],
    }


def _random_clips(seed: int, segment: int, spec: ClipSpec, shuffle_buffer: int):
    """A pipeline stage: raw samples -> shuffled random clips, seeded per rank and worker."""

    def stage(samples: Iterable[dict]) -> Iterator[dict]:
        rng = random.Random(stream_seed("clips", seed, segment, *_worker_identity()))
        buffer: list[dict] = []
        for sample in samples:
            buffer.append(sample_clip(sample, spec, rng))
            if len(buffer) >= shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        # The resampled stream is infinite; this is only reached by finite test streams.
        rng.shuffle(buffer)
        yield from buffer

    return stage


def training_stream(
    urls: list[str],
    spec: ClipSpec,
    batch_size: int,
    num_sources: int,
    seed: int,
    segment: int,
    distinct_classes: bool = True,
    shuffle_buffer: int = 64,
    policy: ReadPolicy = DEFAULT_POLICY,
    same_class_share: float = 0.0,
) -> wds.DataPipeline:
    """An infinite stream of training batches (see `collate_mixtures`) for one segment.

    A shard that cannot be read after `policy.attempts` tries is skipped; the batch that
    follows carries it in `shard_failures` (a list of (url, reason)), so the loop reports and
    counts it. When every shard read in a long row fails, the stream raises ShardReadError.
    """
    shard_seed = stream_seed("shards", seed, segment)
    failures = FailureLog()  # the reader and the last stage share it inside one worker
    return wds.DataPipeline(
        wds.ResampledShards(urls, seed=shard_seed % (2**31), deterministic=True),
        read_shards(policy, failures, give_up_after=2 * len(urls) + 8),
        _random_clips(seed, segment, spec, shuffle_buffer),
        MixtureGrouper(num_sources, distinct_classes, same_class_share=same_class_share,
                       seed=stream_seed("mixtures", seed, segment)),
        wds.batched(batch_size, collation_fn=collate_mixtures, partial=False),
        wds.map(failures.attach),
    )


def training_loader(
    urls: list[str],
    spec: ClipSpec,
    batch_size: int,
    num_sources: int,
    seed: int,
    segment: int,
    num_workers: int,
    distinct_classes: bool = True,
    policy: ReadPolicy = DEFAULT_POLICY,
    same_class_share: float = 0.0,
) -> Iterator[dict]:
    """Batches of one segment from `num_workers` DataLoader workers (0: in-process)."""
    stream = training_stream(urls, spec, batch_size, num_sources, seed, segment, distinct_classes,
                             policy=policy, same_class_share=same_class_share)
    loader = wds.WebLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if num_workers > 0 else None,
    )
    return iter(loader)


def fixed_mixture_batches(mixtures: dict, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless batches drawn from a fixed set of mixtures (`validation_mixtures` output):
    each pass over the set is a fresh permutation from `seed`; a batch never straddles two
    passes, so every mixture is seen once per pass (the last partial batch is dropped).

    Yields: the `collate_mixtures` layout with `batch_size` rows.
    """
    count = len(mixtures["keys"])
    if count < batch_size:
        raise ValueError(f"a fixed set of {count} mixtures cannot fill a batch of {batch_size}")
    generator = torch.Generator().manual_seed(seed % 2**63)
    while True:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - batch_size + 1, batch_size):
            rows = order[start:start + batch_size]
            yield {"audio": mixtures["audio"][rows], "frames": mixtures["frames"][rows],
                   "class_index": mixtures["class_index"][rows],
                   "keys": [mixtures["keys"][i] for i in rows.tolist()]}


def validation_mixtures(
    urls: list[str],
    spec: ClipSpec,
    num_sources: int,
    count: int,
    seed: int = 0,
    distinct_classes: bool = True,
    policy: ReadPolicy = DEFAULT_POLICY,
    same_class_share: float = 0.0,
) -> dict[str, Any]:
    """A fixed validation set: `count` mixtures built from the centre clip of each sample.

    Clips are read in shard order, shuffled with `seed` and grouped like training batches, so
    the set depends only on the shards, `count` and `seed`. Samples shorter than one clip
    cannot be used; they are counted in `too_short` (the caller reports them). A shard that
    cannot be read is an error (ShardReadError naming it): the set must not depend on luck.

    Returns:
        `collate_mixtures` of the groups, plus `too_short` (int) and `samples` (int, read).
    """
    clips, too_short, samples = [], 0, 0
    for sample in wds.DataPipeline(
        wds.SimpleShardList(urls), read_shards(policy)
    ):
        samples += 1
        if sample_header(sample)["num_samples"] >= spec.clip_samples:
            clips.append(sample_clip(sample, spec, rng=None))
        else:
            too_short += 1
    random.Random(seed).shuffle(clips)
    groups = []
    grouper = MixtureGrouper(num_sources, distinct_classes, max_pending=len(clips) + 1,
                             same_class_share=same_class_share, seed=seed)
    for group in grouper(clips):
        groups.append(group)
        if len(groups) == count:
            break
    if not groups:
        raise ValueError(
            f"the validation shards ({len(urls)} files, {len(clips)} clips) cannot form a single "
            f"mixture of {num_sources} sources"
            + (f" ({too_short} of {samples} samples are shorter than one clip of "
               f"{spec.clip_samples} samples)" if too_short else "")
        )
    return {**collate_mixtures(groups), "too_short": too_short, "samples": samples}
