"""The prepared shard format in one place: member names, sample keys, headers, decoding.

What `avsep prepare` writes (`data_prep.prepare.solos`, `data_prep.prepare.urmp`) and what
every reader takes (training: `avsep.data.clips`; evaluation: `avsep.evaluation.reader`,
`music`, `center_clip`; `avsep inspect`: `data_prep.inspect`) are named here, so that the
writer and the readers cannot drift apart. docs/contracts.md states the format, docs/shards.md
describes it for users.

A shard is an uncompressed tar of webdataset samples: every member is `<key>.<ext>`, and the
key holds no dot (webdataset splits member names at the first one).

- Solos-format samples (Solos, MUSIC solos and duets): `AUDIO` float32 (T,), frames
  `frame_member(i)` (JPEG, frame i at `start_s + i / fps`) and the `HEADER` json.
- URMP samples: `MIX` float32 (T,), `STEMS` float32 (P, T), frames
  `player_frame_member(k, i)` of every player k (0 = leftmost) and the `HEADER` json.

Local shard files are read by position: `index_samples` lists where every member's data lies
(from the tar headers alone, `avsep.tarstream.tar_index`) and `read_member` reads one, so a
reader decodes only the members it needs, from several threads at once.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from avsep.faults import InputError
from avsep.tarstream import tar_index

HEADER = "json"
"""The header member: a JSON object (`SOLOS_FIELDS`, `URMP_FIELDS` and more)."""
AUDIO = "audio.npy"
"""A Solos-format sample's audio: float32 mono (T,) at the header's `sample_rate`."""
MIX = "mix.npy"
"""A URMP segment's real mixture (AuMix): float32 (T,), zero-padded past `valid_samples`."""
STEMS = "stems.npy"
"""A URMP segment's separate recordings (AuSep): float32 (P, T), in player order."""

SOLOS_FIELDS = ("video_id", "start_s", "sample_rate", "fps", "num_frames", "num_samples")
"""Header fields of every Solos-format sample (solos also have `class` and `class_index`,
MUSIC duets `class`, `classes` and `class_indices`)."""
URMP_FIELDS = ("instruments", "players", "valid_samples", "start_s", "sample_rate", "fps")
"""Header fields of every URMP segment that evaluation reads."""

_PLAYER_FRAME = re.compile(r"^p(\d+)\.(\d+)\.jpg$")
_URMP_KEY = re.compile(r"^(?P<piece>.+)__seg(?P<segment>\d+)$")

Members = dict[str, tuple[int, int]]
"""Member extension -> (offset, size) of its data in the shard file."""


class ShardFormatError(InputError, ValueError):
    """A shard sample does not match the documented format."""


class SampleLocation(Protocol):
    """Where a sample's members lie in a local shard file (what `read_member` takes)."""

    @property
    def shard(self) -> Path: ...  # the file, named in messages

    @property
    def key(self) -> str: ...

    @property
    def members(self) -> Members: ...  # from `index_samples`


def key_part(text: str) -> str:
    """`text` as a part of a sample key: dots (which would split member names) as dashes."""
    return text.replace(".", "-")


def solos_key(class_name: str, video_id: str, span: int, chunk: int) -> str:
    """The key of one chunk of a playing span: `<Class>__<id>__<span:03d>_<chunk:03d>`."""
    return f"{class_name}__{key_part(video_id)}__{span:03d}_{chunk:03d}"


def urmp_key(piece: str, segment: int) -> str:
    """The key of one segment of a URMP piece (its folder name): `<piece>__seg<idx:04d>`."""
    return f"{key_part(piece)}__seg{segment:04d}"


def parse_urmp_key(key: str) -> tuple[str, int] | None:
    """(piece part, segment index) of a URMP sample key, or None for another key."""
    match = _URMP_KEY.match(key)
    return (match["piece"], int(match["segment"])) if match else None


def frame_member(index: int) -> str:
    """The member of a Solos-format sample's frame `index`: `000.jpg`, `001.jpg`, ..."""
    return f"{index:03d}.jpg"


def player_frame_member(player: int, index: int) -> str:
    """The member of URMP player `player`'s frame `index`: `p<k>.<i:03d>.jpg`."""
    return f"p{player}.{index:03d}.jpg"


def parse_player_frame(ext: str) -> tuple[int, int] | None:
    """(player, frame index) of a URMP frame member's extension, or None for another."""
    match = _PLAYER_FRAME.match(ext)
    return (int(match[1]), int(match[2])) if match else None


def parse_header(data: bytes, where: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """A header member's bytes as a dict holding every `required` field.

    Args:
        where: names the sample in messages ('SHARD: sample KEY').

    Raises:
        ShardFormatError: not JSON, not a JSON object, or a field missing.
    """
    try:
        header = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ShardFormatError(f"{where}: its json member is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ShardFormatError(f"{where}: its json member is not an object")
    missing = [name for name in required if name not in header]
    if missing:
        raise ShardFormatError(f"{where}: its json header lacks {', '.join(missing)}")
    return header


def header_count(header: Mapping[str, Any], name: str, where: str) -> int:
    """The header's count `name` (`num_samples`, `num_frames`): a non-negative integer.

    Raises:
        ShardFormatError: absent, not an integer or negative.
    """
    value = header.get(name)
    if not isinstance(value, int) or value < 0:
        raise ShardFormatError(f"{where}: its json has no count {name!r} (got {value!r})")
    return value


def check_sample_rate(header: Mapping[str, Any], expected: int, where: str,
                      expects: str = "the model") -> int:
    """The header's `sample_rate`, which must be `expected` (what the caller works at).

    Args:
        where: names the shard or sample ('SHARD: sample KEY').
        expects: who wants `expected`, for the message ('the model', 'the config').

    Raises:
        ShardFormatError: another rate, or none; the message names both rates, e.g.
            "SHARD: sample 'k' has audio at 22050 Hz, the model expects 11025 Hz".
    """
    rate = header.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ShardFormatError(f"{where} has no sample rate in its header (got {rate!r}); "
                               f"{expects} expects {expected} Hz")
    if rate != expected:
        raise ShardFormatError(f"{where} has audio at {rate:g} Hz, {expects} expects "
                               f"{expected} Hz")
    return int(rate)


def load_npy(data: bytes) -> np.ndarray:
    """An `.npy` member's array (no pickled objects).

    Raises:
        ShardFormatError: the bytes are not a readable array.
    """
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ShardFormatError(f"not a readable .npy array ({exc})") from None


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> (H, W, 3) uint8 RGB."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise ShardFormatError("undecodable JPEG frame")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def split_member_name(name: str, shard: str | os.PathLike) -> tuple[str, str]:
    """(sample key, extension) of a member path, split as webdataset splits it.

    Raises:
        ShardFormatError: the name has no extension (names the shard).
    """
    key, dot, ext = name.rsplit("/", 1)[-1].partition(".")
    if not dot:
        raise ShardFormatError(f"{shard}: member {name!r} has no extension")
    return key, ext


def index_samples(shard: str | os.PathLike) -> dict[str, Members]:
    """{sample key: {member extension: (offset, size) of its data}} of one local shard file,
    in file order, from its tar headers alone.

    The hardened tar parser (`avsep.tarstream`) reads the headers: a shard cut short (also
    at a member boundary, which `tarfile` would take for a complete archive) or damaged is an
    error rather than a shard with fewer samples.

    Raises:
        ShardFormatError: not a readable, whole tar file, or a member name without an
            extension (the message names the shard).
    """
    grouped: dict[str, Members] = {}
    try:
        with open(shard, "rb") as stream:
            for entry in tar_index(stream):
                key, ext = split_member_name(entry.name, shard)
                grouped.setdefault(key, {})[ext] = (entry.offset, entry.size)
    except tarfile.ReadError as exc:
        raise ShardFormatError(f"{shard}: not a readable tar file ({exc})") from None
    return grouped


def read_member(fd: int, sample: SampleLocation, ext: str) -> bytes:
    """The bytes of member `ext` of a sample of an open shard file.

    Args:
        fd: the shard file, open for reading (`os.open`).
        sample: where the sample lies (`shard`, `key`, `members`).

    Raises:
        ShardFormatError: the sample has no such member, or the file ends inside it.
    """
    try:
        offset, size = sample.members[ext]
    except KeyError:
        raise ShardFormatError(f"{sample.shard}: sample {sample.key!r} has no member {ext!r}"
                               ) from None
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise ShardFormatError(f"{sample.shard}: member {sample.key}.{ext} is truncated")
    return data
