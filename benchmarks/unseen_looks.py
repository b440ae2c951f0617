"""Leave one drawing family out: train on the other families, score on the held-out one.

    python benchmarks/unseen_looks.py --fold 1                 # hold out "lineart"
    python benchmarks/unseen_looks.py --fold 1 --seed 1        # the second training seed
    python benchmarks/unseen_looks.py --fold 1 --config demo --set model.kwargs.X=...

Fold k holds out `data_prep.synth.families.FAMILIES[k]` (the fixed rotation,
`families.rotation`). Under `--root/<held-out>`:

- `raw/solos`: the Solos-layout training videos, drawn in the training families only;
- `raw/urmp_val`: URMP validation pieces (training music, another seed), drawn in the training
  families: the only pieces a setting may be chosen on;
- `raw/urmp_seen` and `raw/urmp_unseen`: the held-out pieces (held-out music), the same audio
  drawn once in the training families and once in the held-out family.

The demo preset (or `--config`) trains for `--minutes` and is scored on the duets of each
set: separation (model, mixture and ideal ratio mask SDR, dB) and heatmap peak accuracy
(chance beside it). One row is printed and `result.json` written; a model figure is the mean
of two training seeds. The studio style is not a family: it stays evaluation-only.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from avsep.checkpoint import load_checkpoint, training_config
from avsep.evaluation import evaluate_urmp
from avsep.evaluation.localization import score_piece, summarize_localization
from avsep.inference import prepare_model
from avsep.presets import resolve_preset
from avsep.run_config import load_run_config
from avsep.training import train
from avsep.training.checkpoints import git_commit
from avsep.workflows.demo import duet_pieces
from avsep.workflows.standin import STANDIN_VAL_FRACTION, VALIDATION_SEED_OFFSET
from data_prep.prepare import prepare_solos, prepare_urmp
from data_prep.prepare.settings import PrepareSettings
from data_prep.synth import RunOptions, generate_solos, generate_urmp
from data_prep.synth.families import FAMILIES, rotation
from data_prep.synth.presets import solos_settings, urmp_settings

SETS = ("urmp_val", "urmp_seen", "urmp_unseen")


def make_data(root: Path, training: tuple[str, ...], held_out: str, preset: str,
              jobs: int) -> dict[str, Path]:
    """Generate (once) and prepare the fold's sets; returns {name: shards folder}."""
    raw, shards = root / "raw", root / "shards"
    options = RunOptions(jobs=jobs, progress=False)
    later = replace(options, seed=options.seed + VALIDATION_SEED_OFFSET)
    plans = {
        "solos": lambda out: generate_solos(out, solos_settings(preset, families=training),
                                            options),
        "urmp_val": lambda out: generate_urmp(out, urmp_settings(preset, families=training),
                                              later, music="solos"),
        "urmp_seen": lambda out: generate_urmp(out, urmp_settings(preset, families=training),
                                               options),
        "urmp_unseen": lambda out: generate_urmp(
            out, urmp_settings(preset, families=(held_out,)), options),
    }
    for name, make in plans.items():
        done = raw / name / "fold_complete.json"
        if not done.exists():
            print(f"generating {raw / name}", flush=True)
            make(raw / name)
            done.write_text(json.dumps({"training": training, "held_out": held_out}))
    settings = PrepareSettings(val_fraction=STANDIN_VAL_FRACTION)
    if prepare_solos(raw / "solos", shards / "solos", settings, jobs=jobs) != 0:
        raise SystemExit(f"preparing {raw / 'solos'} produced no usable shards")
    for name in SETS:
        if prepare_urmp(raw / name, shards / name, jobs=jobs) != 0:
            raise SystemExit(f"preparing {raw / name} produced no usable shards")
    return {name: shards / name for name in ("solos", *SETS)}


def score_set(model, clip, shards: Path, raw: Path, out: Path,
              pieces: list[str] | None = None) -> dict:
    """Separation and peak accuracy on the duets of one URMP set (or on `pieces`)."""
    duets = duet_pieces(shards) if pieces is None else pieces
    result = evaluate_urmp(model, shards, out, clip_spec=clip, pieces=duets, progress=False)
    scores = result.summary()["overall"]["scores"]
    runner = prepare_model(model, spec=clip)  # loaded once for every piece
    pieces = [score_piece(raw / piece, runner) for piece in duets]
    located = summarize_localization(pieces)
    return {"duets": len(duets),
            **{f"{method}_sdr": scores[method]["sdr"]["mean"] for method in scores},
            "accuracy": located["accuracy"], "chance": located["chance"]}


def training_arguments(parser: argparse.ArgumentParser, folder: str) -> None:
    """The options of a benchmark that trains one run on a fold's data."""
    parser.add_argument("--seed", type=int, default=0, help="training seed (train.seed)")
    parser.add_argument("--config", default="demo", help="training preset or YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides, as `avsep train --set`")
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget")
    parser.add_argument("--tag", default="",
                        help=f"names the run folder {folder}_<tag>_seed<S> (the settings tried)")
    parser.add_argument("--root", type=Path, default=Path("work/unseen"))
    parser.add_argument("--jobs", type=int, default=2)


def train_run(args: argparse.Namespace, solos: Path, run_dir: Path) -> tuple[dict, float, Path]:
    """Train the `--config` preset with `--set`, `--seed` and `--minutes` on `solos` shards;
    returns the training summary, the minutes it took and the checkpoint to score."""
    config = load_run_config(resolve_preset(args.config),
                             [f"train.max_minutes={args.minutes}", f"train.seed={args.seed}",
                              *args.set])
    config = replace(config, data=replace(config.data, path=str(solos)))
    started = time.monotonic()
    summary = train(config, run_dir, progress=False)
    minutes = (time.monotonic() - started) / 60
    chosen = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "checkpoint.pt"
    return summary, minutes, chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fold", type=int, required=True,
                        help=f"which family is held out: 0..{len(FAMILIES) - 1} "
                             f"({', '.join(FAMILIES)})")
    parser.add_argument("--preset", default="bench", help="stand-in size (bench, tiny)")
    training_arguments(parser, "run")
    args = parser.parse_args()
    if not 0 <= args.fold < len(FAMILIES):
        parser.error(f"--fold must be in 0..{len(FAMILIES) - 1}")
    training, held_out = rotation()[args.fold]
    root = args.root / f"{args.preset}_{held_out}"
    data = make_data(root, training, held_out, args.preset, args.jobs)

    run_dir = root / (f"run_{args.tag}_seed{args.seed}" if args.tag else f"run_seed{args.seed}")
    summary, minutes, chosen = train_run(args, data["solos"], run_dir)
    model, payload = load_checkpoint(chosen, map_location="cpu")
    clip = training_config(payload, chosen).data.clip
    figures = {name: score_set(model, clip, data[name], root / "raw" / name,
                               run_dir / f"evaluation_{name}") for name in SETS}
    result = {"fold": args.fold, "held_out": held_out, "training": list(training),
              "seed": args.seed, "revision": git_commit(), "steps": summary["step"],
              "train_minutes": round(minutes, 1),
              "config": args.config, "overrides": args.set, **figures}
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(f"{'set':<12}{'duets':>6}{'model':>8}{'mixture':>9}{'IRM':>7}{'peak acc':>10}"
          f"{'chance':>8}")
    for name in SETS:
        f = figures[name]
        print(f"{name:<12}{f['duets']:>6}{f['model_sdr']:>8.2f}{f['mixture_sdr']:>9.2f}"
              f"{f['irm_sdr']:>7.2f}{f['accuracy']:>10.3f}"
              f"{f['chance']:>8.3f}")
    print(f"fold {args.fold} (held out {held_out}, trained on {', '.join(training)}), seed "
          f"{args.seed}: {summary['step']} steps in {minutes:.1f} min; {run_dir / 'result.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
