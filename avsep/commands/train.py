"""`avsep train`: mix-and-separate training on prepared Solos shards or the stand-in."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avsep.run_config import RunConfig

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
    from avsep.config import ConfigError
    from avsep.faults import InputError
    from avsep.models.vision import ImageNetWeightsError
    from avsep.presets import resolve_preset
    from avsep.run_config import load_run_config
    from avsep.sources import ShardReadError
    from avsep.training import NonFiniteLossError, check_run_dir, train

    overrides = list(args.overrides) + [f"data.dataset={args.dataset}"]
    if args.wandb:
        overrides.append(f"train.wandb={args.wandb}")
    try:
        config = load_run_config(resolve_preset(args.config), overrides)
    except (ConfigError, FileNotFoundError) as exc:
        return _error(exc, 2)
    run_dir = Path(args.run_dir)
    try:
        check_run_dir(run_dir, resume=not args.no_resume)  # before making any stand-in
        config = _with_data(config, args.data)
        summary = train(config, run_dir, device=args.device, resume=not args.no_resume)
    except (InputError, FileNotFoundError, ImageNetWeightsError) as exc:
        # bad input: a missing or damaged shard, a corrupt checkpoint.pt, a resume that
        # changes the model, weights that cannot be had...
        return _error(exc, 2)
    except (ShardReadError, NonFiniteLossError) as exc:
        # unreachable storage (a validation shard, or every training shard), or a diverged run
        return _error(exc, 1)
    if summary.get("rank", 0) == 0:
        print(_format_summary(summary, run_dir))
    return 0


def _error(exc: BaseException, code: int) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return code


def _with_data(config: RunConfig, data: str | None) -> RunConfig:
    """`config` reading the shards at --data (else its own `data.path`); for the synthetic
    dataset, the stand-in generated and prepared under --data (default: work/synthetic)."""
    if config.data.dataset == "synthetic":
        from avsep.workflows.standin import ensure_standin

        paths = ensure_standin(Path(data or "work/synthetic"), config.data.synthetic_preset)
        data = str(paths.solos_shards)
    return replace(config, data=replace(config.data, path=data or config.data.path))


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
