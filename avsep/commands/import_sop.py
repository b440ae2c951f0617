"""`avsep import-sop`: convert the original Sound of Pixels weights into an avsep checkpoint."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-sop",
        help="convert the original SoP release weights into an avsep checkpoint",
        description=(
            "Read the three state dicts of the original Sound of Pixels release "
            "(frame_best.pth, sound_best.pth, synthesizer_best.pth), map them onto avsep's "
            "`sop` model and write one checkpoint usable by evaluate/separate/localize."
        ),
    )
    parser.add_argument("frame", help="frame (vision) net weights, e.g. frame_best.pth")
    parser.add_argument("sound", help="sound (U-Net) weights, e.g. sound_best.pth")
    parser.add_argument("synthesizer", help="synthesizer weights, e.g. synthesizer_best.pth")
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avsep.checkpoint import save_checkpoint
    from avsep.import_sop import import_sop

    try:
        model = import_sop(args.frame, args.sound, args.synthesizer)
    except (FileNotFoundError, ValueError) as exc:
        print(f"avsep import-sop: {exc}", file=sys.stderr)
        return 1
    source = {name: str(Path(p).name)
              for name, p in (("frame", args.frame), ("sound", args.sound),
                              ("synthesizer", args.synthesizer))}
    path = save_checkpoint(args.out, model, step=0, config={"imported_from": source})
    kwargs = model.model_kwargs
    print(
        f"wrote {path}: sop, K={kwargs['num_channels']}, ngf={kwargs['ngf']}, "
        f"depth={kwargs['depth']}, {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    return 0
