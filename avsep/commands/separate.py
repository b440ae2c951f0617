"""`avsep separate`: one WAV per region of a video, plus the residual."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
examples:
  avsep separate Vid_01_Jupiter_vn_vc.mp4 --checkpoint best.pt --out out/   # 2 players
  avsep separate concert.mp4 --checkpoint best.pt --out out/ --players 3
  avsep separate concert.mp4 --checkpoint best.pt --out out/ \\
      --regions "0,0,640,720;640,0,1280,720"
  avsep separate concert.mp4 --checkpoint mhunet.pt --out out/ --players 2 --classes vn,vc

--regions auto (default) picks: --players N equal-width columns; else the players of a
URMP-style name Vid_NN_Title_c1_c2.mp4; else (MHU-Net) one column per --classes entry;
else the loud parts of the localization heatmap. Boxes are x0,y0,x1,y1 in pixels of the
video's frames (x1, y1 exclusive), separated by ';'.

Writes OUT/region_<k>[_<label>].wav per region and OUT/residual.wav (the mixture minus the
sum of the regions' sounds), float WAVs at the video's audio rate and length, and
OUT/separation.json (all at once when it succeeds, nothing when it fails; an OUT that
holds an earlier run's files needs --overwrite, which replaces them). Any length works: the audio is processed in overlapping 65535-sample
windows joined by overlap-add.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "separate", help="separate the sound of each region of a video into WAVs",
        description="Separate a video's sound into one WAV per region (player) plus the "
                    "residual, with a Sound of Pixels or MHU-Net checkpoint.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", type=Path, help="the video (with an audio track)")
    p.add_argument("--checkpoint", required=True, type=Path, help="a separator checkpoint")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--regions", default="auto",
                   help='"auto" (default) or boxes "x0,y0,x1,y1;x0,y0,x1,y1;..." in pixels')
    p.add_argument("--players", type=int,
                   help="with --regions auto: that many equal-width players, left to right")
    p.add_argument("--classes",
                   help="instrument per region, comma-separated URMP codes or class names "
                        "(e.g. vn,vc); required by class-conditioned models (MHU-Net)")
    p.add_argument("--hop", type=int, metavar="SAMPLES",
                   help="samples between windows at 11025 Hz (default: half a window)")
    p.add_argument("--batch-size", type=int, default=4,
                   help="windows per model call (default 4: faster on CPUs than 2)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    from avsep.classes import class_index
    from avsep.faults import InputError
    from avsep.inference import RegionError, parse_regions, separate_video
    from avsep.inference.separate import SEPARATION_OUTPUTS
    from avsep.outputs import staged_outputs

    try:
        regions = args.regions
        if regions.strip().lower() != "auto":
            regions = parse_regions(regions)  # fail on a bad string before decoding anything
            if args.players is not None:
                raise RegionError("--players only applies to --regions auto")
        if args.players is not None and args.players < 1:
            raise RegionError(f"--players must be at least 1, got {args.players}")
        classes = None
        if args.classes:
            classes = [c.strip() for c in args.classes.split(",")]
            for code in classes:
                class_index(code)  # unknown names fail here, listing the known ones
        with staged_outputs(args.out, SEPARATION_OUTPUTS, [args.video, args.checkpoint],
                            args.overwrite) as staging:
            separation = separate_video(args.video, args.checkpoint, regions=regions,
                                        players=args.players, classes=classes, hop=args.hop,
                                        batch_size=args.batch_size, device=args.device,
                                        progress=not args.quiet)
            paths = [staging.final(p) for p in separation.write(staging.folder)]
    except InputError as exc:  # a bug or an environment fault keeps its traceback (cli)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = len(separation.mixture) / separation.sample_rate
    print(f"{len(separation.regions)} region(s) ({separation.region_source}), {seconds:.2f} s "
          f"at {separation.sample_rate} Hz:")
    for path, region in zip(paths, separation.regions):
        print(f"  {path}  box {region.box}")
    print(f"  {paths[-1]}  residual (mixture minus the sum of the regions)")
    return 0
