"""The numbers that define a prepared shard set, in one frozen dataclass.

Every number that changes what ends up in a shard lives here. A unit's done-marker stores
a fingerprint of these settings, so a rerun with different settings redoes that unit
instead of mixing old and new samples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from avsep.geometry import CLIP_SAMPLES, FRAME_RATE, SAMPLE_RATE
from avsep.media import STORED_SHORT_SIDE

# The shard geometry is the library's (one definition, avsep.geometry).
__all__ = ["CLIP_SAMPLES", "FRAME_RATE", "SAMPLE_RATE", "PrepareSettings", "parse_size"]

SOLOS_TIMESTAMP_FPS = 25
"""Solos publishes its playing spans as frame numbers counted at 25 fps."""


@dataclass(frozen=True)
class PrepareSettings:
    """What a prepared sample looks like and how samples are grouped into shards.

    Attributes:
        sample_rate: audio rate of the shards (Hz).
        fps: frames stored per second.
        short_side: frames are resized so that their shorter side has this many pixels.
        jpeg_quality: JPEG quality (0-100) of the stored frames.
        clip_samples: length of one training clip / URMP segment in samples.
        max_chunk_s: Solos playing spans are cut into chunks of at most this many seconds
            (equal lengths per span); must be at least two clips so that no chunk of a
            span longer than one clip ends up shorter than a clip.
        min_tail_s: a URMP piece's last partial segment is kept (zero-padded) only if it
            holds at least this many seconds of audio; otherwise it is dropped and counted.
        silence_dbfs: an audio track whose peak stays below this level is reported as silent.
        val_fraction: fraction of Solos videos (by hash of the video id) in the val split.
        shard_max_bytes: a unit's shard is closed and the next one opened past this size.
        shard_max_samples: ... or past this many samples.
    """

    sample_rate: int = SAMPLE_RATE
    fps: int = FRAME_RATE
    short_side: int = STORED_SHORT_SIDE
    jpeg_quality: int = 90
    clip_samples: int = CLIP_SAMPLES
    max_chunk_s: float = 12.0
    min_tail_s: float = 1.0
    silence_dbfs: float = -80.0
    val_fraction: float = 0.1
    shard_max_bytes: int = 512 * 1024 * 1024
    shard_max_samples: int = 100_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_chunk_s * self.sample_rate < 2 * self.clip_samples:
            raise ValueError(
                f"max_chunk_s={self.max_chunk_s} is shorter than two clips "
                f"({2 * self.clip_samples / self.sample_rate:.2f} s): spans could be cut into "
                "chunks shorter than one clip"
            )
        if self.shard_max_bytes <= 0 or self.shard_max_samples <= 0:
            raise ValueError("shard limits must be positive")

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_size(text: str) -> int:
    """Bytes from a size such as '512M', '1.5G', '200k' or '1000000' (binary units).

    >>> parse_size("512M"), parse_size("2k")
    (536870912, 2048)
    """
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    cleaned = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = 1
    if cleaned and cleaned[-1] in units:
        factor = units[cleaned[-1]]
        cleaned = cleaned[:-1]
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (examples: 512M, 1G, 200k)") from None
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return int(value * factor)
