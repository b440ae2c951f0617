"""`avsep demo`: the whole pipeline on the embedded stand-in data."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the whole job on generated stand-in data",
        description="Generate the Solos/URMP stand-in, prepare shards, train the small CPU "
                    "demo model, evaluate it on held-out stand-in URMP duets (also drawn in a "
                    "visual style no training data has, and in a drawing family held out of "
                    "training) and render a localization heatmap video and contact sheet. "
                    "Re-running skips or resumes finished work.")
    p.add_argument("--root", default="work", help="where data, runs and results go")
    p.add_argument("--preset", default="bench", help="stand-in size: tiny or bench")
    p.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    p.add_argument("--config", help="training preset (a name or a YAML path; default: the shipped demo preset)")
    p.add_argument("--jobs", type=int, default=2, help="parallel workers for data generation")
    p.add_argument("--device", default="auto")
    p.add_argument("--hold-out", metavar="FAMILY",
                   help="the drawing family (classic, lineart, shaded, pictogram) that no "
                        "training video is drawn in; its duets get their own table. 'none': "
                        "every video in the classic look, as before drawing families "
                        "(default: lineart, fold 1 of the rotation in docs/unseen-looks.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avsep.workflows.demo import DEMO_HELD_OUT, run_demo
    from avsep.workflows.standin import UNSEEN_STYLE, StandinMismatchError, UnknownFamilyError

    held_out = {None: DEMO_HELD_OUT, "none": None}.get(args.hold_out, args.hold_out)
    try:
        figures = run_demo(args.root, args.preset, args.minutes, args.config, args.jobs,
                           args.device, held_out)
    except (StandinMismatchError, UnknownFamilyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(f"trained {figures['train_steps']} steps in {figures['train_minutes']} min")
    print("held-out stand-in URMP duets, mean over (player, segment) pairs, dB:")
    print(f"{'':22}{'SDR':>8}{'SIR':>8}{'SAR':>8}")
    tables: list[tuple[str, str | None]] = [("", None),
              (f"{UNSEEN_STYLE}_", f"the same duets drawn in the unseen '{UNSEEN_STYLE}' style:")]
    if figures["held_out_family"]:
        family = figures["held_out_family"]
        heading = f"the same duets drawn in the '{family}' family, which no training video has:"
        tables.append(("held_out_", heading))
    for prefix, title in tables:
        if title:
            print(title)
        for method in ("model", "mixture", "ibm", "irm"):
            if f"{prefix}{method}_sdr" in figures:
                print(f"{method:22}" + "".join(f"{figures[f'{prefix}{method}_{m}']:8.2f}"
                                              for m in ("sdr", "sir", "sar")))
    print(f"results: {figures['evaluation']}")
    print(f"heatmap video: {figures['heatmap_video']}")
    print(f"contact sheet: {figures['contact_sheet']}")
    print(f"per-player heat: {figures['players_video']}, {figures['players_contact_sheet']}")
    print(f"training curves: {figures['curves']}")
    return 0
