"""Throughput of `avsep prepare solos`: seconds of video prepared per second per core.

Prepares a raw Solos folder into a fresh output folder and prints wall time, CPU time and
throughput. Without --raw, generates the stand-in first (`avsep synth solos --preset P`).

    python benchmarks/prepare.py --raw data/solos --jobs 4
    python benchmarks/prepare.py --preset bench --jobs 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, help="raw Solos folder (default: make the stand-in)")
    parser.add_argument("--preset", default="bench", help="stand-in preset when --raw is absent")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (0 = in-process)")
    parser.add_argument("--keep", type=Path, help="keep the shards here instead of a temp dir")
    args = parser.parse_args()

    from data_prep.prepare.solos import prepare_solos

    work = Path(tempfile.mkdtemp(prefix="avsep-bench-prepare-"))
    try:
        raw = args.raw
        if raw is None:
            raw = work / "raw"
            print(f"generating the '{args.preset}' stand-in in {raw} ...", file=sys.stderr)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "avsep", "synth", "solos", "--preset",
                            args.preset, "--out", str(raw)], check=True)
            print(f"  generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        out = args.keep or work / "shards"
        if out.exists():
            shutil.rmtree(out)
        start = time.perf_counter()
        code = prepare_solos(raw, out, jobs=args.jobs)
        wall = time.perf_counter() - start
        summary = json.loads((out / "summary.json").read_text())
        cpu = summary["cpu_hours"] * 3600  # measured inside the workers, per video
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    source_s = summary["source_hours"] * 3600
    prepared_s = summary["hours"] * 3600
    cores = max(args.jobs, 1)
    print(f"raw: {raw} ({summary['units']} videos, {source_s:.0f} s of video, "
          f"{prepared_s:.0f} s inside playing spans)")
    print(f"jobs: {args.jobs}, wall: {wall:.1f} s, CPU in workers: {cpu:.1f} s, exit code {code}")
    print(f"output: {summary['samples']} samples, {summary['bytes'] / 1e6:.1f} MB "
          f"({summary['bytes'] / 1e6 / max(prepared_s / 60, 1e-9):.2f} MB per minute prepared)")
    print(f"throughput: {prepared_s / wall:.1f} s of video prepared per wall second, "
          f"{prepared_s / wall / cores:.1f} per second per core, "
          f"{prepared_s / max(cpu, 1e-9):.1f} per CPU second")
    return code


if __name__ == "__main__":
    sys.exit(main())
