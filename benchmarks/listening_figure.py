"""Does the heatmap listen? One key frame of a piece with its own audio, another piece's
audio (off-screen sound) and white noise, all drawn on the true audio's colour scale, for a
model with an audio tagger: gated (top) and ungated (bottom, the original map).

    python benchmarks/listening_figure.py --checkpoint work/demo/run/best.pt \
        --raw work/synthetic/bench/raw/urmp --piece 04_ChoraleBwv264_vn_vc \
        --time 4 --gate-locality 0 --out docs/images/listening_keyframe.png

Prints, per panel, the heat inside the players' boxes relative to the true audio's at that
frame. Each row's maps are drawn on the scale of its own-audio map at that frame (1 = its
hottest cell), so a dim map looks dim.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint with an audio tagger")
    parser.add_argument("--raw", type=Path, required=True, help="raw URMP folder")
    parser.add_argument("--piece", required=True, help="the piece folder's name")
    parser.add_argument("--offscreen", help="the piece whose audio is the off-screen sound "
                                            "(default: the next one sharing no instrument)")
    parser.add_argument("--time", type=float, default=4.0, help="the key frame's time (s)")
    parser.add_argument("--fps", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=320, help="panel width in pixels")
    parser.add_argument("--gate-locality", type=float, metavar="X",
                        help="the gate's locality (default: the checkpoint's)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()

    from avsep.inference import localize_video, prepare_model
    from avsep.inference.render import colormap_lut, overlay
    from avsep.inference.video import VideoSource
    from avsep.models import SoundOfPixels
    from avsep.models.localization import Gate
    from avsep.urmp_naming import parse_piece_name

    runner = prepare_model(args.checkpoint, "cpu")
    if not isinstance(runner.model, SoundOfPixels) or runner.model.tagger is None:
        parser.error(f"{args.checkpoint} has no audio tagger (model.kwargs.audio_tagging)")
    folder = args.raw / args.piece
    if not (folder / f"Vid_{args.piece}.mp4").is_file():
        parser.error(f"no Vid_{args.piece}.mp4 in {folder}")
    if args.offscreen:
        other = args.raw / args.offscreen
    else:
        mine = set(parse_piece_name(args.piece)[2])
        others = sorted(p for p in args.raw.iterdir() if p.is_dir() and p.name != args.piece
                        and not mine & set(parse_piece_name(p.name)[2]))
        if not others:
            parser.error(f"no piece in {args.raw} shares no instrument with {args.piece}")
        other = others[0]
    rate = runner.model.sample_rate
    source = VideoSource(folder / f"Vid_{args.piece}.mp4", rate)
    true = source.audio.astype(np.float32)
    rms = float(np.sqrt(np.mean(np.square(true, dtype=np.float64))))
    offscreen = np.resize(VideoSource(other / f"Vid_{other.name}.mp4", rate).audio, len(true))
    offscreen = offscreen * rms / max(float(np.sqrt(np.mean(np.square(offscreen)))), 1e-12)
    noise = np.random.default_rng(0).standard_normal(len(true)) * rms
    audios = {"own audio": true, f"audio of {other.name.split('_', 2)[-1]}": offscreen,
              "white noise": noise}

    lut = colormap_lut("inferno")
    rows = []
    for gated in (True, False):
        gate = Gate(enabled=gated, locality=args.gate_locality)
        maps = {}
        for label, audio in audios.items():
            source.audio = np.asarray(audio, dtype=np.float32)
            maps[label] = localize_video(source, runner, fps=args.fps, progress=False,
                                         gate=gate)
        true_loc = maps["own audio"]
        index = int(np.argmin(np.abs(true_loc.times_s - args.time)))
        frame = next(iter(source.frames_at(true_loc.times_s[[index]])))
        scale = float(true_loc.heatmaps[index].max()) or 1.0
        true_heat = float(true_loc.heatmaps[index].sum())
        panels = []
        for label, loc in maps.items():
            heat = loc.frame_heatmap(index, frame.shape[:2]) / scale
            image = overlay(frame, np.clip(heat, 0.0, 1.0), lut, 0.6)
            height = round(image.shape[0] * args.width / image.shape[1])
            image = cv2.resize(image, (args.width, height), interpolation=cv2.INTER_AREA)
            text = f"{'gated' if gated else 'ungated'}: {label}"
            cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255),
                        1, cv2.LINE_AA)
            panels.append(image)
            share = float(loc.heatmaps[index].sum()) / true_heat if true_heat > 0 else float("nan")
            print(f"{'gated' if gated else 'ungated':>8}  {label:<40} heat at "
                  f"{true_loc.times_s[index]:.1f} s: {share:.3f} of the own audio's")
        rows.append(np.concatenate(panels, axis=1))
    picture = np.concatenate(rows, axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    # 128 colours keep the overlays readable at a sixth of the size (a README picture).
    Image.fromarray(picture).quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
        args.out, optimize=True)
    print(f"wrote {args.out} ({picture.shape[1]} x {picture.shape[0]})")


if __name__ == "__main__":
    main()
