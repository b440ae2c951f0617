"""One evaluation runner for every protocol: index, select, read ahead, separate in
batches, score, merge over ranks, write.

A protocol (`urmp.UrmpProtocol`, `music.MusicProtocol`, `center_clip.CenterClipProtocol`)
says which items it evaluates (segments of URMP pieces, mixtures of two MUSIC windows, lines
of a published list) and how one item is read into a `UrmpSegment` (a mixture (T,), its
sources' references (P, T) and the model's condition). `run_protocol` does the rest, the
same way for all:

1. the shards are made local (`reader.local_shards`: remote ones are copied), and the
   protocol lists its items from them in one global order;
2. under torchrun, item i goes to rank i % world_size;
3. each rank reads its items ahead of the model in threads (`prefetch`), batches items with
   the same number of sources, separates and scores them (`scoring.SegmentScorer`);
4. every rank's scores are gathered (`merge_ranks`) into one `EvaluationResult` on every
   rank, and rank 0 writes the files (the protocol's `write`).
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from avsep import distributed
from avsep.classes import SOLOS_CLASSES
from avsep.devices import resolve_device
from avsep.evaluation.reader import UrmpSegment, local_shards
from avsep.evaluation.report import write_results
from avsep.evaluation.scoring import SKIP_REASONS, SegmentScorer, Stopwatch
from avsep.evaluation.summary import OK, PairScore, summarize_pairs
from avsep.faults import UsageError
from avsep.geometry import ClipSpec
from avsep.sources import DEFAULT_POLICY, ReadPolicy

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
        protocol: "urmp-real-mixtures" (`urmp`), "music-solo-pairs" (`music`) or
            "music-center-clip" (`center_clip`).
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


@dataclass(frozen=True)
class RunOptions:
    """How an evaluation runs, whatever its protocol.

    Attributes:
        batch_size: items separated at once (items are batched by their number of sources).
        device: where to run; None: the separator's device.
        clip_spec: frame geometry (`avsep.checkpoint.training_config(...).data.clip`); None:
            Sound of Pixels' (`SOP_FRAMES`).
        workers: threads decoding items ahead of the model (0: none).
        progress: show a tqdm bar (rank 0 only).
        info: extra entries for `result.info` (e.g. the checkpoint path).
        policy: read attempts and delay for remote shards.
    """

    batch_size: int = 4
    device: str | torch.device | None = None
    clip_spec: ClipSpec | None = None
    workers: int = 2
    progress: bool = True
    info: dict[str, Any] | None = None
    policy: ReadPolicy = DEFAULT_POLICY

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {self.batch_size}")


class EvaluationProtocol:
    """What one protocol evaluates; `run_protocol` calls `items`, `reader`, `info` and
    `write` in that order.

    Attributes:
        name: the protocol's name in results.json (`EvaluationResult.protocol`).
        classes: the class list a class-conditioned model counts in.
        split: the split of the dataset that holds the shards (None: the shards at its top,
            as URMP's).
        prefetch: read items ahead in threads; False where `reader` decodes this rank's
            items itself, before scoring starts.
    """

    name = "urmp-real-mixtures"
    classes: tuple[str, ...] = SOLOS_CLASSES
    split: str | None = None
    prefetch = True

    def items(self, files: list[Path], sample_rate: int) -> Sequence[Any]:
        """Every item to evaluate, in evaluation order, from the local shard files;
        `sample_rate` is the model's (the shards must be at it)."""
        raise NotImplementedError

    def reader(self, mine: Sequence[Any], frames: ClipSpec | None, sample_rate: int,
               workers: int) -> Callable[[Any], UrmpSegment]:
        """What reads one of this rank's items (`mine`) into a segment.

        Args:
            frames: geometry of the frames to read, or None (a class-conditioned model).
            sample_rate: the model's audio rate.
            workers: threads the reader may use (when `prefetch` is False).
        """
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """The protocol's own entries of `result.info` (called after `items`)."""
        return {}

    def write(self, result: EvaluationResult, out: Path) -> None:
        """Write the result files into `out` (rank 0 only)."""
        write_results(result, out)


@torch.no_grad()
def run_protocol(separator, protocol: EvaluationProtocol, shard_dir: str | os.PathLike,
                 out_dir: str | os.PathLike | None, options: RunOptions) -> EvaluationResult:
    """Evaluate `separator` on the items of `protocol` (module docstring).

    Args:
        separator: a model from `avsep.create_model` / `avsep.load_checkpoint`.
        shard_dir: the shards: a folder, or a URL prefix, a shard list or a brace pattern
            (`avsep.sources`; copied to a temporary folder).
        out_dir: if given, rank 0 writes the protocol's files there.

    Returns:
        the merged `EvaluationResult` (on every rank). The separator is left in eval mode on
        the device. Inside a process group every rank must call this (scores are gathered).
    """
    started = time.perf_counter()
    device = resolve_device(options.device if options.device is not None
                            else parameter_device(separator))
    separator = separator.to(device).eval()
    rank, world_size = distributed.rank_and_world()
    watch = Stopwatch(device)
    scorer = SegmentScorer(separator, device, watch, classes=protocol.classes)
    spec = options.clip_spec or SOP_FRAMES
    frames = spec if scorer.condition_kind == "frames" else None
    show = options.progress and rank == 0
    rate = int(separator.sample_rate)
    with local_shards(shard_dir, options.policy, progress=show, split=protocol.split) as files:
        items = protocol.items(files, rate)
        mine = [(order, item) for order, item in enumerate(items) if order % world_size == rank]
        read = protocol.reader([item for _, item in mine], frames, rate, options.workers)
        pairs, skipped = score_in_batches(
            scorer, mine, read, watch, batch_size=options.batch_size,
            workers=options.workers if protocol.prefetch else 0, progress=show)
    local = (pairs, dict(skipped), dict(watch.seconds), time.perf_counter() - started)
    result = merge_ranks(distributed.gather_objects(local), segments=len(items), info={
        "model": model_info(separator),
        "shards": str(shard_dir),
        **protocol.info(),
        "frames": frame_info(spec) if frames is not None else None,
        "device": str(device),
        "world_size": world_size,
        "batch_size": options.batch_size,
        **(options.info or {}),
    }, protocol=protocol.name)
    if out_dir is not None and rank == 0:
        protocol.write(result, Path(out_dir))
    return result


def frame_info(spec: ClipSpec) -> dict[str, int]:
    """What results.json says about the frame geometry."""
    return {k: v for k, v in asdict(spec).items()
            if k in ("image_size", "num_frames", "frame_stride")}


def prefetch(items: Sequence[Any], read: Callable[[Any], UrmpSegment], workers: int,
             lookahead: int) -> Generator[UrmpSegment, None, None]:
    """`read(item)` of every item in order, read `lookahead` ahead by `workers` threads (JPEG
    and npy decoding release the GIL); `workers == 0` reads in the calling thread."""
    if workers <= 0:
        yield from map(read, items)
        return
    remaining = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix="urmp-read") as pool:
        pending = deque(pool.submit(read, e) for e in islice(remaining, lookahead))
        while pending:
            segment = pending.popleft().result()
            following = next(remaining, None)
            if following is not None:
                pending.append(pool.submit(read, following))
            yield segment


def model_info(separator) -> dict[str, Any]:
    """What results.json says about the model: name, simple constructor arguments, kind."""
    kwargs = getattr(separator, "model_kwargs", {}) or {}
    return {
        "name": getattr(separator, "model_name", type(separator).__name__),
        "kwargs": {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool))
                   or v is None},
        "condition_kind": getattr(separator, "condition_kind", None),
        "mask_type": getattr(separator, "mask_type", None),
    }


def parameter_device(module: torch.nn.Module) -> torch.device:
    """Where the module's parameters are (the CPU for a module without any)."""
    parameter = next(iter(module.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def score_in_batches(
    scorer: SegmentScorer,
    mine: list[tuple[int, Any]],
    read,
    watch: Stopwatch,
    *,
    batch_size: int,
    workers: int,
    progress: bool,
) -> tuple[list[PairScore], Counter[str]]:
    """Read this rank's items ahead of the model and score them in batches.

    Segments with the same number of sources are batched together (their tensors stack);
    `mine` holds (global order, item) pairs so that ranks can be merged in order, and
    `read(item)` decodes one item into a `UrmpSegment`.
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

    segments = prefetch([item for _, item in mine], read, workers,
                        lookahead=2 * batch_size + workers)
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


def merge_ranks(gathered: list[tuple], *, segments: int, info: dict[str, Any],
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
