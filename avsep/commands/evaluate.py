"""`avsep evaluate`: separation quality on URMP real mixtures or MUSIC solo-pair mixtures,
with baselines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avsep.sources import READ_ATTEMPTS, READ_RETRY_DELAY_S, ReadPolicy, ShardReadError

EPILOG = """\
examples:
  avsep evaluate --dataset urmp --data shards/urmp --checkpoint runs/sop/best.pt --out results/sop
  avsep evaluate --dataset urmp --data shards/urmp --checkpoint sop-original.pt --out results/orig \\
      --limit-pieces 3
  torchrun --nproc_per_node 4 -m avsep evaluate --dataset urmp --data shards/urmp \\
      --checkpoint runs/sop/best.pt --out results/sop
  avsep evaluate --data https://data.example.org/urmp --checkpoint runs/sop/best.pt --out results/sop
  avsep evaluate --dataset music --data shards/music --checkpoint runs/sop-music/best.pt \\
      --out results/music [--mixtures 256 --seed 0 | --pairs published/pairs.json]
  avsep evaluate --dataset music --data shards/music --checkpoint runs/sop-music/best.pt \\
      --out results/music --pairs-csv testsepmusic.csv [--protocol both]

Shards given by URL (https://, s3://, gs://, pipe:; a shard list; a brace pattern) are copied
to a temporary folder under $TMPDIR first; a shard that cannot be read after
--read-attempts tries stops the evaluation, naming its URL.

Every player of every 65535-sample segment is separated from the real mixture and scored
against its separate recording (SDR, SIR, SAR, SI-SDR on the real samples of the segment).
The unprocessed mixture and the ideal binary / ratio masks are scored on the same segments.
Writes RESULTS/results.json, RESULTS/segments.csv and RESULTS/results.md.

MUSIC (--dataset music): each mixture is two 65535-sample windows of solo videos of different
classes from the test split, mixed as in training; both sources are scored as above. The
mixtures come from a pair list (video a, offset a, video b, offset b) drawn with --seed from
the test split, or given with --pairs; it is written to RESULTS/pairs.json and its SHA-1 is
in results.json (format: docs/contracts.md). The same test split and seed give the same
list, and the same list and checkpoint the same numbers.

MUSIC with a published list (--pairs-csv, the format of iQuery's and DAVIS's
testsepmusic.csv: "/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav" per line): every line is
one mixture, each video scored on one clip around its middle, as those papers do
(--protocol center-clip, the default with --pairs-csv). Lines naming a video absent from
the test split are skipped and counted; the missing ids are listed. --protocol both also
runs the multi-clip protocol and writes RESULTS/multi-clip/, RESULTS/center-clip/ and
RESULTS/comparison.md, the two side by side. Details and the arithmetic: docs/music.md.
"""

PROTOCOLS = ("multi-clip", "center-clip", "both")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on URMP real mixtures or MUSIC solo pairs",
        description="Evaluate a trained separator on URMP's real mixtures (the Solos paper's "
                    "protocol) or on mixtures of two MUSIC solo test videos (Sound of Pixels' "
                    "protocol), with the unprocessed mixture and ideal masks as baselines.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["urmp", "music"], default="urmp",
                   help="urmp: real mixtures with separate stems; music: mixtures of two solo "
                        "test videos (default urmp)")
    p.add_argument("--data", required=True, metavar="SHARDS",
                   help="URMP shards (`avsep prepare urmp`) or MUSIC shards (`avsep prepare "
                        "music`, its test/ split is read): a folder, a URL prefix, a shard "
                        "list file or a brace pattern")
    p.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="an avsep checkpoint (training's best.pt, or `avsep import-sop` output)")
    p.add_argument("--out", required=True, metavar="RESULTS",
                   help="folder for results.json, segments.csv and results.md")
    p.add_argument("--batch-size", type=int, default=4,
                   help="segments separated at once (default 4)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--limit-pieces", type=int, metavar="N",
                   help="evaluate only the first N pieces (a quick look)")
    p.add_argument("--pieces", nargs="+", metavar="PIECE",
                   help="evaluate only these pieces (folder names, e.g. 01_Jupiter_vn_vc)")
    p.add_argument("--pairs", metavar="FILE",
                   help="music: the pair list to evaluate (a pairs.json written by an earlier "
                        "run or published with results); default: draw one with --seed")
    p.add_argument("--mixtures", type=int, default=256,
                   help="music: mixtures to draw when no --pairs is given (default 256)")
    p.add_argument("--seed", type=int, default=0,
                   help="music: seed of the drawn pair list (default 0)")
    p.add_argument("--pairs-csv", metavar="FILE",
                   help="music: a published pair list ('/class/id.wav, /class/id.wav' per "
                        "line: iQuery's and DAVIS's testsepmusic.csv, iQuery's "
                        "testsepmusic21.csv), scored on one centre clip per video")
    p.add_argument("--protocol", choices=PROTOCOLS,
                   help="music: multi-clip (avsep's pair list; the default without "
                        "--pairs-csv), center-clip (the --pairs-csv list; the default with "
                        "it) or both, side by side")
    p.add_argument("--center-fps", type=int, default=1, metavar="FPS",
                   help="music, center-clip: frame rate of the list's frame index, which "
                        "places the centre frame (default 1, as iQuery's scripts)")
    p.add_argument("--workers", type=int, default=2,
                   help="threads decoding segments ahead of the model (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--read-attempts", type=int, default=READ_ATTEMPTS,
                   help=f"tries per remote shard (default {READ_ATTEMPTS})")
    p.add_argument("--read-retry-delay", type=float, default=READ_RETRY_DELAY_S, metavar="S",
                   help=f"seconds between tries (default {READ_RETRY_DELAY_S})")
    p.add_argument("--allow-pipe-lists", action="store_true",
                   help="let a shard list file given as --data run its 'pipe:' lines (shell "
                        "commands); only for a list you wrote yourself")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        print(f"error: {checkpoint}: checkpoint not found", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print(f"error: --batch-size must be at least 1, got {args.batch_size}", file=sys.stderr)
        return 2

    from avsep import distributed
    from avsep.checkpoint import load_checkpoint
    from avsep.evaluation import (
        clip_spec_from_config,
        evaluate_music,
        evaluate_music_center,
        evaluate_urmp,
    )
    from avsep.evaluation.protocol_comparison import (
        CENTER_DIR,
        MULTI_DIR,
        format_comparison_table,
        write_comparison,
    )
    from avsep.evaluation.reader import urmp_shard_urls
    from avsep.faults import InputError
    from avsep.sources import dataset_shards

    music = args.dataset == "music"
    if music and (args.limit_pieces is not None or args.pieces):
        print("error: --limit-pieces and --pieces are for urmp; MUSIC mixtures come from "
              "--pairs or --mixtures", file=sys.stderr)
        return 2
    if music and args.pairs and not Path(args.pairs).is_file():
        print(f"error: {args.pairs}: pair list not found", file=sys.stderr)
        return 2
    protocol = _music_protocol(args)
    if protocol is None:
        return 2
    if protocol in ("center-clip", "both"):
        from avsep.evaluation.pair_csv import read_pair_csv

        try:
            read_pair_csv(args.pairs_csv)  # a bad line fails before a model is loaded
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        policy = ReadPolicy(args.read_attempts, args.read_retry_delay, args.allow_pipe_lists)
        # fail before loading a model or starting ranks
        if music:
            dataset_shards(args.data, "test", policy)
        else:
            urmp_shard_urls(args.data, policy)
    except (InputError, FileNotFoundError, ShardReadError) as exc:
        hint = " (the output of `avsep prepare music`)" if music else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2
    info = distributed.setup(args.device)
    try:
        try:
            model, payload = load_checkpoint(checkpoint, map_location=info.device)
        except InputError as exc:  # a missing, truncated or foreign checkpoint
            print(f"error: {exc}", file=sys.stderr)
            return 2
        common = {
            "batch_size": args.batch_size, "device": info.device,
            "clip_spec": clip_spec_from_config(payload.get("config")), "workers": args.workers,
            "progress": not args.no_progress, "policy": policy,
            "info": {"checkpoint": str(checkpoint), "step": payload.get("step")},
        }
        results = {}
        try:
            if music:
                data_config = (payload.get("config") or {}).get("data") or {}
                mixing = data_config.get("mixing", "sop")
                out = Path(args.out)
                both = protocol == "both"
                if protocol in ("multi-clip", "both"):
                    results["multi-clip"] = evaluate_music(
                        model, args.data, out / MULTI_DIR if both else out,
                        pairs_file=args.pairs, mixtures=args.mixtures, seed=args.seed,
                        mixing=mixing, **common)
                if protocol in ("center-clip", "both"):
                    results["center-clip"] = evaluate_music_center(
                        model, args.data, args.pairs_csv, out / CENTER_DIR if both else out,
                        fps=args.center_fps, mixing=mixing, **common)
            else:
                results["urmp"] = evaluate_urmp(
                    model, args.data, args.out, limit_pieces=args.limit_pieces,
                    pieces=args.pieces, **common)
        except InputError as exc:  # a damaged shard, a bad pair list or piece name...
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (FloatingPointError, ShardReadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if info.is_main:
            for name, result in results.items():
                _print_result(name if len(results) > 1 else None, result, info)
            if protocol == "both":
                path = write_comparison(args.out, results["multi-clip"], results["center-clip"])
                print("\nmulti-clip beside centre clip (means in dB; docs/music.md)")
                print(format_comparison_table(results["multi-clip"], results["center-clip"]))
                print(f"comparison: {path}")
            else:
                print(f"results: {Path(args.out) / 'results.md'}")
    finally:
        distributed.teardown()
    return 0


def _music_protocol(args: argparse.Namespace) -> str | None:
    """The protocol(s) to run (None after printing why the flags do not fit together)."""
    def refuse(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)

    if args.dataset != "music":
        if args.pairs_csv or args.protocol:
            refuse("--pairs-csv and --protocol are for --dataset music")
            return None
        return "urmp"
    protocol = args.protocol or ("center-clip" if args.pairs_csv else "multi-clip")
    if protocol != "multi-clip" and not args.pairs_csv:
        refuse(f"--protocol {protocol} scores a published list: give it with --pairs-csv FILE")
        return None
    if protocol == "multi-clip" and args.pairs_csv:
        refuse("--pairs-csv is scored by the centre-clip protocol: use --protocol "
               "center-clip or both")
        return None
    if protocol == "center-clip" and args.pairs:
        refuse("--pairs is the multi-clip protocol's list (pairs.json): with --protocol "
               "center-clip give only --pairs-csv, or use --protocol both")
        return None
    if args.center_fps < 1:
        refuse(f"--center-fps must be at least 1, got {args.center_fps}")
        return None
    return protocol


def _print_result(title: str | None, result, info) -> None:
    """The terminal summary of one result: its table, what the list covered, the time."""
    from avsep.evaluation import format_table
    from avsep.evaluation.report import pair_list_coverage

    if title is not None:
        print(f"\n{title} protocol")
    print(format_table(result))
    if "pair_list" in result.info:
        print(pair_list_coverage(result.info["pair_list"]))
    timing = result.timing
    per_segment = timing["wall"] / max(result.segments, 1)
    ranks = f", summed over {info.world_size} ranks" if info.distributed else ""
    print(f"{timing['wall']:.1f} s ({per_segment:.2f} s per segment; model "
          f"{timing['model']:.1f} s, metrics {timing['metrics']:.1f} s{ranks})")
