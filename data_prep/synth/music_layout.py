"""The MUSIC-layout stand-in: solo and duet videos as the MUSIC id lists lay them out.

    OUT/solo/<class>/<id>.mp4            one performer playing throughout (no timestamps:
                                         MUSIC publishes none), 25 fps, H.264 + AAC
    OUT/duet/<class> <class>/<id>.mp4    two performers side by side, their parts mixed
    OUT/MUSIC21_solo_videos.json         {"videos": {"<class>": [id, ...]}}
    OUT/MUSIC_duet_videos.json           {"videos": {"<class> <class>": [id, ...]}}
    OUT/synth_manifest.json              the music and settings used

Solos are written by the Solos stand-in's clip writer (`solos.make_clip`) with one span over
the whole clip and music of the Solos pool; duets play two parts of an ensemble piece of the
URMP pool (`urmp.plan_piece`). Classes without a General MIDI program are rendered with the
closest one (`instruments.MUSIC_PROGRAM_NAMES`). Ids look like YouTube ids (11 characters)
and depend only on the class (or pair) and the clip number, never on the seed, so the
train / val / test split of `avsep prepare music` is the same for every seed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import time
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .common import POOL_ORDER, load_pieces, rng_for, write_json
from .instruments import instrument
from .levels import mix_stems, normalise, span_gate
from .music import kind_of, pool
from .performers import render_frames
from .presets import MusicSettings, RunOptions, UrmpSettings
from .solos import SolosClipJob, clip_music, make_clip
from .urmp import plan_piece
from .video_io import write_mp4
from .workers import FileRecord, Summary, WorkerPool, renderer

SOLO_IDS, DUET_IDS, MANIFEST = "MUSIC21_solo_videos.json", "MUSIC_duet_videos.json", \
    "synth_manifest.json"
# Seed words of the MUSIC stand-in's random streams (apart from those of common.py).
MUSIC_SOLO_MUSIC, MUSIC_SOLO_PICTURE, MUSIC_DUET_MUSIC, MUSIC_DUET_PICTURE = 41, 42, 43, 44
FADE_S = 0.3


def standin_id(key: str, number: int) -> str:
    """An 11-character id of [A-Za-z0-9_-] for clip `number` of `key` (a class or a pair)."""
    digest = hashlib.sha1(f"avsep-music-standin:{key}:{number}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


@dataclass(frozen=True)
class DuetJob:
    """Everything needed to write one duet video (picklable, sent to a worker)."""

    path: str
    names: tuple[str, str]
    parts: tuple[np.ndarray, ...]  # notes (N, 4) per player on the video's timeline
    num_frames: int
    settings: MusicSettings
    level_dbfs: float
    picture_seed: tuple[int, ...]
    x264_threads: int

    @property
    def num_samples(self) -> int:
        return round(self.num_frames * self.settings.sample_rate / self.settings.fps)


def make_duet(job: DuetJob) -> FileRecord:
    """Render both parts, mix them and encode the duet video (runs in a worker)."""
    cpu = time.process_time()
    s = job.settings
    synth = renderer(s.sample_rate)
    gate = span_gate(job.num_samples, [(0, job.num_samples)], round(FADE_S * s.sample_rate))
    stems = [normalise(synth.render([(notes, instrument(name).program)], job.num_samples) * gate,
                       job.level_dbfs)
             for name, notes in zip(job.names, job.parts)]
    _, mixture = mix_stems(stems)
    frames = render_frames(list(zip(job.names, job.parts)), job.num_frames, float(s.fps),
                           s.cell_width, s.frame_height,
                           np.random.default_rng(list(job.picture_seed)))
    path = Path(job.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, frames, fps=Fraction(s.fps), width=2 * s.cell_width, height=s.frame_height,
              audio=mixture, sample_rate=s.sample_rate, threads=job.x264_threads)
    return FileRecord([str(path)], job.num_frames / s.fps, path.stat().st_size,
                      time.process_time() - cpu)


def plan_solo_clips(out_dir: Path, settings: MusicSettings, options: RunOptions,
                    workers: WorkerPool) -> tuple[list[SolosClipJob], dict, dict]:
    """Solo clip jobs, their manifest entries and the solo id list."""
    candidates = list(pool("solos"))
    rng_for(options.seed, POOL_ORDER, 3).shuffle(candidates)
    music_ids = candidates[: settings.music_pieces]
    pieces = load_pieces(workers, music_ids)
    music = [pieces[p] for p in music_ids]
    clip = settings.solo_settings
    num_frames = round(settings.seconds * settings.fps)
    spans = [(0.0, num_frames / settings.fps)]  # MUSIC solos play throughout
    jobs, manifest = [], {}
    ids: dict[str, list[str]] = {}
    for class_number, name in enumerate(settings.classes):
        for number in range(settings.clips_per_class):
            video_id = standin_id(name, number)
            rng = rng_for(options.seed, MUSIC_SOLO_MUSIC, class_number, number)
            notes, used = clip_music(name, spans, music, rng)
            relative = f"solo/{name}/{video_id}.mp4"
            jobs.append(SolosClipJob(
                path=str(out_dir / relative), name=name, num_frames=num_frames, settings=clip,
                spans=tuple(spans), notes=notes, level_dbfs=options.level_dbfs,
                picture_seed=(options.seed, MUSIC_SOLO_PICTURE, class_number, number),
                x264_threads=1 if options.jobs > 1 else 0,
            ))
            manifest[relative] = {"class": name, "id": video_id, "music": used}
            ids.setdefault(name, []).append(video_id)
    return jobs, manifest, ids


def plan_duets(out_dir: Path, settings: MusicSettings, options: RunOptions,
               workers: WorkerPool) -> tuple[list[DuetJob], dict, dict]:
    """Duet jobs, their manifest entries and the duet id list."""
    if not settings.duets:
        return [], {}, {}
    candidates = [p for p in pool("urmp") if kind_of(p).name != "madrigal"]
    rng_for(options.seed, POOL_ORDER, 4).shuffle(candidates)
    queue = list(load_pieces(workers, candidates[: settings.duets + 2]).values())
    length_limit = UrmpSettings(seconds=settings.seconds)
    jobs, manifest = [], {}
    ids: dict[str, list[str]] = {}
    for number in range(settings.duets):
        rng = rng_for(options.seed, MUSIC_DUET_MUSIC, number)
        chosen = rng.choice(len(settings.classes), 2, replace=False)
        # the higher instrument takes the higher part, as in the URMP stand-in
        names = sorted((settings.classes[int(i)] for i in chosen),
                       key=lambda n: -instrument(n).centre)
        plan = None
        while plan is None:
            if not queue:
                raise ValueError("the URMP music pool has too few pieces for the duets")
            piece = queue.pop(0)
            plan = plan_piece(piece, names, length_limit, rng)
        parts, part_indices, qpm, length = plan
        key = " ".join(names)
        video_id = standin_id(key, number)
        relative = f"duet/{key}/{video_id}.mp4"
        num_frames = round(length * settings.fps)
        jobs.append(DuetJob(
            path=str(out_dir / relative), names=(names[0], names[1]), parts=tuple(parts),
            num_frames=num_frames, settings=settings, level_dbfs=options.level_dbfs,
            picture_seed=(options.seed, MUSIC_DUET_PICTURE, number),
            x264_threads=1 if options.jobs > 1 else 0,
        ))
        manifest[relative] = {"classes": names, "id": video_id, "piece": piece.piece_id,
                              "score_parts": part_indices, "qpm": round(qpm, 2),
                              "seconds": round(num_frames / settings.fps, 3)}
        ids.setdefault(key, []).append(video_id)
    return jobs, manifest, ids


def generate_music(
    out_dir: str | Path,
    settings: MusicSettings | None = None,
    options: RunOptions | None = None,
    workers: WorkerPool | None = None,
) -> Summary:
    """Write the MUSIC-layout stand-in under `out_dir`; returns the run's summary."""
    settings = settings or MusicSettings()
    options = options or RunOptions()
    out_dir = Path(out_dir)
    summary = Summary("MUSIC", str(out_dir))
    pool_context = (nullcontext(workers) if workers is not None
                    else WorkerPool(options.jobs, options.soundfont, options.progress))
    with pool_context as pool_in_use:
        solos, solo_manifest, solo_ids = plan_solo_clips(out_dir, settings, options, pool_in_use)
        duets, duet_manifest, duet_ids = plan_duets(out_dir, settings, options, pool_in_use)
        out_dir.mkdir(parents=True, exist_ok=True)
        for record in pool_in_use.map(make_clip, solos, "MUSIC solos"):
            summary.add(record)
        for record in pool_in_use.map(make_duet, duets, "MUSIC duets"):
            summary.add(record)
    write_json(out_dir / SOLO_IDS, {"videos": solo_ids})
    write_json(out_dir / DUET_IDS, {"videos": duet_ids})
    write_json(out_dir / MANIFEST, {
        "layout": "music", "seed": options.seed, "soundfont": options.soundfont,
        "level_dbfs": options.level_dbfs, "settings": dataclasses.asdict(settings),
        "files": {**solo_manifest, **duet_manifest},
    })
    for name in (SOLO_IDS, DUET_IDS, MANIFEST):
        summary.add_file(out_dir / name)
    return summary.finish()
