"""`avsep import-sop`: convert the original Sound of Pixels weights into an avsep checkpoint."""

from __future__ import annotations

import argparse


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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it exists (never one of the weight files)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avsep.checkpoint import save_checkpoint
    from avsep.import_sop import import_sop
    from avsep.outputs import OutputError

    inputs = [Path(p).resolve() for p in (args.frame, args.sound, args.synthesizer)]
    if Path(args.out).resolve() in inputs:
        raise OutputError(f"--out {args.out} is one of the weight files it would be made from")
    if Path(args.out).is_dir():
        raise OutputError(f"--out {args.out} is a folder; give the checkpoint file to write")
    if Path(args.out).exists() and not args.overwrite:
        raise OutputError(f"--out {args.out} exists; pass --overwrite to replace it")
    model = import_sop(args.frame, args.sound, args.synthesizer)  # InputError: exit 2 (cli)
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
