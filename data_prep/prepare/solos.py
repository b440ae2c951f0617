"""Solos videos -> training shards: playing spans cut into chunks of audio + 8 fps frames.

Raw layout: RAW/<Class>/<video id>.mp4 and a timestamps file
`{Class: {video id: [[start_frame, end_frame], ...]}}` whose frame numbers count at 25 fps
(Solos publishes them that way, whatever the frame rate of the downloaded file). Spans are
converted to seconds and every frame is picked by presentation time, so downloaded videos
need no re-encoding to 25 fps.

Per video (one work unit): probe -> decode the whole audio track at its native rate ->
reject silent tracks -> resample to 11025 Hz -> for each playing span at least one clip long,
equal chunks of at most `max_chunk_s` -> per chunk the audio and the frames at
`start_s + i / 8` -> one sample in `OUT/<split>/solos-<split>-<tag>-NNN.tar`.

Frames are decoded in one pass over the kept ones (`avsep.stream_frames.StreamFrameReader`): frames
between playing spans are jumped over, frames nothing refers to are not decoded unless
kept, and only kept frames are scaled (to the stored size, by the decoder's scaler).
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np

from avsep.classes import SOLOS_CLASSES, class_index
from avsep.media import (
    BadInput,
    decode_audio,
    encode_jpeg,
    peak_dbfs,
    probe,
    resample,
    resize_for_storage,
    short_side_size,
)
from avsep.shard_format import AUDIO, HEADER, frame_member, solos_key
from avsep.stream_frames import StreamFrameReader
from data_prep.prepare.report import NOTE, SKIPPED, Issue, UnitResult
from data_prep.prepare.runner import (
    DEFAULT_UNIT_TIMEOUT_S,
    RunContext,
    WorkUnit,
    decoder_threads,
    run_units,
)
from data_prep.prepare.settings import SOLOS_TIMESTAMP_FPS, PrepareSettings
from data_prep.prepare.split import split_of
from data_prep.prepare.writer import UnitShardWriter

TIMESTAMPS_NAME = "solos_timestamps.json"
SPLITS = ("train", "val")


def load_timestamps(path: Path) -> dict[str, dict[str, list[list[int]]]]:
    """Read a Solos timestamps file; a malformed file is an error naming the problem."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read timestamps file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected {{Class: {{video_id: [[start, end], ...]}}}}")
    return data


def discover_solos(
    src: Path, settings: PrepareSettings, timestamps: Path | None = None
) -> tuple[list[WorkUnit], list[Issue]]:
    """The work units of a raw Solos folder, and notes about the folder as a whole.

    Args:
        src: RAW, holding <Class>/<video id>.mp4.
        settings: gives the validation fraction.
        timestamps: the spans file; default RAW/solos_timestamps.json when it exists,
            otherwise every video is used whole (with a note).
    """
    if not src.is_dir():
        raise ValueError(f"raw folder not found: {src}")
    notes: list[Issue] = []
    if timestamps is None and (src / TIMESTAMPS_NAME).is_file():
        timestamps = src / TIMESTAMPS_NAME
    spans_by_class = load_timestamps(timestamps) if timestamps is not None else None
    if spans_by_class is None:
        notes.append(Issue(".", NOTE, "no_timestamps",
                           f"no {TIMESTAMPS_NAME} in RAW and no --timestamps: every video is "
                           "used whole, as one playing span"))
    units: list[WorkUnit] = []
    ignored = []
    for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name not in SOLOS_CLASSES:
            notes.append(Issue(folder.name, NOTE, "unknown_folder",
                               "ignored: not one of the 13 Solos class names"))
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix != ".mp4" or not path.is_file():
                ignored.append(path)
                continue
            units.append(_make_unit(src, path, folder.name, settings, spans_by_class))
    if ignored:
        names = ", ".join(p.relative_to(src).as_posix() for p in ignored[:3])
        notes.append(Issue(".", NOTE, "ignored_files",
                           f"ignored {len(ignored)} non-mp4 entries in class folders ({names}"
                           f"{', ...' if len(ignored) > 3 else ''})"))
    if spans_by_class is not None:
        present = {u.unit for u in units}
        listed = {f"{c}/{v}" for c, videos in spans_by_class.items() for v in videos}
        missing = sorted(listed - present)
        if missing:
            notes.append(Issue(".", NOTE, "not_downloaded",
                               f"{len(missing)} videos of the timestamps file are not in RAW "
                               f"(e.g. {missing[0]})"))
    if not units:
        raise ValueError(f"no videos found in {src} (expected {src}/<Class>/<video id>.mp4)")
    return units, notes


def _make_unit(
    src: Path, path: Path, class_name: str, settings: PrepareSettings, spans_by_class
) -> WorkUnit:
    video_id = path.stem
    if spans_by_class is None:
        span_source, spans_s = "no_timestamps_file", None
    elif video_id in spans_by_class.get(class_name, {}):
        span_source = "timestamps"
        spans_s = [
            [start / SOLOS_TIMESTAMP_FPS, end / SOLOS_TIMESTAMP_FPS]
            for start, end in spans_by_class[class_name][video_id]
        ]
    else:
        span_source, spans_s = "missing_from_timestamps", None
    split = split_of(video_id, settings.val_fraction)
    return WorkUnit(
        unit=f"{class_name}/{video_id}",
        source=path.relative_to(src).as_posix(),
        label=class_name,
        split=split,
        shard_dir=split,
        shard_prefix=f"solos-{split}",
        params={"video_id": video_id, "spans_s": spans_s, "span_source": span_source},
    )


def chunk_bounds(start: int, stop: int, max_len: int) -> list[tuple[int, int]]:
    """Cut [start, stop) into the fewest equal parts of at most `max_len` samples.

    >>> chunk_bounds(0, 10, 4)
    [(0, 3), (3, 7), (7, 10)]
    """
    count = math.ceil((stop - start) / max_len)
    edges = [start + round(k * (stop - start) / count) for k in range(count + 1)]
    return list(itertools.pairwise(edges))


def plan_chunks(
    spans_s: list[list[float]], end_s: float, settings: PrepareSettings, source: str
) -> tuple[list[tuple[int, int, int, tuple[float, float]]], list[Issue]]:
    """Chunks (span index, first sample, end sample, span) of the playing spans.

    Spans are clipped to [0, end_s]; spans shorter than one clip are left out (returned as
    SKIPPED issues).
    """
    rate = settings.sample_rate
    max_len = int(settings.max_chunk_s * rate)
    chunks, issues = [], []
    for index, (start, stop) in enumerate(spans_s):
        begin, end = max(0.0, start), min(stop, end_s)
        if stop > end_s + 1.0:
            issues.append(Issue(source, NOTE, "span_clipped",
                                f"span {index} ends at {stop:.2f} s, after the end of the "
                                f"video ({end_s:.2f} s): clipped"))
        first, last = math.ceil(begin * rate), math.floor(end * rate)
        if last - first < settings.clip_samples:
            issues.append(Issue(source, SKIPPED, "span_too_short",
                                f"span {index} ({start:.2f}-{stop:.2f} s) holds "
                                f"{max(0, last - first) / rate:.2f} s of video, less than one "
                                f"clip ({settings.clip_seconds:.2f} s)",
                                seconds=max(0.0, end - begin)))
            continue
        chunks += [(index, a, b, (begin, end)) for a, b in chunk_bounds(first, last, max_len)]
    return chunks, issues


def process_solos_video(
    unit: WorkUnit, ctx: RunContext, writer: UnitShardWriter, result: UnitResult
) -> None:
    """Decode one Solos video and write its samples (see the module docstring)."""
    settings, rate = ctx.settings, ctx.settings.sample_rate
    path = ctx.src / unit.source
    info = probe(path)
    if info.video is None:
        raise BadInput("no_video", "no video stream")
    if info.audio is None:
        raise BadInput("no_audio", "no audio stream")
    native = decode_audio(path, info.audio)
    level = peak_dbfs(native)
    if level < settings.silence_dbfs:
        raise BadInput("silent", f"silent audio track (peak {level:.0f} dBFS)")
    audio = resample(native, info.audio.sample_rate, rate)
    del native
    size = short_side_size(info.video.width, info.video.height, settings.short_side)
    frames = StreamFrameReader(path, threads=ctx.threads, size=size)
    end_s = min(len(audio) / rate, frames.end_s)
    result.source_seconds = end_s

    spans_s = unit.params["spans_s"] or [[0.0, end_s]]
    chunks, issues = plan_chunks(spans_s, end_s, settings, unit.source)
    if not chunks:
        longest = max((min(b, end_s) - max(a, 0.0) for a, b in spans_s), default=0.0)
        raise BadInput(
            "too_short",
            f"no playing span as long as one clip ({settings.clip_seconds:.2f} s); the longest "
            f"is {max(longest, 0.0):.2f} s (video: {end_s:.2f} s)",
        )
    if unit.params["span_source"] == "missing_from_timestamps":
        issues.append(Issue(unit.source, NOTE, "no_spans",
                            "not in the timestamps file: the whole video is used as one span"))
    result.issues += issues

    class_name, video_id = unit.label, unit.params["video_id"]
    # What the header says the video shows: the Solos class by default; other datasets
    # (MUSIC) give their own labels in the unit.
    labels = unit.params.get("labels") or {"class": class_name,
                                           "class_index": class_index(class_name)}
    chunk_frames = [frames.nearest_frames(first / rate + np.arange(
        math.ceil((stop - first) * settings.fps / rate)) / settings.fps)
        for _, first, stop, _ in chunks]
    frames.keep_only(np.concatenate(chunk_frames))
    chunk_numbers: dict[int, int] = {}
    for (span_index, first, stop, span), indices in zip(chunks, chunk_frames):
        chunk_index = chunk_numbers[span_index] = chunk_numbers.get(span_index, -1) + 1
        start_s = first / rate
        num_frames = len(indices)
        sample: dict = {
            "__key__": solos_key(class_name, video_id, span_index, chunk_index),
            AUDIO: np.ascontiguousarray(audio[first:stop]),
        }
        for i, image in enumerate(frames.read(indices)):
            image = resize_for_storage(image, settings.short_side)
            sample[frame_member(i)] = encode_jpeg(image, settings.jpeg_quality)
        sample[HEADER] = {
            **labels,
            "video_id": video_id,
            "start_s": start_s,
            "span": [span[0], span[1]],
            "sample_rate": rate,
            "fps": settings.fps,
            "num_frames": num_frames,
            "num_samples": stop - first,
            "source": unit.source,
            "source_fps": info.video.fps,
        }
        writer.write(sample)
        result.samples += 1
        result.audio_seconds += (stop - first) / rate
    frames.close()


def prepare_solos(
    src: Path,
    out: Path,
    settings: PrepareSettings | None = None,
    *,
    timestamps: Path | None = None,
    jobs: int = 1,
    part=None,
    strict: bool = False,
    retry_bad: bool = False,
    unit_timeout_s: float = DEFAULT_UNIT_TIMEOUT_S,
) -> int:
    """Prepare a raw Solos folder into OUT/train and OUT/val shards; return the exit code."""

    settings = settings or PrepareSettings()
    src, out = Path(src), Path(out)
    units, notes = discover_solos(src, settings, timestamps)
    if units and not any(unit.split == "val" for unit in units):
        notes.append(Issue(
            ".", NOTE, "no_val",
            f"no video falls in val with --val-fraction {settings.val_fraction:g} "
            f"({len(units)} videos; the split is by a hash of the video id), so `avsep train` "
            "will find no validation shards: use a larger --val-fraction, e.g. 0.25"))
    ctx = RunContext(src=src, out=out, settings=settings, shard_dirs=SPLITS,
                     threads=decoder_threads(jobs))
    return run_units(
        process_solos_video, units, ctx, jobs=jobs, part=part, strict=strict,
        retry_bad=retry_bad, global_issues=notes, label_name="class", unit_name="video",
        unit_timeout_s=unit_timeout_s,
    )
