"""The URMP real-mixture protocol (Solos paper, Table II), with baselines on every segment.

For every piece, every 65535-sample segment and every player, the separator extracts that
player's sound from the real mixture (AuMix), conditioned on the player's video crop
(`condition_kind == "frames"`: 3 frames 24 apart around the segment's centre, evaluation
transform) or on the player's instrument class (`condition_kind == "classes"`). Audio is
rebuilt with the mixture phase (`Separator.separate`). All players of a segment are scored
together as the N sources of BSS-eval (SDR, SIR, SAR), and each alone with SI-SDR, against
the player's AuSep stem, on the segment's real samples only.

Beside the model, the same segments are scored for the unprocessed mixture (the estimate of
every player is the mixture) and for the ideal binary and ratio masks (oracle upper bounds).

A segment is skipped, and counted by reason, when any player's reference is silent
(`silent_reference`), any of the model's estimates is (`silent_estimate`), or any baseline
estimate is (`silent_baseline_estimate`), so every method is scored on the same segments
(`avsep.metrics.is_silent`, The Sound of Pixels' rule; `avsep.evaluation.scoring`).

Under torchrun, segments are dealt to ranks (segment i to rank i % world_size); the scores
are gathered on every rank and rank 0 alone writes files (`avsep.evaluation.runner`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from avsep.evaluation.reader import (
    SegmentEntry,
    UrmpSegment,
    index_urmp_shards,
    read_segment,
    select_pieces,
)
from avsep.evaluation.runner import EvaluationProtocol, EvaluationResult, RunOptions, run_protocol
from avsep.geometry import ClipSpec
from avsep.sources import DEFAULT_POLICY, ReadPolicy


class UrmpProtocol(EvaluationProtocol):
    """Every segment of the chosen pieces (`reader.select_pieces`), in piece order."""

    name = "urmp-real-mixtures"

    def __init__(self, limit_pieces: int | None = None, pieces: Iterable[str] | None = None
                 ) -> None:
        self.limit_pieces, self.pieces = limit_pieces, pieces

    def items(self, files: list[Path], sample_rate: int) -> Sequence[SegmentEntry]:
        return select_pieces(index_urmp_shards(files), self.limit_pieces, self.pieces)

    def reader(self, mine: Sequence[Any], frames: ClipSpec | None, sample_rate: int,
               workers: int) -> Callable[[SegmentEntry], UrmpSegment]:
        return partial(read_segment, spec=frames, sample_rate=sample_rate)


def evaluate_urmp(
    separator,
    shard_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    clip_spec: ClipSpec | None = None,
    limit_pieces: int | None = None,
    pieces: Iterable[str] | None = None,
    workers: int = 2,
    progress: bool = True,
    info: dict[str, Any] | None = None,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> EvaluationResult:
    """Evaluate `separator` on URMP real mixtures (see the module docstring).

    Args:
        separator: a model from `avsep.create_model` / `avsep.load_checkpoint`.
        shard_dir: URMP shards (`avsep prepare urmp --out`): a folder, or a URL prefix, a
            shard list or a brace pattern (`avsep.sources`; copied to a temporary folder).
        out_dir: if given, rank 0 writes results.json, segments.csv and results.md there.
        batch_size: segments separated at once (segments are batched by player count).
        device: where to run; default the separator's device.
        clip_spec: frame geometry (`avsep.checkpoint.training_config(...).data.clip`); default
            Sound of Pixels' (224 px, 3 frames, stride 24).
        limit_pieces: evaluate only the first N pieces (after `pieces`).
        pieces: evaluate only these pieces (folder names).
        workers: threads decoding segments ahead of the model (0: none).
        progress: show a tqdm bar (rank 0 only).
        info: extra entries for `result.info` (e.g. the checkpoint path).
        policy: read attempts and delay for remote shards.

    Returns:
        the merged `EvaluationResult` (on every rank). The separator is left in eval mode on
        `device`. Inside a process group every rank must call this (scores are gathered).

    Raises:
        NoUrmpShardsError: `shard_dir` is missing or has no shards.
        ShardFormatError: a shard does not match the URMP shard format, or its audio is
            not at the model's rate.
        ShardReadError: a remote shard could not be read (the message names its URL).
    """
    options = RunOptions(batch_size, device, clip_spec, workers, progress, info, policy)
    return run_protocol(separator, UrmpProtocol(limit_pieces, pieces), shard_dir, out_dir,
                        options)
