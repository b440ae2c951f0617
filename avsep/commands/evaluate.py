"""`avsep evaluate`: separation quality on URMP real mixtures or MUSIC solo-pair mixtures,
with baselines."""

from __future__ import annotations

import argparse
import sys

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

PROTOCOLS = ("multi-clip", "center-clip", "both")  # as avsep.evaluation.request.PROTOCOLS


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
    from avsep import distributed
    from avsep.evaluation.request import check_request, evaluate_checkpoint
    from avsep.faults import InputError

    request = _request(args)
    try:
        protocol = check_request(request)  # fail before loading a model or starting ranks
    except InputError as exc:
        return _error(exc, 2)
    info = distributed.setup(args.device)
    try:
        try:
            done = evaluate_checkpoint(request, info.device, protocol)
        except InputError as exc:  # a damaged shard or checkpoint, a bad pair list or piece
            return _error(exc, 2)
        except (FloatingPointError, ShardReadError) as exc:
            return _error(exc, 1)
        if info.is_main:
            _print_results(done, info)
    finally:
        distributed.teardown()
    return 0


def _request(args: argparse.Namespace):
    """The library's `EvaluationRequest` of the parsed flags."""
    from avsep.evaluation.request import EvaluationRequest

    return EvaluationRequest(
        checkpoint=args.checkpoint, data=args.data, out=args.out, dataset=args.dataset,
        protocol=args.protocol, batch_size=args.batch_size, limit_pieces=args.limit_pieces,
        pieces=args.pieces, pairs=args.pairs, mixtures=args.mixtures, seed=args.seed,
        pairs_csv=args.pairs_csv, center_fps=args.center_fps, workers=args.workers,
        progress=not args.no_progress,
        policy=ReadPolicy(args.read_attempts, args.read_retry_delay, args.allow_pipe_lists))


def _error(exc: BaseException, code: int) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return code


def _print_results(done, info) -> None:
    """The terminal summary: each protocol's table, the comparison of both, the files."""
    from avsep.evaluation.protocol_comparison import format_comparison_table

    results = done.results
    for name, result in results.items():
        _print_result(name if len(results) > 1 else None, result, info)
    if done.comparison is not None:
        print("\nmulti-clip beside centre clip (means in dB; docs/music.md)")
        print(format_comparison_table(results["multi-clip"], results["center-clip"]))
        print(f"comparison: {done.comparison}")
    else:
        print(f"results: {done.out / 'results.md'}")


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
