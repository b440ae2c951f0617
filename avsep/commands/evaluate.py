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
"""


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
    from avsep.evaluation import clip_spec_from_config, evaluate_music, evaluate_urmp, format_table
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
        try:
            if music:
                data_config = (payload.get("config") or {}).get("data") or {}
                result = evaluate_music(
                    model, args.data, args.out, pairs_file=args.pairs, mixtures=args.mixtures,
                    seed=args.seed, mixing=data_config.get("mixing", "sop"), **common)
            else:
                result = evaluate_urmp(
                    model, args.data, args.out, limit_pieces=args.limit_pieces,
                    pieces=args.pieces, **common)
        except InputError as exc:  # a damaged shard, a bad pair list or piece name...
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (FloatingPointError, ShardReadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if info.is_main:
            print(format_table(result))
            timing = result.timing
            per_segment = timing["wall"] / max(result.segments, 1)
            ranks = f", summed over {info.world_size} ranks" if info.distributed else ""
            print(f"{timing['wall']:.1f} s ({per_segment:.2f} s per segment; model "
                  f"{timing['model']:.1f} s, metrics {timing['metrics']:.1f} s{ranks})")
            print(f"results: {Path(args.out) / 'results.md'}")
    finally:
        distributed.teardown()
    return 0
