"""Writing evaluation results: results.json, segments.csv, results.md and a terminal table."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from avsep.classes import URMP_CODE_TO_CLASS
from avsep.evaluation.summary import (
    METHOD_LABELS,
    METHODS,
    METRIC_LABELS,
    METRICS,
    finite_or_none,
)

RESULT_FILES = ("results.json", "segments.csv", "results.md")

# Short method names for the per-instrument / per-piece columns.
_SHORT = {"model": "model", "mixture": "mix", "ibm": "IBM", "irm": "IRM"}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary name beside it: whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(result, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write results.json (statistics, counts, timing; NaN/inf as null), segments.csv (one
    row per player and segment, skipped ones with their reason) and results.md into
    `out_dir` (created if needed). Returns the paths by file name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in RESULT_FILES}
    atomic_write(paths["results.json"],
                  json.dumps(_json_safe(result.to_dict()), indent=2, allow_nan=False) + "\n")
    _write_csv(result, paths["segments.csv"])
    atomic_write(paths["results.md"], format_markdown(result))
    return paths


def csv_columns() -> list[str]:
    identity = ["key", "piece", "segment", "start_s", "player", "instrument", "valid_samples",
                "status"]
    return identity + [f"{method}_{metric}" for method in METHODS for metric in METRICS]


def _write_csv(result, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_columns())
        for pair in result.pairs:
            row = [pair.key, pair.piece, pair.segment, f"{pair.start_s:.3f}", pair.player,
                   pair.instrument, pair.valid_samples, pair.status]
            for method in METHODS:
                for metric in METRICS:
                    value = pair.scores.get(method, {}).get(metric)
                    row.append("" if value is None or math.isnan(value) else f"{value:.4f}")
            writer.writerow(row)
    os.replace(tmp, path)


def _mean_std(stats: dict) -> str:
    if not stats["count"] or not math.isfinite(stats["mean"]):
        return "—" if not stats["count"] else f"{stats['mean']:.2f}"
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}"


def _median(stats: dict) -> str:
    return f"{stats['median']:.2f}" if stats["count"] else "—"


def _overall_rows(group: dict) -> list[list[str]]:
    rows = []
    for method in METHODS:
        cells = [METHOD_LABELS[method]]
        for metric in METRICS:
            stats = group["scores"][method][metric]
            cells.append(f"{_mean_std(stats)} ({_median(stats)})")
        rows.append(cells)
    return rows


def _group_row(name: str, group: dict) -> list[str]:
    scores = group["scores"]
    cells = [name, str(group["pairs"])]
    cells += [_mean_std(scores["model"][metric]) for metric in METRICS]
    cells += [_mean_std(scores[method]["sdr"]) for method in METHODS if method != "model"]
    return cells


def _group_header(first: str) -> list[str]:
    return ([first, "pairs"] + [METRIC_LABELS[m] for m in METRICS]
            + [f"{_SHORT[m]} SDR" for m in METHODS if m != "model"])


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _model_line(info: dict) -> str:
    model = info.get("model", {})
    where = f" from `{info['checkpoint']}`" if info.get("checkpoint") else ""
    return f"Model: `{model.get('name', '?')}`{where} ({model.get('condition_kind')}-conditioned)"


# Per protocol: the report's title, what a "piece" is and how an instrument is named.
_TITLES = {"urmp-real-mixtures": "URMP real-mixture evaluation",
           "music-solo-pairs": "MUSIC evaluation: mixtures of two solo test videos",
           "music-center-clip": "MUSIC evaluation: a published pair list, one centre clip "
                                "per video"}
_PIECES = {"music-solo-pairs": ("Per class pair", "classes"),
           "music-center-clip": ("Per class pair", "classes")}


def _instrument_label(code: str, protocol: str) -> str:
    if protocol.startswith("music-"):
        return code
    return f"{URMP_CODE_TO_CLASS.get(code, code)} ({code})"


def format_markdown(result) -> str:
    """The Markdown report: counts, the overall table, then per instrument and per piece."""
    summary = result.summary()
    protocol = getattr(result, "protocol", "urmp-real-mixtures")
    piece_title, piece_column = _PIECES.get(protocol, ("Per piece", "piece"))
    skipped = ", ".join(f"{k} {v}" for k, v in result.skipped.items() if v) or "none"
    parts = [
        f"# {_TITLES.get(protocol, protocol)}",
        "",
        _model_line(result.info),
        "",
        *_pair_list_lines(result.info.get("pair_list")),
        (f"Segments: {result.segments} ({result.scored_segments} scored; skipped: {skipped}). "
         f"Scored (player, segment) pairs: {len(result.scored_pairs)}. Values in dB, "
         "mean ± std over pairs (median in brackets); baselines on the same segments."),
        "",
        "## Overall",
        "",
        _markdown_table(["method"] + [METRIC_LABELS[m] for m in METRICS],
                        _overall_rows(summary["overall"])),
        "",
        *_silent_lines(summary.get("silent_sources")),
        "## Per instrument",
        "",
        ("Model scores, then the SDR of the unprocessed mixture (mix), the ideal binary mask "
         "(IBM) and the ideal ratio mask (IRM)."),
        "",
        _markdown_table(
            _group_header("instrument"),
            [_group_row(_instrument_label(code, protocol), group)
             for code, group in summary["per_instrument"].items()],
        ),
        "",
        f"## {piece_title}",
        "",
        _markdown_table(_group_header(piece_column),
                        [_group_row(piece, group)
                         for piece, group in summary["per_piece"].items()]),
        "",
    ]
    return "\n".join(parts)


def pair_list_coverage(info: dict) -> str:
    """One sentence on how much of a published pair list was evaluated, from
    `center_clip.list_info`: lines evaluated and skipped, and the missing videos."""
    missing = info["missing_videos"]
    named = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    skipped = (f"; {info['lines_skipped_missing_video']} skipped: {len(missing)} of its "
               f"{info['videos']} videos are not in the test shards ({named})" if missing
               else "; none skipped: every video is in the test shards")
    return (f"Pair list {Path(info['file']).name} (sha1 {info['sha1'][:12]}): "
            f"{info['lines']} lines ({info['distinct_pairs']} distinct pairs), "
            f"{info['lines_evaluated']} evaluated{skipped}.")


def _pair_list_lines(info: dict | None) -> list[str]:
    return [pair_list_coverage(info), ""] if info else []


def _silent_lines(silent: dict | None) -> list[str]:
    """The figures for players silent in a segment (BSS-eval skips those segments)."""
    if not silent or not silent["pairs"]:
        return []
    rows = []
    for method in ("model", "mixture"):
        stats = silent[method]
        rows.append([METHOD_LABELS[method], _mean_std(stats["pes"]),
                     f"{stats['inactive_percent']:.1f}"])
    return [
        "## Silent sources",
        "",
        (f"{silent['pairs']} (player, segment) pairs whose reference is silent (skipped by "
         "BSS-eval): predicted energy at silence (PES, dB, lower is better) and the share of "
         "estimates that are also silent (at least 30 dB below the mixture), as HTMD-Net's "
         "seed reports them."),
        "",
        _markdown_table(["method", "PES", "silent estimates (%)"], rows),
        "",
    ]


def format_table(result) -> str:
    """A compact plain-text table of the overall results for the terminal."""
    overall = result.summary()["overall"]
    header = f"{'method':<28}" + "".join(f"{METRIC_LABELS[m]:>17}" for m in METRICS)
    lines = [header, "-" * len(header)]
    for method in METHODS:
        cells = "".join(f"{_mean_std(overall['scores'][method][m]):>17}" for m in METRICS)
        lines.append(f"{METHOD_LABELS[method]:<28}{cells}")
    skipped = ", ".join(f"{k} {v}" for k, v in result.skipped.items() if v) or "none"
    lines.append(
        f"{len(result.scored_pairs)} (player, segment) pairs from {result.scored_segments} of "
        f"{result.segments} segments (skipped: {skipped}); dB, mean ± std"
    )
    return "\n".join(lines)
