"""Summaries of prepared shards (Solos or URMP), read from the shards themselves.

In a local folder only the small `json` member of every sample is decoded; audio and JPEG
members are skipped by seeking, so a summary of tens of GB takes seconds. Shards given by URL
(a prefix holding `shards.json`, a shard list, a brace pattern: `avsep.sources`) are streamed
whole, since a stream cannot seek.
"""

from __future__ import annotations

import os
import tarfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from avsep.shard_format import HEADER, Members, index_samples, parse_header, read_member
from avsep.sources import (
    DEFAULT_POLICY,
    INDEX_NAME,
    ReadPolicy,
    ShardReadError,
    dataset_shards,
    index_shards,
    is_listing,
    is_url,
    read_index,
    shard_samples,
    split_of,
)


def shard_files(root: Path) -> list[Path]:
    """Every finished shard under `root` (temporaries of unfinished units excluded)."""
    return sorted(p for p in Path(root).rglob("*.tar") if p.is_file())


def read_metadata(shard: Path) -> list[tuple[str, dict]]:
    """(sample key, decoded json) of every sample in one shard.

    Raises:
        ShardFormatError: not a readable, whole tar file, or a json member that is not a
            JSON object (the message names the shard and the sample).
    """
    index = index_samples(shard)  # the tar headers alone; data is skipped by seeking
    fd = os.open(shard, os.O_RDONLY)
    try:
        return [(key, parse_header(read_member(fd, _Sample(shard, key, members), HEADER),
                                   f"{shard}: sample {key!r}"))
                for key, members in index.items() if HEADER in members]
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Sample:
    """Where one sample's members lie (what `read_member` takes)."""

    shard: Path
    key: str
    members: Members


def _local_shards(root: Path) -> Iterator[tuple[str, str, int, str]]:
    """(name, split, bytes, reader) of every shard of a local folder."""
    for shard in shard_files(root):
        split = shard.parent.name if shard.parent != root else "test"
        yield str(shard.relative_to(root)), split, shard.stat().st_size, str(shard)


def _remote_shards(location: str, policy: ReadPolicy) -> Iterator[tuple[str, str, int, str]]:
    """(url, split, bytes, reader) of every shard at a URL prefix (from its index) or in a
    shard list / brace pattern (bytes 0: unknown before reading)."""
    if is_listing(location):
        for url in dataset_shards(location, None, policy):
            yield url, split_of(url), 0, url
        return
    index = read_index(location, policy)
    if index is None:
        raise FileNotFoundError(f"no {INDEX_NAME} at {location}")
    for shard in index_shards(location, index):
        yield shard.url, shard.split, shard.bytes, shard.url


def _stream_metadata(url: str, policy: ReadPolicy) -> list[tuple[str, dict]]:
    """(sample key, decoded json) of every sample of a streamed shard."""
    return [(sample["__key__"].split("/")[-1],
             parse_header(sample[HEADER], f"{url}: sample {sample['__key__']!r}"))
            for sample in shard_samples(url, policy) if HEADER in sample]


def summarize_shards(root: str | Path, policy: ReadPolicy = DEFAULT_POLICY) -> dict:
    """Counts of a prepared folder, or of shards at a URL (see the module docstring).

    Returns:
        {'kind': 'solos'|'urmp'|'unknown', 'shards', 'bytes', 'samples', 'hours',
         'labels': {class or instrument: {...}}, 'splits': {...}, 'videos' or 'pieces',
         'duplicate_keys', 'unfinished_files', 'unreadable': [...]}
    """
    remote = is_url(str(root)) or is_listing(str(root))
    if remote:
        shards = list(_remote_shards(str(root), policy))
    else:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"no such folder: {root}")
        shards = list(_local_shards(root))
    summary: dict = {
        "root": str(root),
        "shards": len(shards),
        "bytes": sum(size for _, _, size, _ in shards),
        "samples": 0,
        "hours": 0.0,
        "unfinished_files": 0 if remote else len(list(Path(root).rglob("*.tar.tmp"))),
        "unreadable": [],
        "duplicate_keys": 0,
    }
    keys: set[str] = set()
    labels: dict[str, dict] = defaultdict(lambda: {"samples": 0, "hours": 0.0, "sources": set()})
    splits: dict[str, int] = defaultdict(int)
    kind = "unknown"
    for name, split, _, where in shards:
        try:
            samples = _stream_metadata(where, policy) if remote else read_metadata(Path(where))
        except (tarfile.TarError, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ShardReadError) else exc
            summary["unreadable"].append(f"{name}: {reason}")
            continue
        for key, meta in samples:
            summary["duplicate_keys"] += key in keys
            keys.add(key)
            kind = _count_sample(meta, labels, summary) or kind
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


def _count_sample(meta: dict, labels: dict, summary: dict) -> str:
    """Add one sample's header to the counts; return its kind ('solos' or 'urmp')."""
    rate = meta.get("sample_rate", 11025)
    if "piece" in meta:  # URMP segment
        seconds = meta["valid_samples"] / rate
        for class_name in meta["classes"]:  # one entry per player
            entry = labels[class_name]
            entry["samples"] += 1
            entry["hours"] += seconds / 3600
            entry["sources"].add(meta["piece"])
        kind = "urmp"
    else:  # Solos chunk
        seconds = meta["num_samples"] / rate
        entry = labels[meta["class"]]
        entry["samples"] += 1
        entry["hours"] += seconds / 3600
        entry["sources"].add(meta["video_id"])
        kind = "solos"
    summary["samples"] += 1
    summary["hours"] += seconds / 3600
    return kind


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
