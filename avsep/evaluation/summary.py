"""Per-pair scores and their statistics: overall, per instrument and per piece.

The Solos protocol reports mean ± std over all evaluated (player, segment) pairs; medians
are given beside them because a few near-silent segments can pull means far down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from avsep.classes import URMP_CODE_TO_CLASS, class_index
from avsep.metrics import summarize

METHODS = ("model", "mixture", "ibm", "irm")
"""What is scored on every segment: the separator, and the baselines on the same segments
(the unprocessed mixture, the ideal binary mask, the ideal ratio mask)."""

METRICS = ("sdr", "sir", "sar", "si_sdr")

METHOD_LABELS = {"model": "model", "mixture": "mixture (unprocessed)",
                 "ibm": "ideal binary mask (oracle)", "irm": "ideal ratio mask (oracle)"}
METRIC_LABELS = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "si_sdr": "SI-SDR"}

OK = "ok"


@dataclass
class PairScore:
    """The scores of one player in one segment.

    Attributes:
        key: the segment's sample key.
        piece: the piece's folder name.
        segment: segment index within the piece.
        start_s: start time of the segment in the piece (s).
        player: player index (0 = leftmost in the video = `AuSep_1`).
        instrument: URMP code of the player's instrument.
        valid_samples: samples of real audio the scores were computed on.
        status: "ok", or why the segment was skipped (see `avsep.evaluation.scoring`).
        scores: method -> metric -> dB; empty when skipped.
        order: position of the segment in the evaluated list (for a stable order).
    """

    key: str
    piece: str
    segment: int
    start_s: float
    player: int
    instrument: str
    valid_samples: int
    status: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    order: int = 0


def group_statistics(pairs: Sequence[PairScore]) -> dict:
    """`{"pairs": n, "scores": {method: {metric: {mean, std, median, count}}}}` of `pairs`
    (skipped pairs are ignored)."""
    scored = [p for p in pairs if p.status == OK]
    return {
        "pairs": len(scored),
        "scores": {
            method: {
                metric: summarize([p.scores[method][metric] for p in scored])
                for metric in METRICS
            }
            for method in METHODS
        },
    }


def silent_statistics(pairs: Sequence[PairScore]) -> dict:
    """PES and activity agreement over the players that are silent in skipped segments:
    `{"pairs": n, method: {"pes": {mean, std, median, count}, "inactive_percent": %}}`
    (see `avsep.metrics.silent_source_metrics`)."""
    silent = [p for p in pairs if p.status == "silent_reference" and p.scores]
    out: dict = {"pairs": len(silent)}
    for method in ("model", "mixture"):
        inactive = [p.scores[method]["inactive"] for p in silent]
        out[method] = {
            "pes": summarize([p.scores[method]["pes"] for p in silent]),
            "inactive_percent": 100.0 * sum(inactive) / len(inactive) if inactive else None,
        }
    return out


def _instrument_order(code: str) -> tuple[int, str]:
    try:
        return class_index(code), code
    except ValueError:
        return len(URMP_CODE_TO_CLASS), code


def summarize_pairs(pairs: Iterable[PairScore]) -> dict:
    """Statistics overall, per instrument (every instrument present, in class order) and per
    piece (in evaluation order). Groups whose pairs were all skipped have `pairs == 0`."""
    pairs = sorted(pairs, key=lambda p: (p.order, p.player))
    instruments = sorted({p.instrument for p in pairs}, key=_instrument_order)
    pieces = list(dict.fromkeys(p.piece for p in pairs))
    return {
        "overall": group_statistics(pairs),
        "silent_sources": silent_statistics(pairs),
        "per_instrument": {
            code: group_statistics([p for p in pairs if p.instrument == code])
            for code in instruments
        },
        "per_piece": {
            piece: group_statistics([p for p in pairs if p.piece == piece]) for piece in pieces
        },
    }


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such values become null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
