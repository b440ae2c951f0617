"""`avsep localize`: where does each sound come from? Heatmaps over a video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from avsep.faults import InputError, UsageError

if TYPE_CHECKING:
    from avsep.inference.loading import InferenceModel
    from avsep.models.localization import Gate

EPILOG = """\
examples:
  avsep localize concert.mp4 --checkpoint runs/sop/best.pt --out out/concert
  avsep localize concert.mp4 --checkpoint best.pt --out out --fps 12 --colormap magma \\
      --opacity 0.6 --normalize frame
  avsep localize quartet.mp4 --checkpoint best.pt --out out --players 4
  avsep localize duet.mp4 --checkpoint best.pt --out out --regions "0,0,320,360;320,0,640,360"

Writes OUT/overlay.mp4 (heatmaps over the frames, H.264, with the video's audio as AAC),
OUT/keyframes/*.png (one every --keyframe-every seconds), OUT/contact_sheet.png, and
OUT/heatmaps.npz + heatmaps.json (the raw energies, their times and the geometry), all at
once when it succeeds and nothing when it fails; an OUT that holds an earlier run's files
needs --overwrite, which replaces them (no stale key frames are left).

With --players or --regions (or --regions auto: the players of a URMP-style name
Vid_NN_Title_c1_c2.mp4, else the loud parts of the heatmap) it also draws one colour per
player: OUT/players.mp4, OUT/players_keyframes/*.png, OUT/players_contact_sheet.png and
OUT/players.npz + players.json. Each region's sound is separated from its crop (as
`avsep separate` does), and a location takes a player's colour where the sound separated
there is mostly that player's; a silent player's colour fades.

How: the audio is cut into 65535-sample windows (~5.9 s, half a window apart); in each,
the model separates one sound per location of its vision map and the energy of that sound
is measured per STFT frame. Output frame i (time i / fps) shows the energies of the STFT
frames around its time, averaged over the windows covering it. A window's visual input is
the training clip (3 frames, 3 s apart, around its centre), each whole frame resized so
its short side is the model's image size, with no crop, so every player stays in view.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "localize", help="render sound-localization heatmaps over a video",
        description="Pixel-wise separation of a video's sound: the energy of the sound "
                    "separated at each visual location, over time, drawn over the frames.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", type=Path, help="the video (with an audio track)")
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a Sound of Pixels checkpoint (avsep train / avsep import-sop)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--fps", type=float, default=8.0, help="output frame rate (default 8)")
    p.add_argument("--colormap", default="inferno",
                   help="a matplotlib colour map name (default inferno)")
    p.add_argument("--opacity", type=float, default=0.5,
                   help="heatmap opacity over the frames, 0..1 (default 0.5)")
    p.add_argument("--normalize", choices=["global", "frame"], default="global",
                   help="display scale: one for the whole video (default) or per frame")
    p.add_argument("--keyframe-every", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between PNG key frames (default 2)")
    p.add_argument("--max-short-side", type=int, default=720, metavar="PIXELS",
                   help="downscale the rendered video to this short side (0: keep; "
                        "default 720)")
    p.add_argument("--players", type=int, metavar="N",
                   help="also per-player heat for N equal-width columns (players side by side)")
    p.add_argument("--regions", metavar="SPEC",
                   help='also per-player heat for these regions: "x0,y0,x1,y1;..." in frame '
                        'pixels, or "auto"')
    p.add_argument("--hop", type=int, metavar="SAMPLES",
                   help="samples between analysis windows at 11025 Hz (default: half a window)")
    p.add_argument("--batch-size", type=int, default=2, help="windows per model call")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_gate_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)



def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """--ungated and --gate-locality, for models trained with an audio tagger."""
    parser.add_argument(
        "--ungated", action="store_true",
        help="for a model trained with an audio tagger (model.kwargs.audio_tagging): the heat "
             "without the tagger's gate (whether each location's instrument is heard), as "
             "the original heatmap reads the same masks")
    parser.add_argument(
        "--gate-locality", type=float, metavar="X",
        help="for a model with an audio tagger: how much of the gate is each location's own "
             "(0: the whole picture dims when no shown instrument is heard; 1: each location "
             "by its own instrument; default: the checkpoint's "
             "model.kwargs.audio_gate_locality)")


def gate_from_arguments(args: argparse.Namespace) -> Gate | None:
    """The heat's gate from `add_gate_arguments`' flags (None without them: the default).

    Raises:
        UsageError: a locality outside [0, 1].
    """
    from avsep.models.localization import Gate

    if not args.ungated and args.gate_locality is None:
        return None
    if args.gate_locality is not None and not 0.0 <= args.gate_locality <= 1.0:
        raise UsageError(f"--gate-locality must be in [0, 1], got {args.gate_locality}")
    return Gate(enabled=not args.ungated, locality=args.gate_locality)


def check_gate_arguments(runner: InferenceModel, args: argparse.Namespace, name: str) -> None:
    """Raise UsageError when gate flags are given for a model without an audio tagger."""
    from avsep.models import SoundOfPixels

    if not args.ungated and args.gate_locality is None:
        return
    flag = "--ungated" if args.ungated else "--gate-locality"
    if not isinstance(runner.model, SoundOfPixels) or runner.model.tagger is None:
        raise UsageError(f"{flag}: {name} has no audio tagger (it was not trained with "
                         "model.kwargs.audio_tagging)")


def run(args: argparse.Namespace) -> int:
    from avsep.inference.render import LOCALIZATION_OUTPUTS, colormap_lut
    from avsep.outputs import staged_outputs

    try:
        colormap_lut(args.colormap)
        if not 0.0 <= args.opacity <= 1.0:
            raise UsageError(f"--opacity must be in [0, 1], got {args.opacity}")
        if args.fps <= 0:
            raise UsageError(f"--fps must be positive, got {args.fps}")
        if args.keyframe_every <= 0:
            raise UsageError(f"--keyframe-every must be positive, got {args.keyframe_every}")
        with staged_outputs(args.out, LOCALIZATION_OUTPUTS, [args.video, args.checkpoint],
                            args.overwrite) as staging:
            files, localization, players, player_files = _localize(args, staging.folder)
            files = files.moved(staging.final)
            if player_files is not None:
                player_files = player_files.moved(staging.final)
    except InputError as exc:  # a bug or an environment fault keeps its traceback (cli)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {files.video} ({len(localization)} frames at {localization.fps:g} fps), "
          f"{len(files.keyframes)} key frames, {files.contact_sheet}, "
          f"{args.out / 'heatmaps.npz'}")
    if players is not None and player_files is not None:
        print(f"wrote {player_files.video} and {player_files.contact_sheet}: "
              f"{len(players.regions)} players ({players.region_source}: "
              f"{', '.join(players.names())})")
    return 0


def _localize(args: argparse.Namespace, out: Path):
    """Localize (and with --players/--regions, per player) and render into `out`.

    Returns:
        (RenderedFiles, Localization, PlayerLocalization or None, RenderedFiles or None).
    """
    from avsep.inference import (
        localize_players,
        localize_video,
        prepare_model,
        render_localization,
        render_players,
    )

    model = args.checkpoint
    gate = gate_from_arguments(args)
    if gate is not None:
        model = prepare_model(args.checkpoint, args.device)
        check_gate_arguments(model, args, str(args.checkpoint))
    players = player_files = None
    if args.players is not None or args.regions is not None:
        # One pass gives both: the per-player scores and the total heat.
        players = localize_players(args.video, model, regions=args.regions or "auto",
                                   players=args.players, fps=args.fps, hop=args.hop,
                                   batch_size=args.batch_size, device=args.device,
                                   progress=not args.quiet, gate=gate)
        localization = players.heat
    else:
        localization = localize_video(args.video, model, fps=args.fps,
                                      hop=args.hop, batch_size=args.batch_size,
                                      device=args.device, progress=not args.quiet, gate=gate)
    files = render_localization(
        localization, args.video, out, colormap=args.colormap, opacity=args.opacity,
        normalize=args.normalize, keyframe_every_s=args.keyframe_every,
        max_short_side=args.max_short_side or None, progress=not args.quiet)
    localization.save(out / "heatmaps.npz")
    if players is not None:
        player_files = render_players(players, args.video, out, opacity=args.opacity,
                                      keyframe_every_s=args.keyframe_every,
                                      max_short_side=args.max_short_side or None,
                                      progress=not args.quiet)
        players.save(out / "players.npz")
    return files, localization, players, player_files
