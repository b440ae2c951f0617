"""Deterministic, set-independent decisions: unit hashes, train/val split and job parts.

Each decision depends only on the unit's own id (a Solos video id, a URMP piece name), never
on which other files exist, so two people with different subsets of downloadable videos, or
the parallel parts of a cluster job array, agree on every unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def stable_hash(text: str) -> int:
    """A 64-bit integer from SHA-1 of `text` (the same on every machine and Python run)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


def unit_tag(unit_id: str) -> str:
    """Short hex tag used in a unit's shard names, e.g. 'solos-train-3fa9c0d2e1-000.tar'."""
    return f"{stable_hash(unit_id):016x}"[:10]


def split_of(video_id: str, val_fraction: float) -> str:
    """'val' for a fixed `val_fraction` of video ids (by hash), 'train' for the rest.

    The split is keyed by the video id alone, so every chunk of a video lands on the same
    side and adding or losing other videos never moves a video across.
    """
    position = stable_hash(f"split:{video_id}") / 2**64
    return "val" if position < val_fraction else "train"


def split3_of(video_id: str, val_fraction: float, test_fraction: float) -> str:
    """'test', 'val' or 'train' for a video id, by the position of its hash in [0, 1).

    'test' below `test_fraction`, 'val' in the next `val_fraction`, 'train' above. Keyed by
    the id alone, so the split never depends on which other videos exist.
    """
    position = stable_hash(f"split:{video_id}") / 2**64
    if position < test_fraction:
        return "test"
    return "val" if position < test_fraction + val_fraction else "train"


@dataclass(frozen=True)
class Part:
    """Part `index` (0-based) of `count` disjoint parts of the work."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Part:
        """'i/n' with 0 <= i < n (0-based, like SLURM_ARRAY_TASK_ID with --array=0-(n-1))."""
        try:
            index_text, count_text = text.split("/")
            index, count = int(index_text), int(count_text)
        except ValueError:
            raise ValueError(f"--part must look like i/n, e.g. 0/4, got {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(
                f"--part {text}: need 0 <= i < n (parts are 0-based: 0/{max(count, 1)} .. "
                f"{max(count, 1) - 1}/{max(count, 1)})"
            )
        return cls(index, count)

    def owns(self, unit_id: str) -> bool:
        return stable_hash(f"part:{unit_id}") % self.count == self.index

    def select(self, unit_ids: Sequence[T], key=str) -> list[T]:
        """The units of this part, in their given order."""
        return [u for u in unit_ids if self.owns(key(u))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
