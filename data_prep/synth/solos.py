"""The Solos-layout stand-in: `OUT/<Class>/<youtube_id>.mp4` plus `OUT/solos_timestamps.json`.

Each clip is one performer of its class playing excerpts of real music (from the Solos music
pool only) in playing spans separated by non-playing gaps (silence, instrument lowered). The
spans are listed in `solos_timestamps.json` exactly as in the real dataset:
`{Class: {id: [[start_frame, end_frame], ...]}}` counted at 25 fps. Files are named with real
Solos ids (the first ones of each class in solos_ids.json), so real data can replace them.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .common import (
    POOL_ORDER,
    SOLOS_FAMILY,
    SOLOS_MUSIC,
    SOLOS_PICTURE,
    choose_tempo,
    load_pieces,
    rng_for,
    solos_ids,
    write_json,
)
from .families import CLASSIC, family_for
from .instruments import instrument
from .levels import mix_stems, normalise, span_gate
from .music import Piece, excerpt, fit_range, perform, piece_seconds, pool
from .performers import render_frames
from .presets import SOLOS_FPS, RunOptions, SolosSettings
from .video_io import write_mp4
from .workers import FileRecord, Summary, WorkerPool, renderer

TIMESTAMPS = "solos_timestamps.json"
MANIFEST = "synth_manifest.json"
FADE_S = 0.25  # each span's sound fades out over its last FADE_S


@dataclass(frozen=True)
class SolosClipJob:
    """Everything needed to write one clip (picklable, sent to a worker)."""

    path: str
    name: str
    num_frames: int
    settings: SolosSettings
    spans: tuple[tuple[float, float], ...]  # playing spans in seconds
    notes: np.ndarray  # (N, 4) on the clip's timeline
    level_dbfs: float
    picture_seed: tuple[int, ...]
    x264_threads: int
    family: str = CLASSIC  # the drawing family of the clip's pictures

    @property
    def num_samples(self) -> int:
        return round(self.num_frames * self.settings.sample_rate / self.settings.fps)


def plan_spans(
    seconds: float,
    span_seconds: tuple[float, float],
    gap_seconds: tuple[float, float],
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    """Playing spans [start_s, end_s) of a clip of `seconds`, on the 25 fps frame grid.

    A short lead-in rest, then spans of `span_seconds` separated by gaps of `gap_seconds`;
    the clip ends on a rest whenever one fits after the last span.
    """
    shortest, longest = span_seconds
    t = float(rng.uniform(0.0, 0.5))
    spans: list[tuple[float, float]] = []
    while seconds - t >= shortest:
        remaining = seconds - t
        length = float(rng.uniform(shortest, longest))
        if remaining - length < gap_seconds[0] + shortest:  # the last span
            tail = float(rng.uniform(*gap_seconds))
            length = remaining - tail if remaining - tail >= shortest else min(length, remaining)
            spans.append((t, t + length))
            break
        spans.append((t, t + length))
        t += length + float(rng.uniform(*gap_seconds))
    if not spans:  # clip shorter than one span: play through
        spans.append((t, seconds))
    return [(round(a * SOLOS_FPS) / SOLOS_FPS, round(b * SOLOS_FPS) / SOLOS_FPS) for a, b in spans]


def clip_music(
    name: str,
    spans: list[tuple[float, float]],
    music: list[Piece],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[dict]]:
    """Notes (N, 4) for one clip: in each span an excerpt of a random part of a random piece,
    moved by octaves into the instrument's range. Also returns what was used, per span."""
    inst = instrument(name)
    chunks, used = [], []
    for start, end in spans:
        piece = music[int(rng.integers(len(music)))]
        part = int(rng.integers(len(piece.parts)))
        qpm = choose_tempo(piece, rng)
        notes = fit_range(perform(piece, part, qpm, rng), inst)
        period = piece_seconds(piece, qpm) + 60.0 / qpm  # the part repeats after a beat's rest
        onset = notes[int(rng.integers(len(notes))), 0]  # start the excerpt on a note
        length = max(end - start - FADE_S, 0.0)
        chunk = excerpt(notes, onset, length, period)
        chunk[:, :2] += start
        chunks.append(chunk)
        used.append({"piece": piece.piece_id, "part": part, "qpm": round(qpm, 2),
                     "from_s": round(float(onset), 3)})
    return np.concatenate(chunks) if chunks else np.zeros((0, 4)), used


def make_clip(job: SolosClipJob) -> FileRecord:
    """Render, normalise and encode one clip (runs in a worker)."""
    cpu = time.process_time()
    s = job.settings
    sample_rate = s.sample_rate
    audio = renderer(sample_rate).render([(job.notes, instrument(job.name).program)],
                                         job.num_samples)
    sample_spans = [(round(a * sample_rate), round(b * sample_rate)) for a, b in job.spans]
    audio = audio * span_gate(job.num_samples, sample_spans, round(FADE_S * sample_rate))
    stems, _ = mix_stems([normalise(audio, job.level_dbfs)])
    frames = render_frames(
        [(job.name, job.notes)], job.num_frames, s.fps, s.frame_width, s.frame_height,
        np.random.default_rng(list(job.picture_seed)), spans=job.spans, family=job.family,
    )
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, frames, fps=Fraction(s.fps), width=s.frame_width, height=s.frame_height,
              audio=stems[0], sample_rate=sample_rate, threads=job.x264_threads)
    return FileRecord([str(path)], job.num_frames / s.fps, path.stat().st_size,
                      time.process_time() - cpu)


def plan_solos(
    out_dir: Path,
    settings: SolosSettings,
    options: RunOptions,
    workers: WorkerPool,
) -> tuple[list[SolosClipJob], dict]:
    """All clip jobs and the manifest entries describing them."""
    ids = solos_ids()
    candidates = list(pool("solos"))
    rng_for(options.seed, POOL_ORDER, 1).shuffle(candidates)
    music_ids = candidates[: settings.music_pieces]
    pieces = load_pieces(workers, music_ids)
    music = [pieces[p] for p in music_ids]
    num_frames = round(settings.seconds * settings.fps)
    seconds = num_frames / settings.fps
    jobs, manifest = [], {}
    for class_index, name in enumerate(settings.classes):
        if settings.clips_per_class > len(ids[name]):
            raise ValueError(f"{name}: only {len(ids[name])} Solos ids, "
                             f"asked for {settings.clips_per_class} clips")
        for clip in range(settings.clips_per_class):
            video_id = ids[name][clip]
            rng = rng_for(options.seed, SOLOS_MUSIC, class_index, clip)
            spans = plan_spans(seconds, settings.span_seconds, settings.gap_seconds, rng)
            notes, used = clip_music(name, spans, music, rng)
            relative = f"{name}/{video_id}.mp4"
            family = family_for(settings.families, (options.seed, SOLOS_FAMILY, class_index),
                                clip)
            jobs.append(SolosClipJob(
                path=str(out_dir / relative), name=name, num_frames=num_frames,
                settings=settings, spans=tuple(spans), notes=notes,
                level_dbfs=options.level_dbfs,
                picture_seed=(options.seed, SOLOS_PICTURE, class_index, clip),
                x264_threads=1 if options.jobs > 1 else 0, family=family,
            ))
            manifest[relative] = {"class": name, "id": video_id, "spans_s": spans, "music": used,
                                  "family": family}
    return jobs, manifest


def timestamps(jobs: list[SolosClipJob]) -> dict[str, dict[str, list[list[int]]]]:
    """solos_timestamps.json content: playing spans in frames at 25 fps."""
    out: dict[str, dict[str, list[list[int]]]] = {}
    for job in jobs:
        video_id = Path(job.path).stem
        out.setdefault(job.name, {})[video_id] = [
            [round(a * SOLOS_FPS), round(b * SOLOS_FPS)] for a, b in job.spans
        ]
    return out


def generate_solos(
    out_dir: str | Path,
    settings: SolosSettings | None = None,
    options: RunOptions | None = None,
    workers: WorkerPool | None = None,
) -> Summary:
    """Write the Solos-layout stand-in under `out_dir`; returns the run's summary.

    `workers` lets several runs share one pool (its jobs count then wins over options.jobs).
    """
    settings = settings or SolosSettings()
    options = options or RunOptions()
    out_dir = Path(out_dir)
    summary = Summary("Solos", str(out_dir))
    pool_context = (nullcontext(workers) if workers is not None
                    else WorkerPool(options.jobs, options.soundfont, options.progress))
    with pool_context as pool_in_use:
        jobs, manifest = plan_solos(out_dir, settings, options, pool_in_use)
        out_dir.mkdir(parents=True, exist_ok=True)
        for record in pool_in_use.map(make_clip, jobs, "Solos clips"):
            summary.add(record)
    write_json(out_dir / TIMESTAMPS, timestamps(jobs), indent=None)
    write_json(out_dir / MANIFEST, {
        "layout": "solos", "seed": options.seed, "soundfont": options.soundfont,
        "level_dbfs": options.level_dbfs, "settings": dataclasses.asdict(settings),
        "files": manifest,
    })
    for name in (TIMESTAMPS, MANIFEST):
        summary.add_file(out_dir / name)
    return summary.finish()
