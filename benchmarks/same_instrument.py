"""Players of the same instrument: separation and localization of same-instrument duets.

    python benchmarks/same_instrument.py --seed 0                   # train the demo, score it
    python benchmarks/same_instrument.py --seed 0 --tag share --set data.same_class_share=0.5
    python benchmarks/same_instrument.py --checkpoint RUN/best.pt     # score a trained model

The training videos and `urmp_val` / `urmp_seen` are fold 1's of `unseen_looks.py` (drawn in
the classic, shaded and pictogram families; made there if missing). Two more URMP sets are
made here, drawn in the same families, each with a duet of two players of one instrument
for each of `SAME_INSTRUMENT` (pieces 02 to 05):

- `urmp_same_val`: training music, another seed: the only pieces a setting may be chosen on;
- `urmp_same`: held-out music: the figures reported.

Printed per set: separation (model, mixture, ideal ratio mask SDR, dB) and heatmap peak
accuracy of its same-instrument duets, and of the duets of two different instruments of
`urmp_seen` (which must not get worse). `result.json` in the run folder keeps them with the
steps, the training time and the revision. A model figure is the mean of two seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from unseen_looks import make_data, score_set

from avsep.checkpoint import load_checkpoint, training_config
from avsep.presets import resolve_preset
from avsep.run_config import load_run_config
from avsep.training import train
from avsep.training.checkpoints import git_commit
from avsep.urmp_naming import parse_piece_name
from avsep.workflows.demo import duet_pieces
from avsep.workflows.standin import VALIDATION_SEED_OFFSET
from data_prep.prepare import prepare_urmp
from data_prep.synth import RunOptions, generate_urmp
from data_prep.synth.families import rotation
from data_prep.synth.presets import urmp_settings

FOLD = 1  # the demo's: lineart held out
SAME_INSTRUMENT = ("Violin", "Cello", "Flute", "Trumpet")
# 01 a duet of two instruments, 02-05 the same-instrument duets, 06 a trio
SAME_SETTINGS = {"pieces": 6, "seconds": 30.0, "same_instrument": SAME_INSTRUMENT}


def make_same_sets(root: Path, training: tuple[str, ...], jobs: int) -> dict[str, Path]:
    """Generate (once) and prepare the two same-instrument sets; {name: shards folder}."""
    options = RunOptions(jobs=jobs, progress=False)
    plans = {
        "urmp_same_val": (replace(options, seed=options.seed + VALIDATION_SEED_OFFSET + 1),
                          "solos"),
        "urmp_same": (replace(options, seed=options.seed + 1), "urmp"),
    }
    out = {}
    for name, (run_options, music) in plans.items():
        raw = root / "raw" / name
        done = raw / "fold_complete.json"
        if not done.exists():
            print(f"generating {raw}", flush=True)
            generate_urmp(raw, urmp_settings("bench", families=training, **SAME_SETTINGS),
                          run_options, music=music)
            done.write_text(json.dumps({"training": training, "music": music}))
        if prepare_urmp(raw, root / "shards" / name, jobs=jobs) != 0:
            raise SystemExit(f"preparing {raw} produced no usable shards")
        out[name] = root / "shards" / name
    return out


def same_class(piece: str) -> bool:
    codes = parse_piece_name(piece)[2]
    return len(set(codes)) == 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="training seed (train.seed)")
    parser.add_argument("--config", default="demo", help="training preset or YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides, as `avsep train --set`")
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget")
    parser.add_argument("--tag", default="",
                        help="names the run folder same_<tag>_seed<S> (the settings tried)")
    parser.add_argument("--checkpoint", type=Path,
                        help="score this checkpoint instead of training one")
    parser.add_argument("--root", type=Path, default=Path("work/unseen"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    training, held_out = rotation()[FOLD]
    root = args.root / f"bench_{held_out}"
    data = make_data(root, training, held_out, "bench", args.jobs)
    data.update(make_same_sets(root, training, args.jobs))

    if args.checkpoint:
        run_dir, chosen = args.checkpoint.parent, args.checkpoint
        steps, minutes = None, None
    else:
        config = load_run_config(resolve_preset(args.config),
                                 [f"train.max_minutes={args.minutes}", f"train.seed={args.seed}",
                                  *args.set])
        config = replace(config, data=replace(config.data, path=str(data["solos"])))
        run_dir = root / f"same_{args.tag or 'oneframe'}_seed{args.seed}"
        started = time.monotonic()
        summary = train(config, run_dir, progress=False)
        minutes = round((time.monotonic() - started) / 60, 1)
        steps = summary["step"]
        chosen = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "checkpoint.pt"
    model, payload = load_checkpoint(chosen, map_location="cpu")
    clip = training_config(payload, chosen).data.clip
    groups = {
        "urmp_same_val": ("urmp_same_val", True),
        "urmp_same": ("urmp_same", True),
        "urmp_seen (different)": ("urmp_seen", False),
    }
    figures = {}
    for label, (name, same) in groups.items():
        pieces = [p for p in duet_pieces(data[name]) if same_class(p) == same]
        figures[label] = score_set(model, clip, data[name], root / "raw" / name,
                                   run_dir / f"evaluation_{name}{'_same' if same else ''}",
                                   pieces=pieces)
    result = {"seed": args.seed, "revision": git_commit(), "checkpoint": str(chosen),
              "steps": steps, "train_minutes": minutes, "config": args.config,
              "overrides": args.set, **figures}
    (run_dir / "same_instrument.json").write_text(json.dumps(result, indent=2))
    print(f"{'duets':<24}{'n':>3}{'model':>8}{'mixture':>9}{'IRM':>7}{'peak acc':>10}"
          f"{'chance':>8}")
    for label, f in figures.items():
        print(f"{label:<24}{f['duets']:>3}{f['model_sdr']:>8.2f}{f['mixture_sdr']:>9.2f}"
              f"{f['irm_sdr']:>7.2f}{f['accuracy']:>10.3f}{f['chance']:>8.3f}")
    print(f"seed {args.seed}: {steps} steps in {minutes} min; {run_dir / 'same_instrument.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
