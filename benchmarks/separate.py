"""Wall time of `avsep separate` (and optionally `avsep localize`) per minute of video.

    python benchmarks/separate.py                                  # fresh default-size `sop`, CPU
    python benchmarks/separate.py --checkpoint runs/sop/best.pt --video concert.mp4
    python benchmarks/separate.py --seconds 120 --players 3 --localize --device cuda

Without --video, a stand-in ensemble video is written first (players side by side at
400 x 240, 29.97 fps, 48 kHz AAC; a moving shape and a tone per player). Without
--checkpoint, a default-size `sop` model with random weights is built (its speed is that
of the trained model). Prints seconds per phase and per minute of video: `decode` (audio
decode + resampling, frame index), `separate` (windows through the model, overlap-add,
resampling back to the input rate), `write` (the WAVs), `localize` (heatmaps, no
rendering) and `render` (overlay MP4 + PNGs).

Then (unless --no-compare) separates again the plain way, every window's frames through the
vision net (`reuse_frames=False`), and prints that path's time, the speed-up and the
largest absolute difference between the two outputs (at the model's rate and at the input's);
the default path is timed a second time, warm, and the faster of its two runs is reported.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def standin_video(path: Path, seconds: float, players: int) -> Path:
    """Players side by side, each a coloured disc moving up and down and a tone."""
    import cv2

    from avsep.inference.render import write_mp4

    fps, rate, cell = 30000 / 1001, 48000, 200
    rng = np.random.default_rng(0)
    colours = rng.integers(60, 255, size=(players, 3))
    freqs = 220.0 * 2 ** (rng.integers(0, 24, size=players) / 12)

    def frames():
        for i in range(round(seconds * fps)):
            frame = np.full((240, cell * players, 3), 40, np.uint8)
            for k in range(players):
                y = int(120 + 60 * np.sin(2 * np.pi * (i / fps) * (0.3 + 0.1 * k)))
                cv2.circle(frame, (cell * k + cell // 2, y), 40, colours[k].tolist(), -1)
            yield frame

    t = np.arange(round(seconds * rate)) / rate
    audio = sum(0.8 / players * np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * 0.2 * (k + 1)
                                                                     * t) > 0)
                for k, f in enumerate(freqs))
    return write_mp4(path, frames(), fps, audio.astype(np.float32), rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="video to separate (default: stand-in)")
    parser.add_argument("--seconds", type=float, default=60.0, help="stand-in length")
    parser.add_argument("--players", type=int, default=2, help="stand-in players")
    parser.add_argument("--checkpoint", help="avsep checkpoint (default: fresh `sop` model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--localize", action="store_true", help="also time localize + render")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the plain path (reuse_frames=False) and the comparison")
    args = parser.parse_args()

    from avsep import create_model
    from avsep.inference import (
        VideoSource,
        localize_video,
        prepare_model,
        render_localization,
        separate_video,
    )
    from avsep.inference.windows import WindowPlan

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.checkpoint:
            runner, name = prepare_model(args.checkpoint, args.device), args.checkpoint
        else:
            torch.manual_seed(0)
            runner = prepare_model(create_model("sop", pretrained=False), args.device)
            name = "fresh sop (default size, random weights)"
        parameters = sum(p.numel() for p in runner.model.parameters())
        video = args.video or standin_video(tmp / "bench.mp4", args.seconds, args.players)
        print(f"model: {name} ({parameters / 1e6:.1f} M parameters), device {runner.device}, "
              f"batch {args.batch_size}, {torch.get_num_threads()} torch threads")

        timings: dict[str, float] = {}
        started = time.perf_counter()
        source = VideoSource(video, runner.model.sample_rate)
        timings["decode"] = time.perf_counter() - started
        minutes = len(source.native_audio) / source.native_rate / 60.0
        started = time.perf_counter()
        players = None if args.video else args.players
        separation = separate_video(source, runner, players=players,
                                    batch_size=args.batch_size, progress=False)
        timings["separate"] = time.perf_counter() - started
        started = time.perf_counter()
        separation.write(tmp / "out")
        timings["write"] = time.perf_counter() - started
        plain = None
        if not args.no_compare:
            started = time.perf_counter()
            plain = separate_video(source, runner, players=players, batch_size=args.batch_size,
                                   progress=False, reuse_frames=False)
            timings["separate (plain)"] = time.perf_counter() - started
            # The first run also paid for the libraries' warm-up (oneDNN builds its kernels
            # per shape): time the default path again, warm, and keep the faster run.
            started = time.perf_counter()
            separate_video(source, runner, players=players, batch_size=args.batch_size,
                           progress=False)
            timings["separate"] = min(timings["separate"], time.perf_counter() - started)
        if args.localize:
            started = time.perf_counter()
            localization = localize_video(source, runner, batch_size=args.batch_size,
                                          progress=False)
            timings["localize"] = time.perf_counter() - started
            started = time.perf_counter()
            render_localization(localization, source, tmp / "render", progress=False)
            timings["render"] = time.perf_counter() - started

    windows = len(WindowPlan.cover(separation.model_sources.shape[1],
                                   separation.window_samples, separation.hop_samples))
    print(f"video: {minutes * 60:.1f} s, {source.frame_size[1]}x{source.frame_size[0]}, "
          f"{len(separation.regions)} regions ({separation.region_source}), "
          f"{windows} windows of {separation.window_samples} samples")
    print(f"{'phase':<18}{'seconds':>10}{'s / min of video':>18}")
    for phase, seconds in timings.items():
        print(f"{phase:<18}{seconds:>10.2f}{seconds / minutes:>18.2f}")
    total = timings["decode"] + timings["separate"] + timings["write"]
    print(f"{'separate, end to end':<20}{total / minutes:>8.2f} s per minute of video "
          f"({60.0 / (total / minutes):.1f}x real time)")
    if plain is not None:
        plain_total = timings["decode"] + timings["separate (plain)"] + timings["write"]
        model_diff = np.abs(separation.model_sources - plain.model_sources).max()
        native_diff = np.abs(separation.sources - plain.sources).max()
        print(f"{'plain path, end to end':<20}{plain_total / minutes:>8.2f} s per minute of "
              f"video ({60.0 / (plain_total / minutes):.1f}x real time); speed-up "
              f"{plain_total / total:.2f}x")
        print(f"max |difference| to the plain path: {model_diff:.3g} at {separation.model_sample_rate}"
              f" Hz, {native_diff:.3g} at {separation.sample_rate} Hz (peak of the output "
              f"{np.abs(plain.sources).max():.3g})")


if __name__ == "__main__":
    main()
