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
(`avsep.metrics.is_silent`, The Sound of Pixels' rule).

Under torchrun, segments are dealt to ranks (segment i to rank i % world_size); the scores
are gathered on every rank and rank 0 alone writes files.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avsep import distributed
from avsep.classes import SOLOS_CLASSES, class_index
from avsep.devices import resolve_device
from avsep.evaluation.oracle import IdealMaskSeparator
from avsep.evaluation.reader import (
    SegmentEntry,
    UrmpSegment,
    index_urmp_shards,
    local_shards,
    read_segment,
    select_pieces,
)
from avsep.evaluation.report import write_results
from avsep.evaluation.summary import METHODS, OK, PairScore, summarize_pairs
from avsep.faults import UsageError
from avsep.geometry import ClipSpec, ShardFormatError
from avsep.metrics import bss_eval_sources_sets, is_silent, si_sdr, silent_source_metrics
from avsep.sources import DEFAULT_POLICY, ReadPolicy

SKIP_REASONS = ("silent_reference", "silent_estimate", "silent_baseline_estimate")
SOP_FRAMES = ClipSpec()
"""Sound of Pixels frame geometry: 3 frames, 24 apart at 8 fps, 224 x 224."""


@dataclass
class EvaluationResult:
    """Everything an evaluation produced.

    Attributes:
        pairs: one `PairScore` per (segment, player), skipped segments included, in
            evaluation order.
        skipped: skipped segments per reason (`SKIP_REASONS`).
        segments: segments looked at (scored + skipped).
        info: what was evaluated (model, shards, frame geometry, device, ranks).
        protocol: "urmp-real-mixtures", or "music-solo-pairs" (`avsep.evaluation.music`).
        timing: seconds: `wall` (the slowest rank), `data` (waiting for decoded segments),
            `model`, `oracle` (ideal masks) and `metrics`, summed over ranks.
    """

    pairs: list[PairScore]
    skipped: dict[str, int]
    segments: int
    info: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    protocol: str = "urmp-real-mixtures"

    @property
    def scored_pairs(self) -> list[PairScore]:
        return [p for p in self.pairs if p.status == OK]

    @property
    def scored_segments(self) -> int:
        return self.segments - sum(self.skipped.values())

    def summary(self) -> dict:
        """Statistics overall, per instrument and per piece (see `summarize_pairs`)."""
        return summarize_pairs(self.pairs)

    def to_dict(self) -> dict:
        """A plain dict (the content of results.json, before NaN/inf become null)."""
        return {
            "protocol": self.protocol,
            "info": self.info,
            "counts": {
                "segments": self.segments,
                "scored_segments": self.scored_segments,
                "scored_pairs": len(self.scored_pairs),
                "skipped_segments": dict(self.skipped),
                "pieces": len({p.piece for p in self.pairs}),
            },
            "timing": self.timing,
            **self.summary(),
        }


class _Stopwatch:
    """Accumulates wall time per named phase, waiting for the GPU so that times are real."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def measure(self, name: str, fn: Callable, *args, **kwargs):
        self.sync()
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.sync()
        self.seconds[name] += time.perf_counter() - start
        return out


def _prefetch(entries: Sequence[SegmentEntry], read: Callable[[SegmentEntry], UrmpSegment],
              workers: int, lookahead: int) -> Generator[UrmpSegment, None, None]:
    """Decoded segments in order, read `lookahead` ahead by `workers` threads (JPEG and npy
    decoding release the GIL); `workers == 0` reads in the calling thread."""
    if workers <= 0:
        yield from map(read, entries)
        return
    remaining = iter(entries)
    with ThreadPoolExecutor(workers, thread_name_prefix="urmp-read") as pool:
        pending = deque(pool.submit(read, e) for e in islice(remaining, lookahead))
        while pending:
            segment = pending.popleft().result()
            following = next(remaining, None)
            if following is not None:
                pending.append(pool.submit(read, following))
            yield segment


class SegmentScorer:
    """Separates a batch of segments with the same number of players and scores them.

    Args:
        separator: a `avsep.models.Separator` in eval mode on `device`.
        device: where separation and metrics run.
        stopwatch: collects model / oracle / metric times.
        classes: the class list a class-conditioned model counts in (URMP codes and Solos
            names for SOLOS_CLASSES).
    """

    def __init__(self, separator, device: torch.device, stopwatch: _Stopwatch,
                 classes: tuple[str, ...] = SOLOS_CLASSES) -> None:
        kind = getattr(separator, "condition_kind", None)
        if kind not in ("frames", "classes"):
            raise ValueError(
                f"{type(separator).__name__}: condition_kind {kind!r} is not 'frames' or 'classes'"
            )
        self.separator = separator
        self.condition_kind = kind
        self.device = device
        self.stopwatch = stopwatch
        self.classes = classes
        self.oracle = IdealMaskSeparator.like(separator).to(device)

    def condition(self, segments: Sequence[UrmpSegment]) -> torch.Tensor:
        """(B, P, 3, T_frames, S, S) uint8 frames or (B, P) class indices."""
        if self.condition_kind == "frames":
            stacked = []
            for segment in segments:  # read exactly when the model is frame-conditioned
                assert segment.frames is not None
                stacked.append(segment.frames)
            frames = torch.from_numpy(np.stack(stacked))
            return frames.to(self.device, non_blocking=True)
        indices = []
        for segment in segments:
            try:
                indices.append([class_index(code, self.classes)
                                for code in segment.instruments])
            except ValueError as exc:
                raise ShardFormatError(f"segment {segment.key}: {exc}") from None
        return torch.tensor(indices, dtype=torch.long, device=self.device)

    def __call__(self, segments: Sequence[UrmpSegment], orders: Sequence[int]
                 ) -> tuple[list[PairScore], Counter[str]]:
        mix = torch.from_numpy(np.stack([s.mix for s in segments])).to(self.device)
        stems = torch.from_numpy(np.stack([s.stems for s in segments])).to(self.device)
        condition = self.condition(segments)
        watch = self.stopwatch
        estimates = {"model": watch.measure("model", self.separator.separate, mix, condition)}
        estimates["model"] = estimates["model"].float()
        finite = torch.isfinite(estimates["model"]).flatten(1).all(1).tolist()
        if not all(finite):
            bad = ", ".join(s.key for s, ok in zip(segments, finite) if not ok)
            raise FloatingPointError(f"the model's estimates are not finite for segment(s) {bad}")
        estimates.update(watch.measure("oracle", self.oracle, mix, stems))
        estimates["mixture"] = mix.unsqueeze(1).expand_as(stems)
        stacked = torch.stack([estimates[m] for m in METHODS], dim=1)  # (B, M, P, T)
        return watch.measure("metrics", self._score, segments, orders, stems, stacked)

    def _score(self, segments: Sequence[UrmpSegment], orders: Sequence[int],
               stems: torch.Tensor, stacked: torch.Tensor
               ) -> tuple[list[PairScore], Counter[str]]:
        """Skip rule and metrics on the real samples; batched per valid length."""
        status: list[str] = []
        for b, segment in enumerate(segments):
            valid = segment.valid_samples
            if bool(is_silent(stems[b, :, :valid]).any()):
                status.append("silent_reference")
            elif bool(is_silent(stacked[b, 0, :, :valid]).any()):
                status.append("silent_estimate")
            elif bool(is_silent(stacked[b, 1:, :, :valid]).any()):
                status.append("silent_baseline_estimate")
            else:
                status.append(OK)
        scores: dict[int, dict[str, torch.Tensor]] = {}
        lengths = {s.valid_samples for s, st in zip(segments, status) if st == OK}
        for length in sorted(lengths):
            chosen = [b for b, (s, st) in enumerate(zip(segments, status))
                      if st == OK and s.valid_samples == length]
            ests = stacked[chosen, ..., :length]  # (G, M, P, T)
            refs = stems[chosen, :, :length]  # (G, P, T)
            # One factorisation per segment serves all methods: they share the references.
            metrics = bss_eval_sources_sets(refs, ests.movedim(1, 0))  # (M, G, P)
            metrics = {name: value.movedim(0, 1) for name, value in metrics.items()}
            metrics["si_sdr"] = si_sdr(refs.unsqueeze(1).expand_as(ests), ests)
            metrics = {name: value.cpu() for name, value in metrics.items()}  # (G, M, P)
            for g, b in enumerate(chosen):
                scores[b] = {name: value[g] for name, value in metrics.items()}
        pairs = []
        for b, (segment, order) in enumerate(zip(segments, orders)):
            silent = (self._silent_scores(stems[b], stacked[b], segment.valid_samples)
                      if status[b] == "silent_reference" else {})
            for player, code in enumerate(segment.instruments):
                values = silent.get(player, {})
                if b in scores:
                    values = {
                        method: {name: float(v[m, player]) for name, v in scores[b].items()}
                        for m, method in enumerate(METHODS)
                    }
                pairs.append(PairScore(
                    key=segment.key, piece=segment.piece, segment=segment.segment,
                    start_s=segment.start_s, player=player, instrument=code,
                    valid_samples=segment.valid_samples, status=status[b], scores=values,
                    order=order,
                ))
        return pairs, Counter(st for st in status if st != OK)


    @staticmethod
    def _silent_scores(stems: torch.Tensor, stacked: torch.Tensor, valid: int
                       ) -> dict[int, dict[str, dict[str, float]]]:
        """PES and activity agreement of the model and the mixture for each silent player of
        a skipped segment: {player: {method: {"pes": dB, "inactive": 0 or 1}}}."""
        silent = is_silent(stems[:, :valid])  # (P,)
        mixture = stacked[METHODS.index("mixture"), :, :valid]
        out: dict[int, dict[str, dict[str, float]]] = {}
        for player in torch.nonzero(silent).flatten().tolist():
            out[player] = {}
            for method in ("model", "mixture"):
                pes, inactive = silent_source_metrics(
                    stacked[METHODS.index(method), player, :valid], mixture[player])
                out[player][method] = {"pes": float(pes), "inactive": float(inactive)}
        return out


def _model_info(separator) -> dict[str, Any]:
    kwargs = getattr(separator, "model_kwargs", {}) or {}
    return {
        "name": getattr(separator, "model_name", type(separator).__name__),
        "kwargs": {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool))
                   or v is None},
        "condition_kind": getattr(separator, "condition_kind", None),
        "mask_type": getattr(separator, "mask_type", None),
    }


@torch.no_grad()
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
        clip_spec: frame geometry (`clip_spec_from_config(checkpoint["config"])`); default
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
        ShardFormatError: a shard does not match the URMP shard format.
        ShardReadError: a remote shard could not be read (the message names its URL).
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    device = resolve_device(device if device is not None else _parameter_device(separator))
    separator = separator.to(device).eval()
    rank, world_size = distributed.rank_and_world()

    watch = _Stopwatch(device)
    scorer = SegmentScorer(separator, device, watch)
    spec = clip_spec or SOP_FRAMES
    frames_spec = spec if scorer.condition_kind == "frames" else None
    read = partial(read_segment, spec=frames_spec, sample_rate=int(separator.sample_rate))
    with local_shards(shard_dir, policy, progress=progress and rank == 0) as files:
        entries = select_pieces(index_urmp_shards(files), limit_pieces, pieces)
        mine = [(order, e) for order, e in enumerate(entries) if order % world_size == rank]
        pairs, skipped = _score_in_batches(
            scorer, mine, read, watch, batch_size=batch_size, workers=workers,
            progress=progress and rank == 0)

    local = (pairs, dict(skipped), dict(watch.seconds), time.perf_counter() - started)
    result = _merge_ranks(distributed.gather_objects(local), segments=len(entries), info={
        "model": _model_info(separator),
        "shards": str(shard_dir),
        "frames": {k: v for k, v in asdict(spec).items()
                   if k in ("image_size", "num_frames", "frame_stride")}
        if frames_spec is not None else None,
        "device": str(device),
        "world_size": world_size,
        "batch_size": batch_size,
        **(info or {}),
    })
    if out_dir is not None and rank == 0:
        write_results(result, Path(out_dir))
    return result


def _parameter_device(module: torch.nn.Module) -> torch.device:
    parameter = next(iter(module.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _score_in_batches(
    scorer: SegmentScorer,
    mine: list[tuple[int, Any]],
    read,
    watch: _Stopwatch,
    *,
    batch_size: int,
    workers: int,
    progress: bool,
) -> tuple[list[PairScore], Counter[str]]:
    """Read this rank's segments ahead of the model and score them in batches.

    Segments with the same number of players are batched together (their tensors stack);
    `mine` holds (global order, shard entry) pairs so that ranks can be merged in order.
    """
    pairs: list[PairScore] = []
    skipped: Counter[str] = Counter()
    buckets: dict[int, list[tuple[int, UrmpSegment]]] = {}
    bar = tqdm(total=len(mine), unit="segment", desc="URMP", disable=not progress,
               dynamic_ncols=True)

    def flush(players: int) -> None:
        batch = buckets.pop(players, [])
        if batch:
            new_pairs, new_skipped = scorer([s for _, s in batch], [o for o, _ in batch])
            pairs.extend(new_pairs)
            skipped.update(new_skipped)
            bar.update(len(batch))

    segments = _prefetch([e for _, e in mine], read, workers, lookahead=2 * batch_size + workers)
    try:
        for order, _ in mine:
            wait = time.perf_counter()
            segment = next(segments)
            watch.seconds["data"] += time.perf_counter() - wait
            buckets.setdefault(segment.players, []).append((order, segment))
            if len(buckets[segment.players]) >= batch_size:
                flush(segment.players)
        for players in sorted(buckets):
            flush(players)
    finally:
        segments.close()
        bar.close()
    return pairs, skipped


def _merge_ranks(gathered: list[tuple], *, segments: int, info: dict[str, Any],
                 protocol: str = "urmp-real-mixtures") -> EvaluationResult:
    """One result from every rank's (pairs, skipped, timing, wall seconds)."""
    merged_pairs = sorted((p for g in gathered for p in g[0]), key=lambda p: (p.order, p.player))
    merged_skipped: Counter[str] = Counter()
    timing: Counter[str] = Counter()
    for g in gathered:
        merged_skipped.update(g[1])
        timing.update(g[2])
    return EvaluationResult(
        pairs=merged_pairs,
        skipped={reason: merged_skipped.get(reason, 0) for reason in SKIP_REASONS},
        segments=segments,
        info=info,
        timing={"wall": max(g[3] for g in gathered),
                **{k: timing.get(k, 0.0) for k in ("data", "model", "oracle", "metrics")}},
        protocol=protocol,
    )
