"""Clip sampling from prepared Solos shards: the training-side reader.

A prepared Solos sample (docs/shards.md) holds a chunk of one playing span: `audio.npy`
(float32 mono at 11025 Hz), JPEG frames `000.jpg`, `001.jpg`, ... at 8 fps and a `json`
header. Training draws, from each sample, a random window of `clip_samples` audio samples
and `num_frames` frames `frame_stride` frames apart around the window's centre, as Sound of
Pixels does; only those frames are decoded. Frames keep uint8 here; normalisation happens on
the device (see `avsep.models.vision.FrameNormalize`).
"""

from __future__ import annotations

import random

import numpy as np

from avsep.geometry import ClipSpec, augment_frames, clip_frame_indices
from avsep.shard_format import (
    AUDIO,
    HEADER,
    ShardFormatError,
    decode_jpeg,
    frame_member,
    header_count,
    load_npy,
    parse_header,
)


def _where(sample: dict) -> str:
    """'shard URL: sample KEY' for messages about one sample."""
    return f"{sample.get('__url__', '?')}: sample {sample.get('__key__', '?')}"


def sample_header(sample: dict) -> dict:
    """The decoded `json` member of a raw shard sample, with the keys every sample has.

    Raises:
        ShardFormatError: no json, not a JSON object, or `num_samples` / `num_frames`
            missing or not integers (the message names the shard and the sample).
    """
    if HEADER not in sample:
        raise ShardFormatError(f"{_where(sample)}: missing member {HEADER!r}")
    header = parse_header(sample[HEADER], _where(sample))
    for name in ("num_samples", "num_frames"):
        header_count(header, name, _where(sample))
    return header


def sample_clip(sample: dict, spec: ClipSpec, rng: random.Random | None) -> dict:
    """One clip from one raw (undecoded) shard sample.

    Args:
        sample: a webdataset sample with raw bytes under `audio.npy`, `json`, `NNN.jpg`
            (`avsep.shard_format`).
        spec: clip geometry.
        rng: random window, crop and flip (training); `None` takes the centre window with a
            centre crop (validation), so the same shard always gives the same clip.

    Returns:
        dict with `audio` float32 (clip_samples,), `frames` uint8 (3, num_frames, S, S),
        `class_index` int, `video_id` str, `key` str.
    """
    key = sample.get("__key__", "?")
    header = sample_header(sample)
    try:
        audio = load_npy(sample[AUDIO])
    except KeyError as exc:
        raise ShardFormatError(f"{_where(sample)}: missing member {exc.args[0]!r}") from None
    except ValueError as exc:  # np.load of damaged bytes
        raise ShardFormatError(f"{_where(sample)}: unreadable {AUDIO} ({exc})") from None
    if audio.ndim != 1 or audio.dtype != np.float32:
        raise ShardFormatError(f"sample {key}: audio must be float32 (T,), got {audio.dtype} {audio.shape}")
    if header.get("sample_rate") != spec.sample_rate or header.get("fps") != spec.fps:
        raise ShardFormatError(
            f"sample {key}: shards are at {header.get('sample_rate')} Hz / {header.get('fps')} fps, "
            f"training expects {spec.sample_rate} Hz / {spec.fps} fps"
        )
    if len(audio) < spec.clip_samples:
        raise ShardFormatError(
            f"sample {key}: {len(audio)} audio samples, shorter than one clip ({spec.clip_samples})"
        )
    slack = len(audio) - spec.clip_samples
    start = rng.randint(0, slack) if rng is not None else slack // 2
    num_video_frames = int(header["num_frames"])
    indices = clip_frame_indices(start + spec.clip_samples // 2, num_video_frames, spec)
    try:
        frames = [decode_jpeg(sample[frame_member(i)]) for i in indices]
    except KeyError as exc:
        raise ShardFormatError(f"sample {key}: missing frame {exc.args[0]!r}") from None
    return {
        "audio": np.ascontiguousarray(audio[start:start + spec.clip_samples]),
        "frames": augment_frames(frames, spec, rng),
        "class_index": int(header["class_index"]),
        "video_id": str(header["video_id"]),
        "key": key,
    }
