"""URMP pieces -> evaluation shards: real mixture, stems and one frame crop per player.

Raw layout, one folder per piece: RAW/NN_Title_c1_c2[...]/ with `Vid_<folder>.mp4` (the
players side by side at equal widths, left to right in part order), `AuSep_<k>_<code>_NN_
Title.wav` (k = 1..P) and `AuMix_<folder>.wav`. Players are identified by their position
(index 0..P-1, left to right = AuSep 1..P), never by instrument code, so pieces with two
players of the same instrument (`vn_vn`) work like any other.

Per piece (one work unit): read and check the WAVs (same rate, same length) -> resample
mixture and stems to 11025 Hz with the one resampler of decode.py -> consecutive
segments of `clip_samples` over the duration covered by both audio and video -> per
segment the mixture, the stems and, per player, the crop of the frames at `start_s + i / 8`.

The last partial segment: if it holds at least `min_tail_s` of audio it is kept, zero-padded
to `clip_samples`, with `valid_samples` telling how much is real (frames cover only the real
part); if shorter it is dropped and counted ('tail_dropped' in the report).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from avsep.classes import URMP_CODE_TO_CLASS, class_index
from avsep.media import (
    BadInput,
    encode_jpeg,
    peak_dbfs,
    probe,
    read_wav,
    resample,
    resize_for_storage,
)
from avsep.shard_format import HEADER, MIX, STEMS, player_frame_member, urmp_key
from avsep.stream_frames import StreamFrameReader
from avsep.urmp_naming import parse_piece_name, player_bounds, scaled_frame_size
from data_prep.prepare.report import NOTE, SKIPPED, Issue, UnitResult
from data_prep.prepare.runner import (
    DEFAULT_UNIT_TIMEOUT_S,
    RunContext,
    WorkUnit,
    decoder_threads,
    run_units,
)
from data_prep.prepare.settings import PrepareSettings
from data_prep.prepare.writer import UnitShardWriter


def discover_urmp(src: Path) -> list[WorkUnit]:
    """One work unit per piece folder of RAW (folders that do not parse are reported later)."""
    if not src.is_dir():
        raise ValueError(f"raw folder not found: {src}")
    folders = sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise ValueError(f"no piece folders found in {src} (expected {src}/NN_Title_c1_c2/)")
    return [
        WorkUnit(unit=f.name, source=f.name, label=f.name, split="test", shard_dir="",
                 shard_prefix="urmp")
        for f in folders
    ]


def _read_audio(folder: Path, number: str, title: str, codes: list[str], silence_dbfs: float):
    """Mixture and stems at their common native rate; checks presence, rates and lengths.

    Returns:
        (mix (T,), stems (P, T), rate, notes)
    """
    notes: list[Issue] = []
    stems, names = [], []
    for k, code in enumerate(codes, start=1):
        name = f"AuSep_{k}_{code}_{number}_{title}.wav"
        if not (folder / name).is_file():
            others = sorted(p.name for p in folder.glob(f"AuSep_{k}_*.wav"))
            hint = f" (found {', '.join(others)}: a different instrument code)" if others else ""
            raise BadInput("missing_stem", f"missing stem {name} for player {k} ({code}){hint}")
        audio, rate = read_wav(folder / name)
        stems.append((audio, rate))
        names.append(name)
    extra = sorted(p.name for p in folder.glob("AuSep_*.wav") if p.name not in names)
    if extra:
        notes.append(Issue(folder.name, NOTE, "extra_stems",
                           f"ignored stems not in the folder name: {', '.join(extra)}"))
    mix_name = f"AuMix_{folder.name}.wav"
    if not (folder / mix_name).is_file():
        raise BadInput("missing_mix", f"missing mixture {mix_name}")
    mix, mix_rate = read_wav(folder / mix_name)
    rates = {rate for _, rate in stems} | {mix_rate}
    if len(rates) > 1:
        listing = ", ".join(f"{n}: {r} Hz" for n, (_, r) in zip(names, stems))
        raise BadInput("sample_rate", f"WAVs have different rates ({listing}, {mix_name}: "
                                      f"{mix_rate} Hz)")
    lengths = [len(audio) for audio, _ in stems] + [len(mix)]
    if len(set(lengths)) > 1:
        listing = ", ".join(f"{n}: {n_} samples" for n, n_ in zip([*names, mix_name], lengths))
        raise BadInput("stem_length", f"stems and mixture differ in length ({listing})")
    for name, (audio, _) in zip(names, stems):
        level = peak_dbfs(audio)
        if level < silence_dbfs:
            raise BadInput("silent", f"stem {name} is silent (peak {level:.0f} dBFS)")
    return mix, np.stack([audio for audio, _ in stems]), mix_rate, notes


def process_urmp_piece(
    unit: WorkUnit, ctx: RunContext, writer: UnitShardWriter, result: UnitResult
) -> None:
    """Decode one URMP piece and write its segments (see the module docstring)."""
    settings, rate, clip = ctx.settings, ctx.settings.sample_rate, ctx.settings.clip_samples
    folder = ctx.src / unit.source
    number, title, codes = parse_piece_name(folder.name)
    players = len(codes)
    mix_native, stems_native, native_rate, notes = _read_audio(
        folder, number, title, codes, settings.silence_dbfs
    )
    result.issues += notes

    video_name = f"Vid_{folder.name}.mp4"
    if not (folder / video_name).is_file():
        raise BadInput("missing_video", f"missing video {video_name}")
    try:
        info = probe(folder / video_name)
        if info.video is None:
            raise BadInput("no_video", "no video stream")
        width, height = info.video.width, info.video.height
        scaled = scaled_frame_size(width, height, players, settings.short_side)
        frames = StreamFrameReader(folder / video_name, threads=ctx.threads, size=scaled)
    except BadInput as exc:  # say which of the piece's files is concerned
        raise BadInput(exc.code, f"{video_name}: {exc}") from None
    source_bounds = player_bounds(width, players)
    bounds = player_bounds(scaled[0], players)  # the same columns in the decoded frames
    if width % players:
        result.issues.append(Issue(unit.source, NOTE, "uneven_width",
                                   f"video width {width} is not a multiple of {players} "
                                   "players: crop edges rounded"))

    mix = resample(mix_native, native_rate, rate)
    stems = np.stack([resample(s, native_rate, rate) for s in stems_native])
    residual = _mix_residual_db(mix, stems)
    result.extra["mix_minus_stems_db"] = residual
    if residual > -30.0:
        result.issues.append(Issue(unit.source, NOTE, "mix_not_sum",
                                   f"AuMix differs from the sum of the stems by {residual:.1f} dB"))
    audio_s, video_s = len(mix) / rate, frames.end_s
    if abs(audio_s - video_s) > 1.0:
        result.issues.append(Issue(unit.source, NOTE, "duration_mismatch",
                                   f"audio lasts {audio_s:.2f} s, video {video_s:.2f} s: only "
                                   "the part covered by both is used"))
    usable = min(len(mix), math.floor(video_s * rate))
    result.source_seconds = usable / rate
    starts = list(range(0, usable - clip + 1, clip))
    tail = usable - (len(starts) * clip)
    if tail >= settings.min_tail_s * rate:
        starts.append(len(starts) * clip)
    elif tail > 0:
        result.issues.append(Issue(unit.source, SKIPPED, "tail_dropped",
                                   f"last {tail / rate:.2f} s dropped (shorter than "
                                   f"{settings.min_tail_s:g} s)", seconds=tail / rate))
    if not starts:
        raise BadInput("too_short", f"only {usable / rate:.2f} s of audio and video, less than "
                                    f"{settings.min_tail_s:g} s")

    segment_frames = [frames.nearest_frames(first / rate + np.arange(math.ceil(
        min(clip, usable - first) * settings.fps / rate)) / settings.fps) for first in starts]
    frames.keep_only(np.concatenate(segment_frames))
    for segment, (first, indices) in enumerate(zip(starts, segment_frames)):
        valid = min(clip, usable - first)
        start_s = first / rate
        num_frames = len(indices)
        sample: dict = {"__key__": urmp_key(folder.name, segment)}
        for i, image in enumerate(frames.read(indices)):
            for k, (x0, x1) in enumerate(bounds):
                crop = resize_for_storage(image[:, x0:x1], settings.short_side)
                sample[player_frame_member(k, i)] = encode_jpeg(crop, settings.jpeg_quality)
        sample[MIX] = _padded(mix[first:first + valid], clip)
        sample[STEMS] = np.stack([_padded(s[first:first + valid], clip) for s in stems])
        sample[HEADER] = {
            "piece": folder.name,
            "segment": segment,
            "instruments": codes,
            "classes": [URMP_CODE_TO_CLASS[c] for c in codes],
            "class_indices": [class_index(c) for c in codes],
            "players": players,
            "valid_samples": valid,
            "num_samples": clip,
            "start_s": start_s,
            "sample_rate": rate,
            "fps": settings.fps,
            "num_frames": num_frames,
            "crop_bounds_px": [list(b) for b in source_bounds],
            "source_size": [width, height],
            "source": f"{unit.source}/{video_name}",
        }
        writer.write(sample)
        result.samples += 1
        result.audio_seconds += valid / rate
    frames.close()


def _padded(audio: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.float32)
    out[: len(audio)] = audio
    return out


def _mix_residual_db(mix: np.ndarray, stems: np.ndarray) -> float:
    """Energy of (mix - sum of stems) relative to the mix, in dB."""
    error = float(np.sum((mix - stems.sum(axis=0)) ** 2))
    energy = float(np.sum(mix**2)) or 1e-20
    return 10 * math.log10(max(error, 1e-20) / energy)


def prepare_urmp(
    src: Path,
    out: Path,
    settings: PrepareSettings | None = None,
    *,
    jobs: int = 1,
    part=None,
    strict: bool = False,
    retry_bad: bool = False,
    unit_timeout_s: float = DEFAULT_UNIT_TIMEOUT_S,
) -> int:
    """Prepare a raw URMP folder into OUT/urmp-<tag>-NNN.tar shards; return the exit code."""

    settings = settings or PrepareSettings()
    src, out = Path(src), Path(out)
    ctx = RunContext(src=src, out=out, settings=settings, shard_dirs=("",),
                     threads=decoder_threads(jobs))
    return run_units(
        process_urmp_piece, discover_urmp(src), ctx, jobs=jobs, part=part, strict=strict,
        retry_bad=retry_bad, label_name="piece", unit_name="piece",
        unit_timeout_s=unit_timeout_s,
    )
