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
from dataclasses import replace
from pathlib import Path

from unseen_looks import make_data, score_set, train_run, training_arguments

from avsep.checkpoint import load_checkpoint, training_config
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
    training_arguments(parser, "same")
    parser.add_argument("--checkpoint", type=Path,
                        help="score this checkpoint instead of training one")
    args = parser.parse_args()
    training, held_out = rotation()[FOLD]
    root = args.root / f"bench_{held_out}"
    data = make_data(root, training, held_out, "bench", args.jobs)
    data.update(make_same_sets(root, training, args.jobs))

    if args.checkpoint:
        run_dir, chosen = args.checkpoint.parent, args.checkpoint
        steps, minutes = None, None
    else:
        run_dir = root / f"same_{args.tag or 'oneframe'}_seed{args.seed}"
        summary, spent, chosen = train_run(args, data["solos"], run_dir)
        steps, minutes = summary["step"], round(spent, 1)
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
