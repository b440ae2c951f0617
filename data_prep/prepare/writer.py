"""Crash-safe shard writing: a unit's shards appear complete or not at all.

Resume protocol (one unit = one Solos video or one URMP piece):

1. Before a unit starts, every file carrying its tag (`*-<tag>-NNN.tar` and `*.tar.tmp`)
   is deleted: leftovers of a run killed while working on it.
2. Its samples go through webdataset's `ShardWriter` into `<prefix>-<tag>-NNN.tar.tmp`
   (a new file past `shard_max_bytes` / `shard_max_samples`).
3. When the unit is finished, each `.tmp` is renamed to its final `.tar` name (an atomic
   rename on one filesystem), and only then is the unit's done-marker written
   (`OUT/manifest/<unit>.json`, itself written to a temporary name and renamed).

A unit is done exactly when its marker exists, matches the current settings and source
(fingerprint) and every shard it lists exists with the recorded size. Killing the run at any
moment therefore leaves only (a) finished units, which are skipped next time, and (b) files
of unfinished units, which step 1 removes. Shard names are deterministic per unit, so a rerun
never creates duplicates.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from data_prep.prepare.files import atomic_write_text
from data_prep.prepare.report import ShardFile, UnitResult

if TYPE_CHECKING:
    from webdataset import ShardWriter  # imported when the first sample is written

MANIFEST_DIR = "manifest"


def unit_files(directory: Path, tag: str) -> list[Path]:
    """Final and temporary shard files of the unit with this tag in `directory`."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"*-{tag}-*.tar*") if p.is_file())


def clear_unit_outputs(directories: list[Path], tag: str) -> int:
    """Delete every shard file (final or temporary) of a unit; return how many."""
    removed = 0
    for directory in directories:
        for path in unit_files(directory, tag):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class UnitShardWriter:
    """Writes one unit's samples to `<directory>/<prefix>-<tag>-NNN.tar` via temporary files.

    Use `write()` per sample, then `commit()` to publish the shards, or `abort()` to delete
    them. No file is created until the first sample arrives.

    Args:
        out: the output root; shard paths in results are relative to it.
        directory: where the shards go (e.g. OUT/train).
        prefix: shard name prefix, e.g. 'solos-train'.
        tag: the unit tag (see split.unit_tag).
        max_bytes, max_samples: limits of one shard file.
    """

    def __init__(
        self, out: Path, directory: Path, prefix: str, tag: str, max_bytes: int, max_samples: int
    ) -> None:
        self.out, self.directory = out, directory
        self.pattern = str(directory / f"{prefix}-{tag}-%03d.tar.tmp")
        self.max_bytes, self.max_samples = max_bytes, max_samples
        self._writer: ShardWriter | None = None
        self._temporary: list[str] = []
        self._counts: dict[str, int] = {}

    def write(self, sample: dict) -> None:
        """Add one sample: {'__key__': str, '<ext>': bytes | np.ndarray | dict, ...}, keys
        and member names as `avsep.shard_format` has them."""
        import webdataset as wds

        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = wds.ShardWriter(
                self.pattern,
                maxcount=self.max_samples,
                maxsize=self.max_bytes,
                post=self._temporary.append,
                verbose=0,
                mtime=0,  # reproducible tar headers: the same input gives the same bytes
            )
        self._writer.write(sample)
        current = self._writer.fname
        self._counts[current] = self._counts.get(current, 0) + 1

    def commit(self) -> list[ShardFile]:
        """Close the last shard and rename all temporaries to their final names."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        shards = []
        for tmp in self._temporary:
            final = Path(tmp.removesuffix(".tmp"))
            os.replace(tmp, final)
            shards.append(
                ShardFile(
                    path=final.relative_to(self.out).as_posix(),
                    bytes=final.stat().st_size,
                    samples=self._counts[tmp],
                )
            )
        self._temporary = []
        return shards

    def abort(self) -> None:
        """Close and delete whatever was written."""
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        for tmp in self._temporary + list(self._counts):
            Path(tmp).unlink(missing_ok=True)
        self._temporary = []


# Older versions recorded any unforeseen exception as the input's fault under this code and
# cached the unit as done; such units are redone (see `MarkerStore.is_complete`).
LEGACY_UNEXPECTED_ERROR = "unexpected_error"


class MarkerStore:
    """Done-markers of units: OUT/manifest/<unit id with '/' -> '__'>.json."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.directory = out / MANIFEST_DIR

    def path(self, unit: str) -> Path:
        return self.directory / (unit.replace("/", "__") + ".json")

    def load(self, unit: str) -> UnitResult | None:
        path = self.path(unit)
        if not path.is_file():
            return None
        try:
            return UnitResult.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError):  # unreadable marker: treat the unit as not done
            return None

    def save(self, result: UnitResult) -> None:
        atomic_write_text(self.path(result.unit), json.dumps(result.to_json(), indent=1) + "\n")

    def is_complete(self, unit: str, fingerprint: str) -> UnitResult | None:
        """The stored result if the unit is done for this fingerprint with all shards intact."""
        result = self.load(unit)
        if result is None or result.fingerprint != fingerprint:
            return None
        if any(issue.code == LEGACY_UNEXPECTED_ERROR for issue in result.issues):
            return None  # an older avsep blamed a fault of its own on the input: redo it
        for shard in result.shards:
            path = self.out / shard.path
            if not path.is_file() or path.stat().st_size != shard.bytes:
                return None
        return result

    def all(self) -> list[UnitResult]:
        if not self.directory.is_dir():
            return []
        results = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                results.append(UnitResult.from_json(json.loads(path.read_text())))
            except (ValueError, TypeError):
                continue
        return results
