"""Raw Solos / URMP / MUSIC videos -> webdataset shards (`avsep prepare`).

Modules, one job each:
    settings  the numbers that define a shard set (rates, sizes, chunking)
    decode    probing, decord decoding, the one resampler, resizing, JPEG encoding
    split     unit hashes, train/val split by video id, --part partitioning
    writer    crash-safe per-unit shard files and done-markers (the resume protocol)
    report    issues with reasons, unit results, report.jsonl / summary.json
    runner    skipping finished units, the worker pool, crash isolation, --strict
    solos     Solos videos -> training shards
    urmp      URMP pieces -> evaluation shards
    music     MUSIC solos -> train/val/test shards, duets -> duet shards

Entry points: `prepare_solos(src, out, settings, ...)`, `prepare_urmp(src, out, ...)` and
`prepare_music(src, out, settings, ...)`.
"""

from __future__ import annotations

from data_prep.prepare.music import prepare_music
from data_prep.prepare.solos import prepare_solos
from data_prep.prepare.urmp import prepare_urmp

__all__ = ["prepare_music", "prepare_solos", "prepare_urmp"]
