"""`avsep doctor`: check that the installation can run avsep, and say how to fix it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

EPILOG = """\
Each native part is exercised on a tiny generated input (a resample, a 1-second video
decoded by PyAV and decord, a JPEG round trip, a FluidSynth note, a webdataset shard),
because a mismatched library usually imports fine and fails on first use.
Exit status: 0 when everything works, 1 when something is broken (named, with a fix).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check the installation (versions, and each native library exercised)",
        description="Print the versions avsep depends on and exercise each native library "
                    "on a tiny generated input; name what is broken and how to fix it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quiet", action="store_true",
                        help="print only problems and the verdict")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these checks (e.g. torchaudio decord)")
    parser.add_argument("--lock", type=Path,
                        help="lock file to compare installed versions with (default: "
                             "requirements.lock of the source checkout avsep runs from, "
                             "or of the current folder)")
    parser.set_defaults(func=run)


def _default_lock() -> Path | None:
    import avsep

    checkout = Path(avsep.__file__).resolve().parent.parent  # an editable install's checkout
    for candidate in (checkout / "requirements.lock", Path("requirements.lock")):
        if candidate.is_file():
            return candidate
    return None


def run(args: argparse.Namespace) -> int:
    from avsep.doctor import PROBES, format_checks, locked_versions, run_checks

    if args.only:
        known = {probe.name.lower() for probe in PROBES}
        unknown = [name for name in args.only if name.lower() not in known]
        if unknown:
            names = ", ".join(probe.name for probe in PROBES)
            print(f"error: unknown check {', '.join(unknown)} (choose from {names})",
                  file=sys.stderr)
            return 2
    lock_path = args.lock or _default_lock()
    if args.lock is not None and not args.lock.is_file():
        print(f"error: lock file not found: {args.lock}", file=sys.stderr)
        return 2
    lock = locked_versions(lock_path) if lock_path is not None else None
    checks = run_checks(args.only, lock)
    if args.json:
        print(json.dumps([asdict(check) for check in checks], indent=2))
    else:
        print(format_checks(checks, quiet=args.quiet))
    return 0 if all(check.ok for check in checks) else 1
