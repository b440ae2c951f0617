"""Summaries of prepared shard folders (Solos or URMP), read from the shards themselves.

Only the small `json` member of every sample is decoded; audio and JPEG members are skipped
by seeking, so a summary of tens of GB takes seconds.
"""

from __future__ import annotations

import json
import tarfile
from collections import defaultdict
from pathlib import Path


def shard_files(root: Path) -> list[Path]:
    """Every finished shard under `root` (temporaries of unfinished units excluded)."""
    return sorted(p for p in Path(root).rglob("*.tar") if p.is_file())


def read_metadata(shard: Path) -> list[tuple[str, dict]]:
    """(sample key, decoded json) of every sample in one shard."""
    samples = []
    with tarfile.open(shard, "r:") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".json"):
                key = member.name.split("/")[-1].split(".", 1)[0]
                samples.append((key, json.loads(archive.extractfile(member).read())))
    return samples


def summarize_shards(root: str | Path) -> dict:
    """Counts of a prepared folder.

    Returns:
        {'kind': 'solos'|'urmp'|'unknown', 'shards', 'bytes', 'samples', 'hours',
         'labels': {class or instrument: {...}}, 'splits': {...}, 'videos' or 'pieces',
         'duplicate_keys', 'unfinished_files', 'unreadable': [...]}
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    shards = shard_files(root)
    summary: dict = {
        "root": str(root),
        "shards": len(shards),
        "bytes": sum(p.stat().st_size for p in shards),
        "samples": 0,
        "hours": 0.0,
        "unfinished_files": len(list(root.rglob("*.tar.tmp"))),
        "unreadable": [],
        "duplicate_keys": 0,
    }
    keys: set[str] = set()
    labels: dict[str, dict] = defaultdict(lambda: {"samples": 0, "hours": 0.0, "sources": set()})
    splits: dict[str, int] = defaultdict(int)
    kind = "unknown"
    for shard in shards:
        try:
            samples = read_metadata(shard)
        except (tarfile.TarError, OSError, ValueError) as exc:
            summary["unreadable"].append(f"{shard.relative_to(root)}: {exc}")
            continue
        split = shard.parent.name if shard.parent != root else "test"
        for key, meta in samples:
            summary["duplicate_keys"] += key in keys
            keys.add(key)
            rate = meta.get("sample_rate", 11025)
            if "piece" in meta:  # URMP segment
                kind = "urmp"
                seconds = meta["valid_samples"] / rate
                for class_name in meta["classes"]:  # one entry per player
                    entry = labels[class_name]
                    entry["samples"] += 1
                    entry["hours"] += seconds / 3600
                    entry["sources"].add(meta["piece"])
            else:  # Solos chunk
                kind = "solos"
                seconds = meta["num_samples"] / rate
                entry = labels[meta["class"]]
                entry["samples"] += 1
                entry["hours"] += seconds / 3600
                entry["sources"].add(meta["video_id"])
            summary["samples"] += 1
            summary["hours"] += seconds / 3600
            splits[split] += 1
    summary["kind"] = kind
    summary["splits"] = dict(sorted(splits.items()))
    summary["labels"] = {
        name: {"samples": e["samples"], "hours": e["hours"], "sources": len(e["sources"])}
        for name, e in sorted(labels.items())
    }
    all_sources = set().union(*(e["sources"] for e in labels.values())) if labels else set()
    summary["videos" if kind == "solos" else "pieces"] = len(all_sources)
    return summary


def format_inspection(summary: dict) -> str:
    """Readable lines of `summarize_shards` output."""
    kind = summary["kind"]
    lines = [f"{summary['root']}: {kind} shards"]
    if kind == "solos":
        lines.append(f"videos: {summary['videos']}, classes: {len(summary['labels'])}")
    elif kind == "urmp":
        lines.append(f"pieces: {summary['pieces']}, classes: {len(summary['labels'])}")
    splits = ", ".join(f"{k}: {v}" for k, v in summary["splits"].items())
    lines.append(
        f"samples: {summary['samples']} ({splits}), hours: {summary['hours']:.2f}, "
        f"shards: {summary['shards']}, bytes: {summary['bytes']:,} "
        f"({summary['bytes'] / 1e9:.2f} GB)"
    )
    source_name = "videos" if kind == "solos" else "pieces"
    if kind == "urmp":
        lines.append("  (per class: segments and hours of the players of that class)")
    for name, entry in summary["labels"].items():
        lines.append(
            f"  class {name:<11} {entry['sources']:>5} {source_name} "
            f"{entry['samples']:>7} samples {entry['hours']:>8.2f} h"
        )
    if summary["duplicate_keys"]:
        lines.append(f"WARNING: {summary['duplicate_keys']} duplicate sample keys")
    if summary["unfinished_files"]:
        lines.append(
            f"note: {summary['unfinished_files']} unfinished .tar.tmp files (a prepare run is "
            "in progress or was interrupted: run it again to finish)"
        )
    for problem in summary["unreadable"]:
        lines.append(f"UNREADABLE: {problem}")
    return "\n".join(lines)
