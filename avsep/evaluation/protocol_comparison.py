"""The two MUSIC protocols side by side: avsep's multi-clip pairs and a published list's
centre clips (`avsep evaluate --dataset music --pairs-csv FILE --protocol both`).

The figures differ for two reasons at once: the published protocol scores one clip per
video (its middle) where avsep's draws windows anywhere in the videos, and the published
list names its own videos (25 for `testsepmusic.csv`) where avsep's draws from the whole
test split. The table shows how far apart the two figures of one checkpoint are.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from avsep.evaluation.report import atomic_write, pair_list_coverage
from avsep.evaluation.summary import METHOD_LABELS, METHODS, METRIC_LABELS, METRICS

COMPARISON_NAME = "comparison.md"
MULTI_DIR, CENTER_DIR = "multi-clip", "center-clip"


def _mean(stats: dict) -> float:
    return stats["mean"] if stats["count"] else math.nan


def _cell(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "—"


def comparison_rows(multi, center) -> list[list[str]]:
    """[method, metric, multi-clip mean, centre-clip mean, centre - multi] per method and
    metric, means over scored (source, mixture) pairs in dB."""
    scores = [r.summary()["overall"]["scores"] for r in (multi, center)]
    rows = []
    for method in METHODS:
        for metric in METRICS:
            a, b = (_mean(s[method][metric]) for s in scores)
            rows.append([METHOD_LABELS[method], METRIC_LABELS[metric], _cell(a), _cell(b),
                         _cell(b - a) if math.isfinite(a) and math.isfinite(b) else "—"])
    return rows


def format_comparison(multi, center) -> str:
    """Markdown: what each protocol scored, then the table of `comparison_rows`."""
    header = ["method", "metric", "multi-clip (avsep)", "centre clip (published list)",
              "centre − multi"]
    lines = [
        "# MUSIC: avsep's multi-clip protocol beside a published list's centre clips",
        "",
        (f"Multi-clip: {multi.segments} mixtures drawn from the whole test split "
         f"({multi.scored_segments} scored), windows anywhere in the videos "
         f"(`{MULTI_DIR}/`)."),
        "",
        (f"Centre clip: {center.segments} listed mixture(s) ({center.scored_segments} scored), "
         f"one clip in the middle of each video (`{CENTER_DIR}/`). "
         + pair_list_coverage(center.info["pair_list"])),
        "",
        ("Means in dB over scored (source, mixture) pairs. The protocols differ both in the "
         "clips and in the videos, so the difference is the figure's sensitivity to the "
         "protocol, not a property of the model."),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in comparison_rows(multi, center)),
        "",
    ]
    return "\n".join(lines)


def format_comparison_table(multi, center) -> str:
    """The SDR / SIR / SAR rows of `comparison_rows` as plain text, for the terminal."""
    rows = [r for r in comparison_rows(multi, center) if r[1] in ("SDR", "SIR", "SAR")]
    header = f"{'method':<28}{'':<7}{'multi-clip':>12}{'centre clip':>13}{'difference':>12}"
    lines = [header, "-" * len(header)]
    lines += [f"{m:<28}{k:<7}{a:>12}{b:>13}{d:>12}" for m, k, a, b, d in rows]
    return "\n".join(lines)


def write_comparison(out_dir: str | os.PathLike, multi, center) -> Path:
    """Write OUT/comparison.md; return its path."""
    path = Path(out_dir) / COMPARISON_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, format_comparison(multi, center))
    return path
