"""Throughput of `avsep prepare solos` against plain `ffmpeg`: seconds of video per second
per core.

Prepares a raw Solos folder into a fresh output folder and prints wall time, CPU time and
throughput. Then, on the same videos, runs the command line users run today (the Solos and
Sound of Pixels recipes): one `ffmpeg` per video writing 8 fps JPEG frames (scaled to the
size `avsep prepare` stores, so that both do the same work) and 11025 Hz mono audio, and
prints the same figures and the ratio avsep / ffmpeg. Without --raw, generates the stand-in
first (the Solos layout of a `data_prep.synth` preset; `hd`: 1280 x 720 videos).

Both sides run `--jobs` videos at a time with the same decoder threads per video (the cores
left over by the jobs), so "per core" compares like with like: seconds of video divided by
wall seconds and by the cores in use, and by the CPU seconds the decoding processes used.
Seconds of video are the decodable length of the raw videos, the same for both.

    python benchmarks/prepare.py --preset hd --jobs 2          # 720p stand-in, both tools
    python benchmarks/prepare.py --raw data/solos --jobs 4
    python benchmarks/prepare.py --preset bench --jobs 2 --no-ffmpeg
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def find_ffmpeg(explicit: str | None) -> tuple[str | None, str]:
    """The ffmpeg to compare with and where it came from: `explicit`, the one on PATH, or
    the binary of the `imageio-ffmpeg` package when that is installed."""
    if explicit:
        return explicit, "--ffmpeg"
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path, "PATH"
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found]

        return imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"
    except (ImportError, RuntimeError):
        return None, "none"


def ffmpeg_version(binary: str) -> str:
    out = subprocess.run([binary, "-version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0] if out.stdout else "unknown version"


def ffmpeg_command(binary: str, video: Path, out: Path, size: tuple[int, int], threads: int,
                   settings) -> list[str]:
    """One ffmpeg run: 8 fps JPEG frames at the stored size and 11025 Hz mono audio."""
    width, height = size
    return [
        binary, "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", str(threads),
        "-i", str(video),
        "-map", "0:v:0", "-vf", f"fps={settings.fps},scale={width}:{height}",
        "-q:v", "2", str(out / "%06d.jpg"),
        "-map", "0:a:0", "-ac", "1", "-ar", str(settings.sample_rate), str(out / "audio.wav"),
    ]


def run_ffmpeg(binary: str, videos: list[Path], out: Path, jobs: int, threads: int,
               settings) -> tuple[float, float, int, float]:
    """Run the ffmpeg baseline on every video, `jobs` at a time.

    Returns:
        (wall seconds, CPU seconds of the ffmpeg processes, JPEG files written, the sum of
        every process's own wall seconds)
    """
    from avsep.media import probe, short_side_size

    commands = []
    for index, video in enumerate(videos):
        info = probe(video)
        assert info.video is not None
        size = short_side_size(info.video.width, info.video.height, settings.short_side)
        folder = out / f"{index:04d}"
        folder.mkdir(parents=True)
        commands.append(ffmpeg_command(binary, video, folder, size, threads, settings))
    def run(command: list[str]) -> float:
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"ffmpeg failed: {' '.join(command)}\n{done.stderr}")
        return time.perf_counter() - started

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with ThreadPoolExecutor(max(jobs, 1)) as pool:
        process_walls = list(pool.map(run, commands))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, sum(1 for _ in out.rglob("*.jpg")), sum(process_walls)


def make_standin(raw: Path, preset: str, jobs: int) -> None:
    from data_prep.synth.presets import RunOptions, solos_settings
    from data_prep.synth.solos import generate_solos

    settings = solos_settings(preset)
    print(f"generating the '{preset}' Solos stand-in ({settings.frame_width}x"
          f"{settings.frame_height}) in {raw} ...", file=sys.stderr)
    start = time.perf_counter()
    generate_solos(raw, settings, RunOptions(jobs=max(jobs, 1), progress=False))
    print(f"  generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, help="raw Solos folder (default: make the stand-in)")
    parser.add_argument("--preset", default="bench",
                        help="stand-in preset when --raw is absent (hd: 1280 x 720)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="videos at a time (0 = avsep in-process, ffmpeg one at a time)")
    parser.add_argument("--keep", type=Path, help="keep the shards here instead of a temp dir")
    parser.add_argument("--ffmpeg", help="ffmpeg binary to compare with (default: on PATH, "
                                         "else imageio-ffmpeg's)")
    parser.add_argument("--no-ffmpeg", action="store_true", help="time avsep prepare only")
    args = parser.parse_args()

    from data_prep.prepare.runner import decoder_threads
    from data_prep.prepare.settings import PrepareSettings
    from data_prep.prepare.solos import prepare_solos

    settings = PrepareSettings()
    threads = decoder_threads(args.jobs)
    cores = min(os.cpu_count() or 1, max(args.jobs, 1) * threads)
    work = Path(tempfile.mkdtemp(prefix="avsep-bench-prepare-"))
    try:
        raw = args.raw
        if raw is None:
            raw = work / "raw"
            make_standin(raw, args.preset, args.jobs)
        out = args.keep or work / "shards"
        if out.exists():
            shutil.rmtree(out)
        start = time.perf_counter()
        code = prepare_solos(raw, out, settings, jobs=args.jobs)
        wall = time.perf_counter() - start
        summary = json.loads((out / "summary.json").read_text())
        cpu = summary["cpu_hours"] * 3600  # measured inside the workers, per video
        # Each video's own wall time (the work, without the start-up of imports and workers).
        unit_wall = sum(json.loads(m.read_text())["extra"].get("wall_s", 0.0)
                        for m in (out / "manifest").glob("*.json"))

        source_s = summary["source_hours"] * 3600
        prepared_s = summary["hours"] * 3600
        print(f"raw: {raw} ({summary['units']} videos, {source_s:.0f} s of video, "
              f"{prepared_s:.0f} s inside playing spans)")
        print(f"jobs: {args.jobs}, decoder threads per video: {threads}, cores in use: {cores}")
        print(f"avsep prepare: wall {wall:.1f} s, CPU in workers {cpu:.1f} s, exit code {code}")
        print(f"  output: {summary['samples']} samples, {summary['bytes'] / 1e6:.1f} MB "
              f"({summary['bytes'] / 1e6 / max(prepared_s / 60, 1e-9):.2f} MB per minute "
              "prepared)")
        avsep_wall = source_s / wall / cores
        avsep_cpu = source_s / max(cpu, 1e-9)
        avsep_steady = source_s / max(unit_wall * threads, 1e-9)
        print(f"  throughput: {avsep_wall:.1f} s of video per second per core (wall), "
              f"{avsep_cpu:.1f} per CPU second; {prepared_s / wall / cores:.1f} s inside "
              "playing spans per second per core")
        print(f"  without start-up: {avsep_steady:.1f} s of video per second per core (the "
              f"videos' own wall times, {unit_wall:.1f} s in all; start-up and waiting: "
              f"{max(0.0, wall - unit_wall / max(args.jobs, 1)):.1f} s of the wall time)")

        binary, origin = (None, "not asked for") if args.no_ffmpeg else find_ffmpeg(args.ffmpeg)
        if binary is None:
            print(f"ffmpeg: skipped ({origin}: no ffmpeg on PATH and no imageio-ffmpeg; "
                  "install one or name it with --ffmpeg)" if origin == "none"
                  else "ffmpeg: skipped (--no-ffmpeg)")
            return code
        videos = sorted(p for p in raw.glob("*/*.mp4") if p.is_file())
        print(f"ffmpeg: {binary} (from {origin}; {ffmpeg_version(binary)})")
        print(f"  command per video: "
              f"{' '.join(ffmpeg_command('ffmpeg', Path('IN.mp4'), Path('OUT'), (0, 0), threads, settings))}"
              .replace("scale=0:0", "scale=W:H"))
        f_wall, f_cpu, jpegs, f_process_wall = run_ffmpeg(binary, videos, work / "ffmpeg",
                                                          args.jobs, threads, settings)
        ffmpeg_wall = source_s / f_wall / cores
        ffmpeg_cpu = source_s / max(f_cpu, 1e-9)
        ffmpeg_steady = source_s / max(f_process_wall * threads, 1e-9)
        print(f"  {len(videos)} videos, wall {f_wall:.1f} s, CPU {f_cpu:.1f} s, {jpegs} JPEGs")
        print(f"  throughput: {ffmpeg_wall:.1f} s of video per second per core (wall), "
              f"{ffmpeg_cpu:.1f} per CPU second; {ffmpeg_steady:.1f} from the processes' own "
              "wall times")
        print(f"ratio avsep / ffmpeg: {avsep_wall / ffmpeg_wall:.2f} per core (wall, with "
              f"avsep's start-up), {avsep_steady / ffmpeg_steady:.2f} per core (wall, without), "
              f"{avsep_cpu / ffmpeg_cpu:.2f} per CPU second")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
