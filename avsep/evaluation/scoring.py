"""Scoring separated segments: the skip rule for silence and the batched metrics.

Every protocol (URMP real mixtures, MUSIC pairs) hands `SegmentScorer` batches of segments
(`reader.UrmpSegment`: a mixture, its sources' references and what the model is conditioned
on). All sources of a segment are scored together as the N sources of BSS-eval (SDR, SIR,
SAR), and each alone with SI-SDR, against its reference, on the segment's real samples only.
Beside the model, the same segments are scored for the unprocessed mixture (the estimate of
every source is the mixture) and for the ideal binary and ratio masks (oracle upper bounds).

A segment is skipped, and counted by reason, when any source's reference is silent
(`silent_reference`), any of the model's estimates is (`silent_estimate`), or any baseline
estimate is (`silent_baseline_estimate`), so every method is scored on the same segments
(`avsep.metrics.is_silent`, The Sound of Pixels' rule). For a silent reference, the model and
the mixture still get the silent-source measures (PES, activity agreement).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch

from avsep.classes import SOLOS_CLASSES, class_index
from avsep.evaluation.oracle import IdealMaskSeparator
from avsep.evaluation.reader import UrmpSegment
from avsep.evaluation.summary import METHODS, OK, PairScore
from avsep.metrics import bss_eval_sources_sets, is_silent, si_sdr, silent_source_metrics
from avsep.shard_format import ShardFormatError

SKIP_REASONS = ("silent_reference", "silent_estimate", "silent_baseline_estimate")


class Stopwatch:
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


class SegmentScorer:
    """Separates a batch of segments with the same number of players and scores them.

    Args:
        separator: a `avsep.models.Separator` in eval mode on `device`.
        device: where separation and metrics run.
        stopwatch: collects model / oracle / metric times.
        classes: the class list a class-conditioned model counts in (URMP codes and Solos
            names for SOLOS_CLASSES).
    """

    def __init__(self, separator, device: torch.device, stopwatch: Stopwatch,
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
        """Separate B segments of P sources each (mix (T,), stems (P, T)) and score the
        model and the baselines: one `PairScore` per (segment, source), with `orders` as
        each segment's place in the evaluation, and the skipped segments per reason."""
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
        """Skip rule and metrics on the real samples of stems (B, P, T) and the methods'
        estimates stacked (B, M, P, T) in `METHODS` order; batched per valid length."""
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
