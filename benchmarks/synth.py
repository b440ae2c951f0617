"""Throughput of the stand-in generator: seconds of video made per wall-clock second.

    python benchmarks/synth.py                   # bench preset, both layouts, 2 jobs
    python benchmarks/synth.py --preset tiny --jobs 2 --out /tmp/standin

Writes into --out (kept) or a temporary folder (deleted afterwards) and prints, per layout,
files, minutes of video, wall seconds, video seconds per wall second, CPU seconds of the jobs
and size on disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bench", help="preset to make (default: bench)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="keep the output here (default: temporary)")
    args = parser.parse_args()

    from data_prep.synth import RunOptions, generate

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="avsep-synth-bench-"))
    try:
        start = time.perf_counter()
        summaries = generate(root, args.preset, RunOptions(seed=args.seed, jobs=args.jobs))
        wall = time.perf_counter() - start
        print(f"preset {args.preset}, {args.jobs} jobs, {os.cpu_count()} CPUs")
        for layout, summary in summaries.items():
            rate = summary.video_seconds / summary.wall_seconds
            print(f"{layout:5s}: {summary.files:4d} files, {summary.video_seconds / 60:6.1f} min "
                  f"of video in {summary.wall_seconds:6.1f} s wall = {rate:5.1f} s of video per "
                  f"second; {summary.cpu_seconds:6.1f} s CPU in jobs; "
                  f"{folder_bytes(root / layout) / 1e6:7.1f} MB")
        video = sum(s.video_seconds for s in summaries.values())
        print(f"total: {video / 60:.1f} min of video in {wall:.1f} s wall "
              f"({video / wall:.1f} s of video per second), {folder_bytes(root) / 1e6:.1f} MB")
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
