"""`avsep inspect SHARDS`: what a prepared shard folder holds."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="summarize a prepared shard folder (classes, videos, hours, bytes)",
        description="Summarize prepared Solos or URMP shards: classes, videos or pieces, "
                    "hours, samples, bytes; flags duplicate keys, unreadable shards and "
                    "unfinished temporary files.")
    parser.add_argument("shards", help="a folder written by `avsep prepare`, or the same at a "
                                       "URL prefix (https://, s3://, gs://, pipe:), a shard "
                                       "list file or a brace pattern (streamed)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--allow-pipe-lists", action="store_true",
                        help="let a shard list file run its 'pipe:' lines (shell commands); "
                             "only for a list you wrote yourself")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avsep.sources import ReadPolicy, ShardReadError
    from data_prep.inspect import format_inspection, summarize_shards

    try:
        summary = summarize_shards(args.shards,
                                   ReadPolicy(allow_pipe_lists=args.allow_pipe_lists))
    except (FileNotFoundError, ShardReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2) if args.json else format_inspection(summary))
    # What is wrong here is wrong with the shards: exit 2, with one line saying what.
    if summary["shards"] == 0:
        print(f"error: no shards (*.tar) under {args.shards}", file=sys.stderr)
        return 2
    if summary["unreadable"]:
        count = len(summary["unreadable"])
        print(f"error: {count} unreadable shard{'s' if count > 1 else ''} "
              f"(the first: {summary['unreadable'][0]})", file=sys.stderr)
        return 2
    if summary["duplicate_keys"]:
        print(f"error: {summary['duplicate_keys']} duplicate sample keys in {args.shards}",
              file=sys.stderr)
        return 2
    return 0
