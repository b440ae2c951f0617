"""Raw Solos / URMP videos -> webdataset shards (`avsep prepare`).

Modules, one job each:
    settings  the numbers that define a shard set (rates, sizes, chunking)
    decode    probing, decord decoding, the one resampler, resizing, JPEG encoding
    split     unit hashes, train/val split by video id, --part partitioning
    writer    crash-safe per-unit shard files and done-markers (the resume protocol)
    report    issues with reasons, unit results, report.jsonl / summary.json
    runner    skipping finished units, the worker pool, crash isolation, --strict
    solos     Solos videos -> training shards
    urmp      URMP pieces -> evaluation shards

Entry points: `prepare_solos(src, out, settings, ...)` and `prepare_urmp(src, out, ...)`.
"""

from __future__ import annotations

from data_prep.prepare.solos import prepare_solos
from data_prep.prepare.urmp import prepare_urmp

__all__ = ["prepare_solos", "prepare_urmp"]
