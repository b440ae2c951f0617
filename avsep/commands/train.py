"""`avsep train`: mix-and-separate training on prepared Solos shards or the stand-in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  avsep train --dataset solos --data shards/solos --config sop --run-dir runs/sop
  avsep train --dataset synthetic --config demo --run-dir runs/demo
  avsep train --dataset music --data shards/music --config sop --run-dir runs/sop-music
  avsep train --dataset solos --data shards/solos --config mhunet --set train.batch_size=32
  torchrun --nproc_per_node 4 -m avsep train --dataset solos --data shards/solos --config sop
  avsep train --dataset solos --data https://data.example.org/solos --config sop --run-dir runs/sop

The run directory is never deleted: training resumes from RUN_DIR/checkpoint.pt when it
exists (use --no-resume to refuse). A resume may change learning rates and milestones,
epochs, time limit, logging, workers and the data's location (the changes are printed and
appended to RUN_DIR/config_history.jsonl); it refuses other changes (the model, what a
sample is, seed, batch size, optimiser). Writes config.yaml, metrics.jsonl, curves.png,
checkpoint.pt, best.pt and wandb files (offline unless --wandb online).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a separator (mix-and-separate)",
        description="Train a separator with mix-and-separate on Solos shards (or the "
                    "generated stand-in), on CPU, one GPU, or many through torchrun.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["solos", "music", "synthetic"], default="solos",
                   help="solos / music: prepared shards at --data (`avsep prepare solos|music`); "
                        "synthetic: generate and prepare the Solos stand-in under --data "
                        "(default: work/synthetic)")
    p.add_argument("--data", help="prepared Solos or MUSIC shards (with train/ and val/): a folder, a URL "
                                  "prefix (https://, s3://, gs://, pipe:), a shard list file "
                                  "or a brace pattern")
    p.add_argument("--config", default="sop",
                   help="a YAML preset: a path, or the name of a shipped preset (sop, mhunet, demo; in avsep/configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.batch_size=32 (repeatable)")
    p.add_argument("--run-dir", default="runs/default", help="where checkpoints and logs go")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--wandb", choices=["online", "offline", "disabled"],
                   help="wandb mode (default: the config's, offline)")
    p.add_argument("--no-resume", action="store_true",
                   help="fail instead of resuming when the run directory has a checkpoint")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avsep.config import ConfigError, load_config
    from avsep.presets import resolve_preset
    from avsep.training.config import RunConfig

    overrides = list(args.overrides) + [f"data.dataset={args.dataset}"]
    if args.wandb:
        overrides.append(f"train.wandb={args.wandb}")
    try:
        config = load_config(RunConfig, resolve_preset(args.config), overrides)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = Path(args.run_dir)
    if args.no_resume and (run_dir / "checkpoint.pt").exists():
        print(f"error: {run_dir} already has a checkpoint and --no-resume was given",
              file=sys.stderr)
        return 2
    from dataclasses import replace

    if config.data.dataset == "synthetic":
        from avsep.workflows.standin import StandinMismatchError, ensure_standin

        root = Path(args.data or "work/synthetic")
        try:
            paths = ensure_standin(root, config.data.synthetic_preset)
        except StandinMismatchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        config = replace(config, data=replace(config.data, path=str(paths.solos_shards)))
    else:
        data = args.data or config.data.path
        if not data:
            print(f"error: --data SHARDS is required with --dataset {config.data.dataset} "
                  f"(the output of `avsep prepare {config.data.dataset}`)", file=sys.stderr)
            return 2
        config = replace(config, data=replace(config.data, path=data))
    if config.data.dataset == "music":
        config = _music_classes(config)

    from avsep.data.solos import shard_urls
    from avsep.faults import InputError
    from avsep.models.vision import ImageNetWeightsError
    from avsep.sources import ShardReadError
    from avsep.training.loop import (
        NonFiniteLossError,
        read_policy,
        train,
        validation_shard_urls,
    )

    try:  # before building anything: the shards are there, train and val
        shard_urls(config.data.path, "train", read_policy(config))
        validation_shard_urls(config.data.path, read_policy(config))
    except (FileNotFoundError, ShardReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = train(config, run_dir, device=args.device, resume=not args.no_resume)
    except InputError as exc:  # a damaged shard, a corrupt checkpoint.pt, a resume that
        print(f"error: {exc}", file=sys.stderr)  # changes the model...
        return 2
    except ShardReadError as exc:  # unreachable storage: a validation shard, or every
        print(f"error: {exc}", file=sys.stderr)  # training shard
        return 1
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ImageNetWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary.get("rank", 0) == 0:
        print(_format_summary(summary, run_dir))
    return 0


def _music_classes(config):
    """A class-conditioned model gets one output per MUSIC-21 class unless told otherwise
    (MUSIC shards count class indices in `avsep.classes.MUSIC21_CLASSES`)."""
    from dataclasses import replace

    from avsep.classes import MUSIC21_CLASSES
    from avsep.models import model_arguments

    try:
        known = model_arguments(config.model.name)
    except ValueError:  # an unknown model: training reports it with the known ones
        return config
    kwargs = dict(config.model.kwargs)
    if "num_classes" in known and "num_classes" not in kwargs:
        kwargs["num_classes"] = len(MUSIC21_CLASSES)
        config = replace(config, model=replace(config.model, kwargs=kwargs))
    return config


def _format_summary(summary: dict, run_dir: Path) -> str:
    lines = [f"trained to step {summary['step']} in {summary['minutes']:.1f} min"
             + (" (stopped by the time limit)" if summary["stopped_early"] else "")]
    if "val_sdr" in summary:
        lines.append(
            f"validation: loss {summary['val_loss']:.4f}  SDR {summary['val_sdr']:.2f} dB  "
            f"SIR {summary['val_sir']:.2f} dB  SAR {summary['val_sar']:.2f} dB  "
            f"(mixture SDR {summary['val_sdr_mixture']:.2f} dB)")
    lines.append(f"checkpoint: {run_dir / 'checkpoint.pt'}   curves: {run_dir / 'curves.png'}")
    return "\n".join(lines)
