"""Localization accuracy on stand-in (or real) URMP pieces: does the heatmap of player k's
sound peak inside player k's crop? Reported against chance (about 1 / players).

    python benchmarks/localization.py                                  # random tiny model
    python benchmarks/localization.py --checkpoint runs/demo/best.pt --raw raw/urmp
    python benchmarks/localization.py --model sop --fps 4              # random default size
    python benchmarks/localization.py --checkpoint runs/demo/best.pt --raw raw/urmp --negative
    python benchmarks/localization.py --checkpoint runs/demo/best.pt --raw raw/urmp \
        --reference estimates                   # the per-player maps `avsep localize` draws

Without --raw, the `tiny` URMP stand-in is generated in a temporary folder
(`avsep synth urmp --preset tiny`). Without --checkpoint, a model of the registry with random
weights is used (`avsep_unittest` by default): its accuracy should be near chance, a sanity
check of the measure. The measure is defined in `avsep.evaluation.localization`: at each output
frame, for each player whose stem is active, the location whose separated sound holds the
most of that player's energy net of the other players' must lie in the player's column.
cIoU@0.3 and AUC score the region of that player's map (normalised heat >= 0.5) against the
player's box (the stand-in's drawn box; the column for real pieces), as the field's
class-aware IoU (`avsep.evaluation.localization.success_scores`). Figures are also given for the
harder groups: the same-instrument duets (class alone cannot tell the players apart), duets
of instruments drawn alike (`LOOK_ALIKE`) and the pieces of three or more players.

`--negative` also renders each piece's heatmaps with silence, white noise and another
piece's audio (off-screen sound: the next piece that shares no instrument with it) in place
of its own, and prints, beside the true audio, for the total heat (or with `--reference
estimates` for the per-player heat `avsep localize --players` draws), the
heat's energy (relative to the true audio's), its share inside the players' boxes (with the
boxes' share of the picture: what uniform heat would give) and its peak-to-mean contrast,
each on the map's own scale; then the same two on the true audio's scale, summed over the
frames (`same_scale_figures`): the heat inside the boxes over the true audio's, and the maps'
peaks over the true maps' mean heat (the true audio's pooled contrast for itself).

A model trained with an audio tagger (`model.kwargs.audio_tagging`) gates each location's
mask by whether the instrument it shows is heard; `--ungated` scores the same checkpoint
without the gate, which is how the original heatmap reads the same separation nets.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

# Instruments the stand-in draws alike (the bowed strings share one shape in other sizes,
# oboe and clarinet are both straight dark tubes): duets of two of them are harder to tell
# apart by sight.
LOOK_ALIKE = ({"vn", "va", "vc", "db"}, {"ob", "cl"})


def offscreen_piece(folder: Path, folders: list[Path]) -> Path:
    """The piece whose audio is `folder`'s off-screen sound: the next one (in order, wrapping
    around) that shares no instrument with it, so none of its sounds has a player in the
    picture; the next one at all when every piece shares one."""
    from avsep.urmp_naming import parse_piece_name

    start = folders.index(folder)
    others = folders[start + 1:] + folders[:start]
    own = set(parse_piece_name(folder.name)[2])
    for other in others:
        if not own & set(parse_piece_name(other.name)[2]):
            return other
    return others[0] if others else folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, help="raw URMP folder (default: tiny stand-in)")
    parser.add_argument("--validation", type=Path, metavar="STANDIN",
                        help="score the validation pieces of the bench stand-in under STANDIN "
                             "(e.g. work/synthetic/bench; generated on first use): for "
                             "choosing settings, never for reporting")
    parser.add_argument("--checkpoint", help="a Sound of Pixels checkpoint")
    parser.add_argument("--model", default="avsep_unittest",
                        help="registry name of a random model without --checkpoint")
    parser.add_argument("--fps", type=float, default=8.0, help="frames scored per second")
    parser.add_argument("--activity-db", type=float, default=-20.0,
                        help="a player is scored where its stem holds this much of the mix")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0, help="random model seed")
    parser.add_argument("--reference", choices=["stems", "estimates"], default="stems",
                        help="weigh each bin by the stems' shares (default) or by the model's "
                             "own separation of each player's column (what avsep localize "
                             "--players draws, no ground truth)")
    parser.add_argument("--negative", action="store_true",
                        help="also the negative-audio checks (silence, noise, off-screen)")
    from avsep.commands.localize import (
        add_gate_arguments,
        check_gate_arguments,
        gate_from_arguments,
    )

    add_gate_arguments(parser)
    args = parser.parse_args()

    from avsep import create_model
    from avsep.evaluation.localization import (
        NEGATIVE_AUDIO,
        negative_audio_checks,
        score_pieces,
        summarize_localization,
    )
    from avsep.inference import prepare_model
    from avsep.inference.localize import localizer_for
    from avsep.urmp_naming import parse_piece_name

    if args.checkpoint:
        runner, name = prepare_model(args.checkpoint, args.device), args.checkpoint
    else:
        torch.manual_seed(args.seed)
        overrides = {"pretrained": False} if args.model == "sop" else {}
        runner = prepare_model(create_model(args.model, **overrides), args.device)
        name = f"random {args.model} (seed {args.seed})"
    try:
        gate = gate_from_arguments(args)
        check_gate_arguments(runner, args, name)
        localizer = localizer_for(runner.model, gate)
    except ValueError as exc:
        parser.error(str(exc))
    gate_note = ("; heat ungated" if args.ungated else
                 f"; heat gated by the audio tagger (locality {localizer.locality:g})"
                 if localizer.gated else "")
    print(f"model: {name}, device {runner.device}, image size {runner.spec.image_size}, "
          f"bins weighed by the {args.reference}{gate_note}")

    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw
        if args.validation is not None:
            if raw is not None:
                parser.error("give --raw or --validation, not both")
            from avsep.workflows.standin import ensure_validation_urmp

            raw, _ = ensure_validation_urmp(args.validation)
        if raw is None:
            from data_prep.synth import RunOptions, generate_urmp, urmp_settings

            raw = Path(tmp) / "urmp"
            generate_urmp(raw, urmp_settings("tiny"), RunOptions(progress=False))
        started = time.perf_counter()
        pieces = score_pieces(raw, runner, fps=args.fps, activity_db=args.activity_db,
                              reference=args.reference, progress=True, gate=gate)
        seconds = time.perf_counter() - started
        negative = {}
        if args.negative:
            folders = [Path(raw) / p.piece for p in pieces]
            for folder in folders:
                other = offscreen_piece(folder, folders)
                negative[folder.name] = negative_audio_checks(
                    folder, runner, offscreen=other / f"Vid_{other.name}.mp4", fps=args.fps,
                    heat="players" if args.reference == "estimates" else "total", gate=gate)

    print(f"{'piece':<34}{'players':>8}{'pairs':>7}{'accuracy':>10}{'chance':>8}"
          f"{'cIoU@0.3':>10}{'AUC':>7}  per player")
    for p in pieces:
        per_player = " ".join(f"{h}/{n}" for h, n in zip(p.hits, p.evaluated))
        scores = p.scores
        print(f"{p.piece:<34}{p.players:>8}{sum(p.evaluated):>7}{p.accuracy:>10.3f}"
              f"{p.chance_accuracy:>8.3f}{scores['ciou']:>10.3f}{scores['auc']:>7.3f}  "
              f"{per_player}")
    codes = {p.piece: parse_piece_name(p.piece)[2] for p in pieces}
    groups = {
        "all": pieces,
        "duets": [p for p in pieces if p.players == 2],
        "same-instrument duets": [p for p in pieces
                                  if p.players == 2 and len(set(codes[p.piece])) == 1],
        "look-alike duets": [p for p in pieces if p.players == 2
                             and len(set(codes[p.piece])) == 2
                             and any(set(codes[p.piece]) <= family for family in LOOK_ALIKE)],
        "3 or more players": [p for p in pieces if p.players >= 3],
    }
    for label, group in groups.items():
        if not group:
            continue
        total = summarize_localization(group)
        print(f"{label:<34}{'':>8}{total['pairs']:>7}{total['accuracy']:>10.3f}"
              f"{total['chance']:>8.3f}{total['ciou']:>10.3f}{total['auc']:>7.3f}")
    if negative:
        drawn = ("per-player heat (positive parts summed over the players)"
                 if args.reference == "estimates" else "total heat")
        print(f"\nheatmaps with other audio: {drawn} (mean over {len(negative)} pieces)")
        print("(in boxes, contrast: each map on its own scale; boxed heat, peak / true mean: on "
              "the true audio's scale, summed over the frames)")
        print(f"{'audio':<12}{'energy':>8}{'in boxes':>10}{'box share':>11}{'contrast':>10}"
              f"{'boxed heat':>12}{'peak / true mean':>18}{'frames with heat':>18}")
        for condition in ("true", *NEGATIVE_AUDIO):
            rows = [figures[condition] for figures in negative.values()]

            def mean(key: str, rows=rows) -> float:
                values = [r[key] for r in rows if r[key] == r[key]]  # NaN: no heat
                return sum(values) / len(values) if values else float("nan")

            print(f"{condition:<12}{mean('energy'):>8.3f}{mean('in_boxes'):>10.3f}"
                  f"{mean('box_share'):>11.3f}{mean('contrast'):>10.2f}"
                  f"{mean('boxed_heat'):>12.3f}{mean('peak_over_true_mean'):>18.2f}"
                  f"{sum(r['frames_with_heat'] for r in rows):>18}")
    print(f"{seconds:.1f} s for {len(pieces)} pieces")


if __name__ == "__main__":
    main()
