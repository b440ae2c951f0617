"""A command's output folder, written whole or not at all, never over its own inputs.

`avsep separate` and `avsep localize` write a set of files into the folder given as
`--out`. `staged_outputs` makes that safe:

- before any work, it refuses an `--out` that is a file, an output name that is one of the
  command's inputs (`avsep localize OUT/overlay.mp4 --out OUT` would truncate its own
  input), and, without `overwrite`, a folder that already holds outputs of an earlier run
  (the error lists them);
- the command writes into a staging folder inside `--out` (same file system, so the final
  renames are atomic); when it fails, the staging folder is removed and `--out` is as it
  was;
- when it succeeds, the earlier run's outputs are removed (a shorter video leaves no stale
  key frames behind) and the new ones are moved into place.

Outputs are named by patterns of top-level names (`region_*.wav`, `keyframes`), so the
outputs of an earlier run with other settings are recognised too.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from avsep.faults import InputError

STAGING_PREFIX = ".avsep-partial-"


class OutputError(InputError, ValueError):
    """An output folder that cannot be written as asked; names what is in the way."""


@dataclass(frozen=True)
class Staging:
    """Where a command writes (`folder`), and where its files end up (`out`)."""

    folder: Path
    out: Path

    def final(self, path: Path) -> Path:
        """The path a file written at `path` (inside `folder`) has once committed."""
        return self.out / Path(path).relative_to(self.folder)


def _owned(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _describe(path: Path) -> str:
    if path.is_dir():
        count = sum(1 for _ in path.rglob("*"))
        return f"{path.name}/ ({count} file{'s' if count != 1 else ''})"
    return path.name


def check_outputs(out: Path, patterns: Sequence[str], inputs: Sequence[Path],
                  overwrite: bool, option: str = "--out") -> list[Path]:
    """The earlier outputs in `out` that a run would replace (see the module docstring).

    Raises:
        OutputError: `out` is a file; an input is (inside) one of the outputs; earlier
            outputs are there and `overwrite` is false.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out} is a file; give a folder (it is created if needed)")
    resolved_out = out.resolve()
    for given in inputs:
        path = Path(given).resolve()
        if path == resolved_out or resolved_out.is_relative_to(path):
            raise OutputError(f"{option} {out} is the input {given} (or inside it); give "
                              "another output folder")
        if path.is_relative_to(resolved_out):
            top = path.relative_to(resolved_out).parts[0]
            if _owned(top, patterns) or top.startswith(STAGING_PREFIX):
                raise OutputError(
                    f"the input {given} is one of this command's outputs ({out / top} would "
                    f"be replaced); give another {option}")
    earlier = sorted(p for p in out.iterdir() if _owned(p.name, patterns)) if out.is_dir() else []
    if earlier and not overwrite:
        shown = ", ".join(_describe(p) for p in earlier[:6])
        more = f" and {len(earlier) - 6} more" if len(earlier) > 6 else ""
        raise OutputError(f"{out} already holds the outputs of an earlier run ({shown}{more}); "
                          "pass --overwrite to replace them, or give another " + option)
    return earlier


@contextmanager
def staged_outputs(out: str | os.PathLike, patterns: Sequence[str], inputs: Sequence[Path],
                   overwrite: bool = False) -> Iterator[Staging]:
    """Check `out` (`check_outputs`), then let the caller write into a staging folder and
    commit it to `out` when the block ends without an exception.

    Every top-level name the caller writes must match one of `patterns`, so that the next
    run recognises it.

    Raises:
        OutputError: as `check_outputs`.
    """
    out = Path(out)
    check_outputs(out, patterns, inputs, overwrite)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(STAGING_PREFIX + "*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        yield Staging(folder, out)
        written = sorted(folder.iterdir())
        unowned = [p.name for p in written if not _owned(p.name, patterns)]
        if unowned:
            raise AssertionError(f"outputs {unowned} match none of {list(patterns)}")
        # Checked again: another process may have written into `out` meanwhile.
        for earlier in check_outputs(out, patterns, inputs, overwrite=True):
            if earlier.is_dir() and not earlier.is_symlink():
                shutil.rmtree(earlier)
            else:
                earlier.unlink()
        for path in written:
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
