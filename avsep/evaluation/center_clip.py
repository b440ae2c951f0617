"""The published MUSIC protocol: one centre clip per video, mixtures from a published list.

iQuery and DAVIS score every line of their `testsepmusic.csv` (`pair_csv`) on one clip per
video, cut around the middle of the video by the loader they inherit from Sound of Pixels
(`dataset/base.py` `_load_audio`; iQuery `dataset/music.py` and `music21.py`, test split):

    count        = frames of the video in the list's frame index, at `fps` frames/s
    centre_frame = count // 2 + 1                      (1-based, as ffmpeg numbers files)
    centre_time  = (centre_frame - 0.5) / fps          seconds
    centre       = int(centre_time * 11025)            a sample of the video
    clip[0 : 65534] = audio[centre - 32767 : centre + 32767]; clip[65534] stays 0
    samples before the start or past the end of the video are zeros
    a video shorter than 65535 samples is first tiled int(65535 / length) + 1 times

(65535 // 2 = 32767 on both sides: the loaders leave the clip's last sample at zero, and so
does this module.) iQuery extracts frames at 1 frame/s (`ffmpeg -r 1`) and runs with
`--frameRate 1`, so `fps` defaults to 1; Sound of Pixels' own snapshot uses 8 frames/s and
`count // 2`. avsep keeps no frame index of the authors' extraction: `count` is the number
of `fps` frames that cover the video's audio in the shards, ceil(samples * fps / 11025);
ffmpeg may emit one frame more or less for the same video, which moves the centre by one
frame (1 / fps seconds). A video's chunks (`avsep prepare` cuts videos into chunks of at
most 12 s) are put back together, so the middle is the middle of the whole video.

The model sees the frames of its own training geometry (`ClipSpec`: e.g. 3 frames 24 apart
at 8 frames/s) around the clip's centre sample, read across chunks, with the evaluation
transform; the papers' models took theirs from their own frame index. Sources are mixed and
scored as in the multi-clip protocol (`music`): `MixSources` in eval mode, the URMP scorer
with its skip rule for silent clips; the mixture and ideal masks are scored on the same
clips. Listed videos absent from the test shards skip their lines, and the result counts
lines evaluated and skipped, and names the missing videos.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from avsep.classes import MUSIC21_CLASSES
from avsep.evaluation.music import Chunk, index_music_shards, mixed_segment
from avsep.evaluation.pair_csv import ListedPair, PairList, PairListError, read_pair_csv
from avsep.evaluation.reader import UrmpSegment
from avsep.evaluation.runner import EvaluationProtocol, EvaluationResult, RunOptions, run_protocol
from avsep.faults import UsageError
from avsep.geometry import CLIP_SAMPLES, SAMPLE_RATE, ClipSpec, augment_frames
from avsep.mixing import MixSources
from avsep.shard_format import (
    AUDIO,
    ShardFormatError,
    decode_jpeg,
    frame_member,
    load_npy,
    read_member,
)
from avsep.sources import DEFAULT_POLICY, ReadPolicy

PROTOCOL = "music-center-clip"
LIST_FPS = 1
"""Frame rate of the published lists' frame index (iQuery: `ffmpeg -r 1`, `--frameRate 1`)."""


@dataclass(frozen=True)
class CenterClip:
    """Where the centre clip of one video lies (module docstring for the arithmetic).

    Attributes:
        samples: the video's audio length (samples at 11025 Hz).
        frames: its frame count in the list's index (`fps` frames per second).
        centre_frame: the 1-based centre frame.
        centre: the centre sample; the clip is `centre - window // 2` .. `centre + window // 2`.
        window: the clip length (65535).
    """

    samples: int
    frames: int
    centre_frame: int
    centre: int
    window: int = CLIP_SAMPLES

    @property
    def start(self) -> int:
        """The video sample at clip position 0 (negative: the clip starts with zeros)."""
        return self.centre - self.window // 2


def center_clip(samples: int, fps: int = LIST_FPS, window: int = CLIP_SAMPLES,
                sample_rate: int = SAMPLE_RATE) -> CenterClip:
    """The centre clip of a video of `samples` audio samples (module docstring).

    >>> center_clip(77175)  # 7 s: 7 frames at 1 frame/s, centre frame 4 at 3.5 s
    CenterClip(samples=77175, frames=7, centre_frame=4, centre=38587, window=65535)
    """
    if samples < 1 or fps < 1:
        raise UsageError(f"need a video of at least one sample and fps >= 1, got {samples} "
                         f"samples at {fps} frames/s")
    frames = -(-samples * fps // sample_rate)  # ceil, in integers
    centre_frame = frames // 2 + 1
    centre_time = (centre_frame - 0.5) / fps  # the loaders' float arithmetic, to the sample
    return CenterClip(samples, frames, centre_frame, int(centre_time * sample_rate), window)


def cut_center_clip(read: Callable[[int, int], np.ndarray], clip: CenterClip) -> np.ndarray:
    """float32 (window,) the clip of a video whose samples [lo, hi) `read(lo, hi)` returns.

    Reads only the samples the clip holds, except for a video shorter than the clip, which
    is read whole and tiled first (module docstring).
    """
    half = clip.window // 2
    out = np.zeros(clip.window, np.float32)
    if clip.samples < clip.window:
        source = np.tile(read(0, clip.samples), int(clip.window / clip.samples) + 1)
        read = (lambda lo, hi: source[lo:hi])  # the tiled video stands in for the video
        length = len(source)
    else:
        length = clip.samples
    lo, hi = max(0, clip.centre - half), min(length, clip.centre + half)
    if hi > lo:
        out[half - (clip.centre - lo):half + (hi - clip.centre)] = read(lo, hi)
    return out


class Video:
    """The chunks of one test video, read as one recording.

    Args:
        chunks: its chunks (`music.index_music_shards`), in any order; they must cover the
            video from its first sample without gaps or overlaps.

    Raises:
        ShardFormatError: they do not (a chunk is missing), or disagree on the class.
    """

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = sorted(chunks, key=lambda c: c.first)
        first = self.chunks[0]
        self.video_id, self.class_name = first.video_id, first.class_name
        position = 0
        for chunk in self.chunks:
            if chunk.first != position:
                raise ShardFormatError(
                    f"video {self.video_id}: its chunks do not cover it without gaps (a chunk "
                    f"starts at sample {chunk.first}, expected {position}; {chunk.shard}: "
                    f"{chunk.key!r}); prepare the test split again")
            if chunk.class_name != self.class_name:
                raise ShardFormatError(f"video {self.video_id}: chunks of two classes "
                                       f"({self.class_name}, {chunk.class_name})")
            position += chunk.num_samples
        self.samples = position

    def read_audio(self, lo: int, hi: int) -> np.ndarray:
        """float32 (hi - lo,) samples [lo, hi) of the video, across chunks."""
        parts = []
        for chunk in self.chunks:
            a, b = max(lo, chunk.first), min(hi, chunk.first + chunk.num_samples)
            if a < b:
                audio = _read_chunk_audio(chunk)
                parts.append(audio[a - chunk.first:b - chunk.first])
        return np.concatenate(parts).astype(np.float32, copy=False)

    def frame_at(self, time_s: float, fps: int) -> tuple[Chunk, int]:
        """The chunk and frame index showing the video at `time_s` (clamped to the video)."""
        sample = min(max(round(time_s * SAMPLE_RATE), 0), self.samples - 1)
        chunk = next(c for c in self.chunks if sample < c.first + c.num_samples)
        index = round((time_s - chunk.first / SAMPLE_RATE) * fps)
        return chunk, min(max(index, 0), chunk.num_frames - 1)

    def read_frames(self, centre: int, spec: ClipSpec) -> np.ndarray:
        """uint8 (3, spec.num_frames, S, S) the frames of `spec` around sample `centre`
        (evaluation transform: resize, centre crop)."""
        images = []
        for i in range(spec.num_frames):
            step = (i - spec.num_frames // 2) * spec.frame_stride
            chunk, index = self.frame_at(centre / SAMPLE_RATE + step / spec.fps, spec.fps)
            images.append(decode_jpeg(_read_chunk_member(chunk, frame_member(index))))
        return augment_frames(images, spec, rng=None)


def _read_chunk_member(chunk: Chunk, ext: str) -> bytes:
    fd = os.open(chunk.shard, os.O_RDONLY)
    try:
        return read_member(fd, chunk, ext)
    finally:
        os.close(fd)


def _read_chunk_audio(chunk: Chunk) -> np.ndarray:
    audio = load_npy(_read_chunk_member(chunk, AUDIO))
    if audio.ndim != 1 or len(audio) != chunk.num_samples:
        raise ShardFormatError(f"{chunk.shard}: sample {chunk.key!r}: audio {audio.shape}, its "
                               f"header says {chunk.num_samples} samples")
    return audio


@dataclass
class ClipData:
    """The decoded centre clip of one video: audio (window,) and frames or None."""

    audio: np.ndarray
    frames: np.ndarray | None


def read_clip(video: Video, clip: CenterClip, spec: ClipSpec | None) -> ClipData:
    """The audio of `clip` and, with `spec`, the model's frames around its centre."""
    audio = cut_center_clip(video.read_audio, clip)
    frames = video.read_frames(clip.centre, spec) if spec is not None else None
    return ClipData(audio, frames)


def match_list(pair_list: PairList, videos: dict[str, Video]
               ) -> tuple[list[ListedPair], list[ListedPair], list[str]]:
    """The lines whose two videos are in the test shards, the others, and the missing ids.

    Raises:
        PairListError: a listed video has another class in the shards (file:line).
    """
    present, absent = [], []
    for pair in pair_list.pairs:
        for source in pair.sources:
            video = videos.get(source.video_id)
            if video is not None and video.class_name != source.class_name:
                raise PairListError(
                    f"{pair_list.path}:{pair.line}: video {source.video_id} is "
                    f"{source.class_name} in the list but {video.class_name} in the test shards")
        if all(s.video_id in videos for s in pair.sources):
            present.append(pair)
        else:
            absent.append(pair)
    missing = sorted({s.video_id for p in absent for s in p.sources if s.video_id not in videos})
    return present, absent, missing


def _mixture(pair: ListedPair, clips: dict[str, ClipData], mixer: MixSources,
             starts: dict[str, int]) -> UrmpSegment:
    """One listed line as the URMP scorer takes it; key `line<N>` names the list's line."""
    ids = [s.video_id for s in pair.sources]
    frames = [f for f in (clips[i].frames for i in ids) if f is not None]  # none without spec
    return mixed_segment(
        f"line{pair.line:05d}", pair.line, [s.class_name for s in pair.sources],
        [clips[i].audio for i in ids], frames or None, starts[ids[0]] / SAMPLE_RATE, mixer)


def _read_clips(videos: dict[str, Video], clips: dict[str, CenterClip], wanted: Sequence[str],
                spec: ClipSpec | None, workers: int) -> dict[str, ClipData]:
    """Decode the clip of every wanted video once (lines share videos)."""
    read = (lambda i: read_clip(videos[i], clips[i], spec))
    if workers <= 0:
        return {i: read(i) for i in wanted}
    with ThreadPoolExecutor(workers, thread_name_prefix="music-clip") as pool:
        return dict(zip(wanted, pool.map(read, wanted)))


class CenterClipProtocol(EvaluationProtocol):
    """The lines of a published pair list whose videos are in the test shards, in list
    order, one centre clip per video.

    Args:
        pairs_csv: the list (read here, so that a bad line fails before anything else).
        shard_dir: where the shards are, for messages.
        fps: frame rate of the list's frame index.
        mixing: how sources are mixed ('sop' or 'peak').
    """

    name = PROTOCOL
    classes = MUSIC21_CLASSES
    split = "test"
    prefetch = False  # `reader` decodes every video's clip once: lines share videos

    def __init__(self, pairs_csv: str | os.PathLike, shard_dir: str | os.PathLike, fps: int,
                 mixing: Literal["sop", "peak"]) -> None:
        self.pair_list = read_pair_csv(pairs_csv)
        self.shard_dir, self.fps, self.mixing = shard_dir, fps, mixing
        self.mixer = MixSources(mixing).eval()
        self.videos: dict[str, Video] = {}
        self.clips: dict[str, CenterClip] = {}
        self.matched: tuple[list[ListedPair], list[ListedPair], list[str]] = ([], [], [])

    def items(self, files: list[Path], sample_rate: int) -> Sequence[ListedPair]:
        by_video: dict[str, list[Chunk]] = {}
        for chunk in index_music_shards(files, sample_rate):
            by_video.setdefault(chunk.video_id, []).append(chunk)
        listed = self.pair_list.videos
        self.videos = {i: Video(by_video[i]) for i in listed if i in by_video}
        self.matched = match_list(self.pair_list, self.videos)
        present, _, missing = self.matched
        if not present:
            raise UsageError(
                f"{self.pair_list.path}: no line can be evaluated: {len(missing)} of its "
                f"{len(listed)} videos are not in the test shards of {self.shard_dir} (prepare "
                "them with `avsep prepare music --test-ids` so that the list's videos are "
                "in test)")
        self.clips = {i: center_clip(v.samples, self.fps) for i, v in self.videos.items()}
        return present

    def reader(self, mine: Sequence[ListedPair], frames: ClipSpec | None, sample_rate: int,
               workers: int) -> Callable[[ListedPair], UrmpSegment]:
        wanted = list(dict.fromkeys(s.video_id for pair in mine for s in pair.sources))
        decoded = _read_clips(self.videos, self.clips, wanted, frames, workers)
        starts = {i: c.start for i, c in self.clips.items()}
        return partial(_mixture, clips=decoded, mixer=self.mixer, starts=starts)

    def info(self) -> dict[str, Any]:
        return {"pair_list": list_info(self.pair_list, *self.matched, self.clips, self.fps),
                "mixing": self.mixing}


def evaluate_music_center(
    separator,
    shard_dir: str | os.PathLike,
    pairs_csv: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    fps: int = LIST_FPS,
    mixing: Literal["sop", "peak"] = "sop",
    batch_size: int = 4,
    device: str | torch.device | None = None,
    clip_spec: ClipSpec | None = None,
    workers: int = 2,
    progress: bool = True,
    info: dict[str, Any] | None = None,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> EvaluationResult:
    """Evaluate `separator` on the lines of a published pair list, one centre clip per video.

    Args:
        shard_dir: prepared MUSIC shards; their test/ split is read (as `evaluate_music`).
        pairs_csv: the published list (`pair_csv.read_pair_csv`).
        out_dir: if given, rank 0 writes results.json, segments.csv and results.md there.
        fps: frame rate of the list's frame index (module docstring; 1 for iQuery's lists).
        Other arguments as `evaluate_music`.

    Returns:
        the merged result; `info["pair_list"]` counts the list's lines (evaluated, skipped
        for a missing video), names the missing videos and gives each video's clip.

    Raises:
        PairListError: the list is malformed, or names a video under another class than
            the shards (the message names file:line).
        UsageError: no line has both its videos in the test shards.
    """
    options = RunOptions(batch_size, device, clip_spec, workers, progress, info, policy)
    protocol = CenterClipProtocol(pairs_csv, shard_dir, fps, mixing)
    return run_protocol(separator, protocol, shard_dir, out_dir, options)


def list_info(pair_list: PairList, present: Sequence[ListedPair], absent: Sequence[ListedPair],
              missing: Sequence[str], clips: dict[str, CenterClip], fps: int) -> dict[str, Any]:
    """What results.json says about the list: counts, missing videos, every clip used."""
    return {
        "file": pair_list.path,
        "sha1": pair_list.sha1,
        "lines": len(pair_list.pairs),
        "distinct_pairs": pair_list.distinct_pairs,
        "videos": len(pair_list.videos),
        "lines_evaluated": len(present),
        "lines_skipped_missing_video": len(absent),
        "missing_videos": list(missing),
        "center_fps": fps,
        "window_samples": CLIP_SAMPLES,
        "clips": {i: {"class": pair_list.videos[i], "video_samples": c.samples,
                      "index_frames": c.frames, "centre_frame": c.centre_frame,
                      "centre_sample": c.centre, "first_sample": c.start}
                  for i, c in sorted(clips.items())},
    }

