"""The URMP-layout stand-in: one folder per ensemble piece, as the real dataset has.

    OUT/NN_Title_c1_c2[_c3...]/
        Vid_NN_Title_c1_c2.mp4       players side by side at equal widths, left to right in
                                     part order; 29.97 fps; the mixture as AAC audio (48 kHz)
        AuSep_1_c1_NN_Title.wav      one stem per player (k from 1), 48 kHz float32 WAV
        AuMix_NN_Title_c1_c2.wav     the sum of the stems, 48 kHz float32 WAV

Music comes from the URMP pool (disjoint from the Solos pool), so the held-out pieces never
share music with training. `music="solos"` draws it from the training pool instead: pieces
for choosing settings (a validation set) that share no music with the held-out ones. Stems are normalised to
one active loudness and scaled together if their sum would clip, so AuMix = sum(AuSep).
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsep.urmp_naming import boxes_file_name

from .common import (
    POOL_ORDER,
    URMP_FAMILY,
    URMP_MUSIC,
    URMP_PICTURE,
    choose_tempo,
    load_pieces,
    rng_for,
    write_json,
)
from .families import CLASSIC, family_for
from .instruments import INSTRUMENTS, instrument
from .levels import mix_stems, normalise, span_gate
from .music import Piece, Pool, fit_range, kind_of, perform, piece_seconds, pool
from .performers import render_frames
from .presets import DEFAULT_SAME_INSTRUMENT, RunOptions, UrmpSettings
from .video_io import write_mp4
from .wav_io import SUBTYPE as WAV_SUBTYPE
from .wav_io import write_wav
from .workers import FileRecord, Summary, WorkerPool, renderer

MANIFEST = "synth_manifest.json"
FADE_S = 0.3  # a piece cut short fades out over its last FADE_S
TAIL_S = 1.0  # room for the last notes to ring when a piece is used whole
MIN_NOTES = 4  # a part needs this many notes in the excerpt to be played


@dataclass(frozen=True)
class UrmpPieceJob:
    """Everything needed to write one piece folder (picklable, sent to a worker)."""

    directory: str
    number: int
    title: str
    names: tuple[str, ...]  # Solos class per player, in part order
    parts: tuple[np.ndarray, ...]  # notes (N, 4) per player on the piece's timeline
    num_frames: int
    num_samples: int
    settings: UrmpSettings
    level_dbfs: float
    picture_seed: tuple[int, ...]
    x264_threads: int
    family: str = CLASSIC  # the drawing family of the piece's video

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(instrument(n).code for n in self.names)

    @property
    def stem(self) -> str:
        """'NN_Title', the part of the file names every file of the piece shares."""
        return f"{self.number:02d}_{self.title}"


def folder_name(number: int, title: str, codes: tuple[str, ...]) -> str:
    return f"{number:02d}_{title}_{'_'.join(codes)}"


def player_counts(settings: UrmpSettings, rng: np.random.Generator) -> list[int]:
    """Players per piece: 01 and the same-instrument pieces after it have min_players (duets
    by default), the next has max_players, the rest are drawn with probabilities halving for
    each extra player."""
    low, high = settings.min_players, settings.max_players
    sizes = np.arange(low, high + 1)
    weights = 0.5 ** (sizes - 2)
    fixed = [low] * (1 + len(settings.same_instrument)) + [high]
    counts = []
    for number in range(1, settings.pieces + 1):
        if number <= len(fixed):
            counts.append(int(fixed[number - 1]))
        else:
            counts.append(int(rng.choice(sizes, p=weights / weights.sum())))
    return counts


def choose_instruments(number: int, players: int, rng: np.random.Generator,
                       same_instrument: tuple[str, ...] = DEFAULT_SAME_INSTRUMENT) -> list[str]:
    """Classes for the players, highest instrument on the highest part. Pieces 02, 03, ...
    (when they are duets) are duets of `same_instrument[0]`, `same_instrument[1]`, ...
    (`vn_vn` by default, a repeated instrument as in URMP); otherwise all differ."""
    if 2 <= number < 2 + len(same_instrument) and players == 2:
        return [same_instrument[number - 2]] * 2
    names = list(rng.choice(list(INSTRUMENTS), players, replace=False))
    return sorted(names, key=lambda n: -INSTRUMENTS[n].centre)


def _parts_with_notes(parts: list[np.ndarray], length: float) -> list[int]:
    return [i for i, notes in enumerate(parts) if np.sum(notes[:, 0] < length - 1.0) >= MIN_NOTES]


def plan_piece(
    piece: Piece,
    names: list[str],
    settings: UrmpSettings,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[int], float, float] | None:
    """Notes for each player from `piece` (None if it has too few usable parts).

    Returns (notes per player, score part indices, tempo in qpm, length in seconds).
    """
    qpm = choose_tempo(piece, rng)
    length = min(settings.seconds, piece_seconds(piece, qpm) + TAIL_S)
    performed = [perform(piece, i, qpm, rng) for i in range(len(piece.parts))]
    usable = _parts_with_notes(performed, length)
    if len(usable) < len(names):
        return None
    chosen = sorted(int(i) for i in rng.choice(usable, len(names), replace=False))
    players = []
    for name, index in zip(names, chosen):
        notes = fit_range(performed[index], instrument(name))
        notes = notes[notes[:, 0] < length - FADE_S]
        notes[:, 1] = np.minimum(notes[:, 1], length - FADE_S)
        players.append(notes)
    return players, chosen, qpm, length


def plan_urmp(
    out_dir: Path,
    settings: UrmpSettings,
    options: RunOptions,
    workers: WorkerPool,
    music: Pool = "urmp",
) -> tuple[list[UrmpPieceJob], dict]:
    """All piece jobs and the manifest entries describing them (music from pool `music`)."""
    counts = player_counts(settings, rng_for(options.seed, URMP_MUSIC, 0))
    order = rng_for(options.seed, POOL_ORDER, 2)
    five = list(pool(music, "madrigal"))
    fewer = [p for p in pool(music) if kind_of(p).name != "madrigal"]
    order.shuffle(five)
    order.shuffle(fewer)
    # read a few spares in case a piece lacks enough parts with notes
    wanted_five = sum(c == 5 for c in counts)
    five = five[: wanted_five + 2 if wanted_five else 0]
    fewer = fewer[: len(counts) - wanted_five + 2]
    pieces = load_pieces(workers, five + fewer)
    queues = {True: [pieces[p] for p in five], False: [pieces[p] for p in fewer]}
    fps = float(settings.fps)
    jobs, manifest = [], {}
    for number, players in enumerate(counts, start=1):
        rng = rng_for(options.seed, URMP_MUSIC, number)
        names = choose_instruments(number, players, rng, settings.same_instrument)
        queue = queues[players == 5]
        plan = None
        while plan is None:
            if not queue:
                raise ValueError(f"the {music} music pool has too few pieces for {players} players")
            piece = queue.pop(0)
            plan = plan_piece(piece, names, settings, rng)
        notes, part_indices, qpm, length = plan
        num_frames = round(length * fps)
        codes = tuple(instrument(n).code for n in names)
        folder = folder_name(number, piece.title, codes)
        family = family_for(settings.families, (options.seed, URMP_FAMILY), number - 1)
        jobs.append(UrmpPieceJob(
            directory=str(out_dir / folder), number=number, title=piece.title,
            names=tuple(names), parts=tuple(notes), num_frames=num_frames,
            num_samples=round(num_frames / fps * settings.sample_rate), settings=settings,
            level_dbfs=options.level_dbfs, picture_seed=(options.seed, URMP_PICTURE, number),
            x264_threads=1 if options.jobs > 1 else 0, family=family,
        ))
        manifest[folder] = {"piece": piece.piece_id, "instruments": list(codes),
                            "score_parts": part_indices, "qpm": round(qpm, 2),
                            "seconds": round(num_frames / fps, 3), "family": family}
    return jobs, manifest


def make_piece(job: UrmpPieceJob) -> FileRecord:
    """Render, normalise, mix, write the WAVs and encode the video of one piece (in a worker)."""
    cpu = time.process_time()
    s = job.settings
    synth = renderer(s.sample_rate)
    gate = span_gate(job.num_samples, [(0, job.num_samples)], round(FADE_S * s.sample_rate))
    rendered = [
        normalise(synth.render([(notes, instrument(name).program)], job.num_samples) * gate,
                  job.level_dbfs)
        for name, notes in zip(job.names, job.parts)
    ]
    stems, mixture = mix_stems(rendered)
    folder = Path(job.directory)
    folder.mkdir(parents=True, exist_ok=True)
    codes = "_".join(job.codes)
    written = []
    for k, (code, stem) in enumerate(zip(job.codes, stems), start=1):
        written.append(folder / f"AuSep_{k}_{code}_{job.stem}.wav")
        write_wav(written[-1], stem, s.sample_rate)
    written.append(folder / f"AuMix_{job.stem}_{codes}.wav")
    write_wav(written[-1], mixture, s.sample_rate)
    boxes: list = []
    frames = render_frames(
        list(zip(job.names, job.parts)), job.num_frames, float(s.fps), s.cell_width,
        s.frame_height, np.random.default_rng(list(job.picture_seed)), boxes=boxes,
        style=s.style, family=job.family,
    )
    video = folder / f"Vid_{job.stem}_{codes}.mp4"
    write_mp4(video, frames, fps=s.fps, width=s.cell_width * len(job.names),
              height=s.frame_height, audio=mixture, sample_rate=s.sample_rate,
              threads=job.x264_threads)
    written.append(video)
    # Not part of the real URMP layout: where each player is drawn, for localization scores
    # (`avsep.evaluation.localization`; real pieces fall back to equal-width columns).
    written.append(folder / boxes_file_name(f"{job.stem}_{codes}"))
    write_json(written[-1], {"fps": float(s.fps), "frame_size": [s.frame_height,
                                                                  s.cell_width * len(job.names)],
                             "boxes": boxes}, indent=None)
    return FileRecord([str(p) for p in written], job.num_frames / float(s.fps),
                      sum(p.stat().st_size for p in written), time.process_time() - cpu)


def generate_urmp(
    out_dir: str | Path,
    settings: UrmpSettings | None = None,
    options: RunOptions | None = None,
    workers: WorkerPool | None = None,
    music: Pool = "urmp",
) -> Summary:
    """Write the URMP-layout stand-in under `out_dir`; returns the run's summary.

    `workers` lets several runs share one pool (its jobs count then wins over options.jobs).
    `music`: the music pool, "urmp" (held-out music) or "solos" (the training pool, for
    validation pieces that share no music with the held-out ones).
    """
    if music not in ("urmp", "solos"):
        raise ValueError(f"music must be 'urmp' or 'solos', got {music!r}")
    settings = settings or UrmpSettings()
    options = options or RunOptions()
    out_dir = Path(out_dir)
    summary = Summary("URMP", str(out_dir))
    pool_context = (nullcontext(workers) if workers is not None
                    else WorkerPool(options.jobs, options.soundfont, options.progress))
    with pool_context as pool_in_use:
        jobs, manifest = plan_urmp(out_dir, settings, options, pool_in_use, music)
        out_dir.mkdir(parents=True, exist_ok=True)
        for record in pool_in_use.map(make_piece, jobs, "URMP pieces"):
            summary.add(record)
    write_json(out_dir / MANIFEST, {
        "layout": "urmp", "seed": options.seed, "music_pool": music,
        "soundfont": options.soundfont,
        "level_dbfs": options.level_dbfs, "wav_subtype": WAV_SUBTYPE,
        "settings": {**dataclasses.asdict(settings), "fps": str(settings.fps)},
        "files": manifest,
    })
    summary.add_file(out_dir / MANIFEST)
    return summary.finish()
