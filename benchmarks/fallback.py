"""Do no harm: the separation fall back (`fallback_confidence`) off and on, per drawing family.

    python benchmarks/fallback.py --checkpoint work/unseen/bench_lineart/run_seed0/best.pt \\
        --checkpoint work/unseen/bench_lineart/run_seed1/best.pt
    python benchmarks/fallback.py --checkpoint X.pt --root work/unseen/bench_lineart \\
        --sets urmp_val --threshold 0.3 --all-pieces

For each checkpoint and set (`<root>/shards/<set>`, the families from
`<root>/raw/<set>/synth_manifest.json`), the duets (or every piece) are scored twice by the
URMP protocol (`avsep.evaluation.evaluate_urmp`): as trained, and with
`fallback_confidence = --threshold` switched on (`avsep.models.confidence`; nothing is
retrained). Per family: pieces, scored (segment, player) pairs, the share of those pairs
whose mask was blended (`engaged`: weight under 1), the mean weight of the even share in the
blend (1 - weight), SDR off and on, their difference and the mixture's SDR (dB, means over
the pairs scored in both runs), and the share of pairs below the mixture off and on. Prints one table per checkpoint and their mean; writes --out.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch

from avsep.checkpoint import load_checkpoint, training_config
from avsep.evaluation import evaluate_urmp
from avsep.evaluation.reader import index_urmp_shards, read_segment, select_pieces
from avsep.models.sop import SoundOfPixels
from avsep.training.checkpoints import git_commit
from avsep.workflows.demo import duet_pieces

SETS = ("urmp_val", "urmp_seen", "urmp_unseen")
# Chosen on urmp_val (docs/results/2026-12-07-fallback.md).
DEFAULT_THRESHOLD = 0.4


def families(raw: Path) -> dict[str, str]:
    """Piece folder name -> drawing family, from a synthetic set's manifest."""
    files = json.loads((raw / "synth_manifest.json").read_text())["files"]
    return {name: entry.get("family", "?") for name, entry in files.items()}


@torch.no_grad()
def fallen_back(model: SoundOfPixels, shards: Path, pieces: list[str], clip) -> dict:
    """(segment key, player) -> the weight of that source's own mask (1: kept; under 1 the
    fallback engaged), segment by segment as evaluation separates them."""
    out = {}
    for entry in select_pieces(index_urmp_shards(shards), None, pieces):
        segment = read_segment(entry, clip, model.sample_rate)
        mix = torch.from_numpy(segment.mix)[None]
        frames = torch.from_numpy(segment.frames)[None]
        weights = model.fallback_weights(mix, frames)[0]  # (N,)
        for player, weight in enumerate(weights.tolist()):
            out[(segment.key, player)] = weight
    return out


def score(model, shards: Path, pieces: list[str], clip) -> dict:
    """(segment key, player) -> (piece, model SDR, mixture SDR) of the scored pairs."""
    result = evaluate_urmp(model, shards, clip_spec=clip, pieces=pieces, progress=False)
    return {(p.key, p.player): (p.piece, p.scores["model"]["sdr"], p.scores["mixture"]["sdr"])
            for p in result.scored_pairs}


def score_set(model: SoundOfPixels, on: SoundOfPixels, root: Path, name: str, clip,
              all_pieces: bool) -> dict[str, dict]:
    """Per family of one set: the figures of the module docstring."""
    shards = root / "shards" / name
    pieces = (sorted({e.piece for e in index_urmp_shards(shards)}) if all_pieces
              else duet_pieces(shards))
    off, with_fallback = score(model, shards, pieces, clip), score(on, shards, pieces, clip)
    engaged = fallen_back(on, shards, pieces, clip)
    family_of = families(root / "raw" / name)
    rows: dict[str, list] = defaultdict(list)
    for pair in sorted(off.keys() & with_fallback.keys()):
        piece, sdr_off, mixture = off[pair]
        rows[family_of.get(piece, "?")].append(
            (piece, sdr_off, with_fallback[pair][1], mixture, engaged[pair]))
    table = {}
    for family, found in sorted(rows.items()):
        n = len(found)
        table[family] = {
            "pieces": len({r[0] for r in found}), "pairs": n,
            "engaged": sum(r[4] < 1 for r in found) / n,
            "even_share": sum(1 - r[4] for r in found) / n,
            "sdr_off": sum(r[1] for r in found) / n, "sdr_on": sum(r[2] for r in found) / n,
            "mixture_sdr": sum(r[3] for r in found) / n,
            "below_mixture_off": sum(r[1] < r[3] for r in found) / n,
            "below_mixture_on": sum(r[2] < r[3] for r in found) / n,
        }
        table[family]["gain"] = table[family]["sdr_on"] - table[family]["sdr_off"]
    return table


def print_table(title: str, tables: dict[str, dict[str, dict]]) -> None:
    print(f"\n{title}")
    print(f"{'set':<12}{'family':<11}{'pieces':>7}{'pairs':>6}{'engaged':>9}{'SDR off':>9}"
          f"{'SDR on':>8}{'diff':>7}{'mixture':>9}{'<mix off':>9}{'<mix on':>8}")
    for name, table in tables.items():
        for family, f in table.items():
            print(f"{name:<12}{family:<11}{f['pieces']:>7}{f['pairs']:>6}{f['engaged']:>9.2f}"
                  f"{f['sdr_off']:>9.2f}{f['sdr_on']:>8.2f}{f['gain']:>+7.2f}"
                  f"{f['mixture_sdr']:>9.2f}{f['below_mixture_off']:>9.2f}"
                  f"{f['below_mixture_on']:>8.2f}")


def mean_tables(runs: list[dict[str, dict[str, dict]]]) -> dict[str, dict[str, dict]]:
    """The figures averaged over checkpoints (sets and families all runs share)."""
    out: dict[str, dict[str, dict]] = {}
    for name in runs[0]:
        out[name] = {}
        for family in runs[0][name]:
            rows = [run[name][family] for run in runs if family in run.get(name, {})]
            out[name][family] = {key: sum(r[key] for r in rows) / len(rows)
                                 for key in rows[0]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, action="append", required=True,
                        help="a Sound of Pixels checkpoint with a class head and a tagger "
                             "(repeatable)")
    parser.add_argument("--root", type=Path, default=Path("work/unseen/bench_lineart"),
                        help="the fold's folder (shards/ and raw/ of benchmarks/unseen_looks.py)")
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="fallback_confidence when on")
    parser.add_argument("--all-pieces", action="store_true",
                        help="every piece of a set (trios too), not only the duets")
    parser.add_argument("--out", type=Path, default=None,
                        help="json path (default <root>/fallback[_all].json)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    runs = {}
    for path in args.checkpoint:
        model, payload = load_checkpoint(path, map_location="cpu")
        if not isinstance(model, SoundOfPixels):
            parser.error(f"{path}: not a Sound of Pixels model")
        clip = training_config(payload, path).data.clip
        on = SoundOfPixels(replace(model.config, fallback_confidence=args.threshold),
                           initialise=False)
        on.load_state_dict(model.state_dict())
        on.eval()
        runs[str(path)] = {name: score_set(model, on, args.root, name, clip, args.all_pieces)
                           for name in args.sets}
        print_table(f"{path} (fallback_confidence={args.threshold})", runs[str(path)])
    mean = mean_tables(list(runs.values()))
    if len(runs) > 1:
        print_table(f"mean of {len(runs)} checkpoints", mean)
    out = args.out or args.root / f"fallback{'_all' if args.all_pieces else ''}.json"
    out.write_text(json.dumps({"revision": git_commit(), "threshold": args.threshold,
                               "all_pieces": args.all_pieces, "runs": runs, "mean": mean},
                              indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
