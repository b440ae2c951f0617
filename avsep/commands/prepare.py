"""`avsep prepare solos|urmp|music`: decode raw videos once into webdataset shards."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EPILOG = """\
examples:
  avsep prepare solos --src data/solos --out shards/solos --jobs 8
  avsep prepare urmp --src data/urmp --out shards/urmp
  avsep prepare music --src data/music --out shards/music
  avsep prepare music --src data/music --out shards/music --test-ids testsepmusic.csv
  # a cluster job array of 16 tasks over one output folder (SLURM: --array=0-15):
  avsep prepare solos --src data/solos --out shards/solos --part $SLURM_ARRAY_TASK_ID/16

Resumable: run the same command again after an interruption (even kill -9); finished
videos/pieces are kept, unfinished ones are redone, nothing is duplicated. Problems with
inputs are printed, written to OUT/report.jsonl and counted in OUT/summary.json; the run
fails only if nothing usable was produced (or at the first problem with --strict).
A failure that is not about an input (a library that does not load, out of memory, a bug)
stops the run at once with a non-zero status, names where it came from, records nothing
against the input and is retried by the next run; `avsep doctor` checks the installation.
See docs/shards.md for the shard format.
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="decode raw Solos / URMP / MUSIC videos into webdataset shards",
        description="Decode raw Solos, URMP or MUSIC videos once into webdataset shards of 11025 Hz "
                    "audio and 8 fps JPEG frames (format: docs/shards.md).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    solos = datasets.add_parser(
        "solos", help="Solos videos -> train/val shards of playing-span chunks",
        description="RAW/<Class>/<video id>.mp4 -> OUT/train and OUT/val shards, one sample "
                    "per chunk of a playing span.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(solos)
    solos.add_argument("--timestamps", type=Path,
                       help="playing spans {Class: {id: [[start, end], ...]}} in frames at 25 "
                            "fps (default: RAW/solos_timestamps.json if present, otherwise "
                            "whole videos)")
    solos.add_argument("--val-fraction", type=float, default=0.1,
                       help="fraction of videos (by hash of the video id) in val (default 0.1)")
    solos.add_argument("--max-chunk", type=float, default=12.0, metavar="SECONDS",
                       help="spans are cut into equal chunks of at most this long (default 12)")
    solos.set_defaults(func=run)

    urmp = datasets.add_parser(
        "urmp", help="URMP pieces -> evaluation shards (mixture, stems, player crops)",
        description="RAW/NN_Title_c1_c2/ -> OUT/urmp-*.tar, one sample per 65535-sample "
                    "segment with the real mixture, the stems and one frame crop per player.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(urmp)
    urmp.add_argument("--min-tail", type=float, default=1.0, metavar="SECONDS",
                      help="keep the last partial segment (zero-padded) only if it holds at "
                           "least this much audio (default 1.0)")
    urmp.set_defaults(func=run)

    music = datasets.add_parser(
        "music", help="MUSIC / MUSIC-21 videos -> train/val/test shards of solos, duet shards",
        description="RAW/solo/<class>/<id>.mp4 -> OUT/train, OUT/val and OUT/test (a fixed "
                    "split by a hash of the video id: test below --test-fraction, val in the "
                    "next --val-fraction); RAW/duet/<a b>/<id>.mp4 -> OUT/duet, kept out of "
                    "training and evaluation. Whole videos (MUSIC has no playing spans), one "
                    "sample per chunk, in the Solos shard format with MUSIC-21 class indices.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(music)
    music.add_argument("--val-fraction", type=float, default=0.1,
                       help="fraction of solo videos (by hash of the id) in val (default 0.1)")
    music.add_argument("--test-fraction", type=float, default=0.1,
                       help="fraction of solo videos (by hash of the id) in test (default 0.1)")
    music.add_argument("--max-chunk", type=float, default=12.0, metavar="SECONDS",
                       help="videos are cut into equal chunks of at most this long (default 12)")
    music.add_argument("--test-ids", type=Path, metavar="FILE",
                       help="put these solo videos in test whatever their hash says, so a "
                            "published test list is never trained or validated on: a pair "
                            "list ('/class/id.wav, /class/id.wav' per line, e.g. "
                            "testsepmusic.csv) or one YouTube id per line")
    music.set_defaults(func=run)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", type=Path, required=True, help="raw dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="output shard folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel worker processes (default: all cores; 0 = run in this "
                             "process, for debugging)")
    parser.add_argument("--shard-size", default="512M",
                        help="largest shard file, e.g. 256M, 1G (default 512M)")
    parser.add_argument("--shard-samples", type=int, default=100_000,
                        help="most samples per shard file (default 100000)")
    parser.add_argument("--part", default="0/1", metavar="I/N",
                        help="only part I of N (0-based) of the videos/pieces, for job arrays")
    parser.add_argument("--strict", action="store_true",
                        help="stop with an error at the first unusable input")
    parser.add_argument("--retry-bad", action="store_true",
                        help="retry inputs an earlier run found unusable (changed files are "
                             "always retried)")
    parser.add_argument("--short-side", type=int, default=256,
                        help="frame size: shorter side in pixels (default 256)")
    parser.add_argument("--jpeg-quality", type=int, default=90, help="default 90")
    parser.add_argument("--unit-timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="stop a video/piece still decoding after this long and report it "
                             "as unusable (a hung decoder; default 1800; needs --jobs >= 1)")


def run(args: argparse.Namespace) -> int:
    from data_prep.prepare.settings import PrepareSettings, parse_size
    from data_prep.prepare.split import Part

    try:
        part = Part.parse(args.part)
        settings = PrepareSettings(
            short_side=args.short_side,
            jpeg_quality=args.jpeg_quality,
            shard_max_bytes=parse_size(args.shard_size),
            shard_max_samples=args.shard_samples,
            **(
                {"val_fraction": args.val_fraction, "max_chunk_s": args.max_chunk}
                if args.dataset in ("solos", "music")
                else {"min_tail_s": args.min_tail}
            ),
        )
        if args.dataset == "solos":
            from data_prep.prepare.solos import prepare_solos

            return prepare_solos(
                args.src, args.out, settings, timestamps=args.timestamps, jobs=args.jobs,
                part=part, strict=args.strict, retry_bad=args.retry_bad,
                unit_timeout_s=args.unit_timeout,
            )
        if args.dataset == "music":
            from avsep.evaluation.pair_csv import read_video_ids
            from data_prep.prepare.music import prepare_music

            test_ids = read_video_ids(args.test_ids) if args.test_ids is not None else None
            return prepare_music(
                args.src, args.out, settings, test_fraction=args.test_fraction,
                test_ids=test_ids, jobs=args.jobs, part=part, strict=args.strict,
                retry_bad=args.retry_bad, unit_timeout_s=args.unit_timeout,
            )
        from data_prep.prepare.urmp import prepare_urmp

        return prepare_urmp(
            args.src, args.out, settings, jobs=args.jobs, part=part, strict=args.strict,
            retry_bad=args.retry_bad, unit_timeout_s=args.unit_timeout,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
