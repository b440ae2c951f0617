"""What happened to every input: per-unit results, issues with reasons, and the run summary.

A unit (one Solos video, one URMP piece) ends as a `UnitResult`, stored as its done-marker.
Its `issues` say what was wrong or left out, each with a short `code` for counting and a
one-line `reason` for people. `OUT/report.jsonl` and `OUT/summary.json` are rebuilt from all
done-markers at the end of every run, so a resumed or split (`--part`) run never duplicates
or loses an entry. `OUT/shards.json` (rebuilt the same way) lists every split's shard files
with their sample counts: the index that lets training and evaluation read the dataset from a
URL without listing a bucket (`avsep.sources`).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from avsep.sources import INDEX_NAME, index_entry
from data_prep.prepare.files import atomic_write_text

BAD_INPUT = "bad_input"  # the unit produced no sample because its input is unusable
SKIPPED = "skipped"  # part of a unit was left out (a short span, a short last segment)
NOTE = "note"  # something the user should know; nothing was lost


@dataclass(frozen=True)
class Issue:
    """One problem with one source.

    Attributes:
        source: path relative to RAW of the file (or folder) concerned.
        kind: BAD_INPUT, SKIPPED or NOTE.
        code: short key for counting, e.g. 'no_audio', 'span_too_short'.
        reason: one line for the user.
        seconds: seconds of source material concerned (0 when not applicable).
    """

    source: str
    kind: str
    code: str
    reason: str
    seconds: float = 0.0

    def line(self) -> str:
        return f"[{self.kind}] {self.source}: {self.reason}"


@dataclass(frozen=True)
class ShardFile:
    path: str  # relative to OUT
    bytes: int
    samples: int


@dataclass
class UnitResult:
    """Everything known about one finished unit; stored as its done-marker.

    Attributes:
        unit: the unit id ('<Class>/<video id>' for Solos, the piece folder for URMP).
        fingerprint: hash of the settings and source that produced this result.
        label: the class name (Solos) or the piece name (URMP).
        split: 'train' / 'val' (Solos) or 'test' (URMP).
        shards: the shard files written, relative to OUT.
        samples: samples written.
        audio_seconds: seconds of real (not padding) audio written.
        source_seconds: duration of the source.
        issues: problems found.
    """

    unit: str
    fingerprint: str
    label: str
    split: str
    shards: list[ShardFile] = field(default_factory=list)
    samples: int = 0
    audio_seconds: float = 0.0
    source_seconds: float = 0.0
    issues: list[Issue] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def bad(self) -> bool:
        return any(issue.kind == BAD_INPUT for issue in self.issues)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> UnitResult:
        data = dict(data)
        data["shards"] = [ShardFile(**s) for s in data.get("shards", [])]
        data["issues"] = [Issue(**i) for i in data.get("issues", [])]
        return cls(**data)


def summarize(results: list[UnitResult], global_issues: Sequence[Issue] = ()) -> dict:
    """Totals over units: samples, hours, bytes, per-label and per-reason counts."""
    per_label: dict[str, dict] = defaultdict(lambda: {"units": 0, "samples": 0, "hours": 0.0})
    per_split: Counter = Counter()
    counts: dict[str, Counter] = {BAD_INPUT: Counter(), SKIPPED: Counter(), NOTE: Counter()}
    skipped_seconds = 0.0
    for result in results:
        if result.samples:
            entry = per_label[result.label]
            entry["units"] += 1
            entry["samples"] += result.samples
            entry["hours"] += result.audio_seconds / 3600
            per_split[result.split] += result.samples
        for issue in result.issues:
            counts[issue.kind][issue.code] += 1
            if issue.kind == SKIPPED:
                skipped_seconds += issue.seconds
    for issue in global_issues:
        counts[issue.kind][issue.code] += 1
    return {
        "units": len(results),
        "units_with_samples": sum(1 for r in results if r.samples),
        "units_bad": sum(1 for r in results if r.bad),
        "samples": sum(r.samples for r in results),
        "hours": sum(r.audio_seconds for r in results) / 3600,
        "source_hours": sum(r.source_seconds for r in results) / 3600,
        "cpu_hours": sum(r.extra.get("cpu_s", 0.0) for r in results) / 3600,
        "bytes": sum(s.bytes for r in results for s in r.shards),
        "shards": sum(len(r.shards) for r in results),
        "samples_per_split": dict(sorted(per_split.items())),
        "per_label": {k: per_label[k] for k in sorted(per_label)},
        "bad_input": dict(counts[BAD_INPUT].most_common()),
        "skipped": dict(counts[SKIPPED].most_common()),
        "skipped_hours": skipped_seconds / 3600,
        "notes": dict(counts[NOTE].most_common()),
    }


def shard_index(results: list[UnitResult]) -> dict:
    """The content of OUT/shards.json: {"splits": {split: [{path, samples, bytes}, ...]}},
    shards sorted by path within each split."""
    splits: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        for shard in result.shards:
            splits[result.split].append(index_entry(shard.path, shard.samples, shard.bytes))
    return {"splits": {split: sorted(entries, key=lambda e: e["path"])
                       for split, entries in sorted(splits.items())}}


def write_report(out: Path, results: list[UnitResult], global_issues: list[Issue]) -> dict:
    """Rewrite OUT/report.jsonl (one issue per line), OUT/summary.json and OUT/shards.json;
    return the summary."""
    lines = [json.dumps({"unit": "", **asdict(issue)}) for issue in global_issues]
    for result in sorted(results, key=lambda r: r.unit):
        lines += [json.dumps({"unit": result.unit, **asdict(issue)}) for issue in result.issues]
    atomic_write_text(out / "report.jsonl", "".join(line + "\n" for line in lines))
    summary = summarize(results, global_issues)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / INDEX_NAME, json.dumps(shard_index(results), indent=1) + "\n")
    return summary


def format_summary(summary: dict, label_name: str = "class") -> str:
    """Human-readable lines of a summary from `summarize`."""
    units = (
        f"units: {summary['units']} ({summary['units_with_samples']} with samples, "
        f"{summary['units_bad']} unusable)"
    )
    totals = (
        f"samples: {summary['samples']} {summary['samples_per_split']}, "
        f"{summary['hours']:.2f} h of audio from {summary['source_hours']:.2f} h of source, "
        f"{summary['shards']} shards, {summary['bytes'] / 1e6:.1f} MB"
    )
    lines = [units, totals]
    for name, entry in summary["per_label"].items():
        lines.append(
            f"  {label_name} {name}: {entry['units']} units, {entry['samples']} samples, "
            f"{entry['hours']:.2f} h"
        )
    if summary["bad_input"]:
        lines.append("unusable inputs: " + _counts(summary["bad_input"]))
    if summary["skipped"]:
        lines.append(
            f"left out ({summary['skipped_hours'] * 60:.1f} min): " + _counts(summary["skipped"])
        )
    if summary["notes"]:
        lines.append("notes: " + _counts(summary["notes"]))
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} x{n}" for code, n in counts.items())
