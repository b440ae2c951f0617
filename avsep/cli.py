"""The `avsep` command line: a thin layer over the library.

Each subcommand lives in its own module under `avsep.commands` and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable taking the parsed
arguments and returning an exit code. Heavy imports happen inside those callables, so
`avsep --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from avsep.faults import InputError

# Order is the order shown by `avsep --help`.
COMMAND_MODULES = [
    "avsep.commands.demo",
    "avsep.commands.synth",
    "avsep.commands.download",
    "avsep.commands.prepare",
    "avsep.commands.inspect",
    "avsep.commands.train",
    "avsep.commands.evaluate",
    "avsep.commands.separate",
    "avsep.commands.localize",
    "avsep.commands.import_sop",
    "avsep.commands.doctor",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avsep",
        description=(
            "Audio-visual music source separation (Sound of Pixels family): make stand-in "
            "data, prepare Solos/URMP shards, train, evaluate on URMP real mixtures, separate "
            "your own video and render sound-localization heatmaps."
        ),
    )
    from avsep import __version__

    parser.add_argument("--version", action="version", version=f"avsep {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except InputError as exc:  # the input's fault: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - commands handle input problems themselves
        # What reaches here is not a problem with the user's input (those are reported by
        # the commands): name the library or the line it came from and point to the doctor.
        from avsep.faults import report_fault

        report_fault(exc, f"avsep {args.command}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
