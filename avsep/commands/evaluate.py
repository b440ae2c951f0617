"""`avsep evaluate`: separation quality on URMP real mixtures, with baselines."""

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

Shards given by URL (https://, s3://, gs://, pipe:; a shard list; a brace pattern) are copied
to a temporary folder under $TMPDIR first; a shard that cannot be read after
--read-attempts tries stops the evaluation, naming its URL.

Every player of every 65535-sample segment is separated from the real mixture and scored
against its separate recording (SDR, SIR, SAR, SI-SDR on the real samples of the segment).
The unprocessed mixture and the ideal binary / ratio masks are scored on the same segments.
Writes RESULTS/results.json, RESULTS/segments.csv and RESULTS/results.md.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on URMP real mixtures",
        description="Evaluate a trained separator on URMP's real mixtures (the Solos paper's "
                    "protocol), with the unprocessed mixture and ideal masks as baselines.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["urmp"], default="urmp",
                   help="evaluation set (only urmp: real mixtures with separate stems)")
    p.add_argument("--data", required=True, metavar="SHARDS",
                   help="URMP shards (the output of `avsep prepare urmp`): a folder, a URL "
                        "prefix, a shard list file or a brace pattern")
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
    p.add_argument("--workers", type=int, default=2,
                   help="threads decoding segments ahead of the model (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--read-attempts", type=int, default=READ_ATTEMPTS,
                   help=f"tries per remote shard (default {READ_ATTEMPTS})")
    p.add_argument("--read-retry-delay", type=float, default=READ_RETRY_DELAY_S, metavar="S",
                   help=f"seconds between tries (default {READ_RETRY_DELAY_S})")
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
    from avsep.evaluation import clip_spec_from_config, evaluate_urmp, format_table
    from avsep.evaluation.reader import urmp_shard_urls

    try:
        policy = ReadPolicy(args.read_attempts, args.read_retry_delay)
        urmp_shard_urls(args.data, policy)  # fail before loading a model or starting ranks
    except (FileNotFoundError, ShardReadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info = distributed.setup(args.device)
    try:
        try:
            model, payload = load_checkpoint(checkpoint, map_location=info.device)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            result = evaluate_urmp(
                model, args.data, args.out, batch_size=args.batch_size, device=info.device,
                clip_spec=clip_spec_from_config(payload.get("config")),
                limit_pieces=args.limit_pieces, pieces=args.pieces, workers=args.workers,
                progress=not args.no_progress, policy=policy,
                info={"checkpoint": str(checkpoint), "step": payload.get("step")},
            )
        except (FileNotFoundError, ValueError) as exc:
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
