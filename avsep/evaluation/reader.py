"""Reading URMP evaluation shards: an index of segments, then one segment at a time.

URMP shards (docs/contracts.md) hold one webdataset sample per (piece, 65535-sample segment):
`mix.npy` (T,), `stems.npy` (P, T), frames `p<k>.<i:03d>.jpg` per player k (0 = leftmost,
the player of `AuSep_1`) at 8 fps, and a `json` header (names: `avsep.shard_format`). The
index is built from the tar headers only (no data is read: `shard_format.index_samples`), so
ranks and piece filters can pick their segments before anything is decoded; each segment is
then read with positioned reads, which lets several threads decode from the same file.

Shards elsewhere (a URL prefix, a shard list, a brace pattern: `avsep.sources`) are copied
once into a temporary folder (under $TMPDIR; removed afterwards) by `local_shards`, because
positioned reads need a file; a shard that cannot be copied is an error naming its URL.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avsep.faults import InputError, UsageError
from avsep.geometry import ClipSpec, augment_frames, clip_frame_indices
from avsep.shard_format import (
    AUDIO,
    HEADER,
    MIX,
    STEMS,
    URMP_FIELDS,
    ShardFormatError,
    check_sample_rate,
    decode_jpeg,
    index_samples,
    load_npy,
    parse_header,
    parse_player_frame,
    parse_urmp_key,
    player_frame_member,
    read_member,
)
from avsep.sources import DEFAULT_POLICY, ReadPolicy, copy_shard, dataset_shards, is_listing, is_url


class NoUrmpShardsError(InputError, FileNotFoundError):
    """The shard folder is missing or holds no URMP shards."""


@dataclass(frozen=True)
class SegmentEntry:
    """Where one segment's members sit in its shard (from the tar headers).

    Attributes:
        shard: the tar file.
        key: the sample key, `<piece>__seg<idx:04d>`.
        piece: the piece part of the key (dots of the folder name replaced by dashes).
        segment: the segment index in the key.
        members: member extension (`json`, `mix.npy`, `p0.000.jpg`, ...) -> (offset, size)
            of its data in the file.
    """

    shard: Path
    key: str
    piece: str
    segment: int
    members: dict[str, tuple[int, int]]


@dataclass
class UrmpSegment:
    """One decoded segment.

    Attributes:
        key, piece, segment, start_s: identity (`piece` is the header's folder name).
        instruments: URMP codes in player order (P,).
        valid_samples: real audio samples; the rest of the segment is zero padding.
        mix: float32 (T,) the real mixture (AuMix).
        stems: float32 (P, T) the players' separate recordings (AuSep).
        frames: uint8 (P, 3, num_frames, S, S) the players' evaluation crops, or None when
            frames were not requested (class-conditioned models).
    """

    key: str
    piece: str
    segment: int
    start_s: float
    instruments: list[str]
    valid_samples: int
    mix: np.ndarray
    stems: np.ndarray
    frames: np.ndarray | None

    @property
    def players(self) -> int:
        return len(self.instruments)


def find_shards(shard_dir: str | os.PathLike) -> list[Path]:
    """The `*.tar` files directly in `shard_dir`, sorted; clear errors when there are none."""
    shard_dir = Path(shard_dir)
    if not shard_dir.is_dir():
        raise NoUrmpShardsError(
            f"{shard_dir}: no such shard folder (make URMP shards with "
            "`avsep prepare urmp --src RAW --out SHARDS`)"
        )
    shards = sorted(p for p in shard_dir.glob("*.tar") if p.is_file())
    if not shards:
        hint = ""
        if (shard_dir / "train").is_dir() or (shard_dir / "val").is_dir():
            hint = " (it looks like a Solos shard folder)"
        nested = sorted({p.parent for p in shard_dir.glob("*/*.tar")})
        if len(nested) == 1:
            hint += f" (did you mean {nested[0]}?)"
        raise NoUrmpShardsError(
            f"{shard_dir}: no URMP shards (*.tar) in this folder{hint}; make them with "
            "`avsep prepare urmp --src RAW --out SHARDS`"
        )
    return shards


def urmp_shard_urls(location: str | os.PathLike, policy: ReadPolicy = DEFAULT_POLICY) -> list[str]:
    """The URMP shards of a local folder (`find_shards`) or of a URL prefix, shard list or
    brace pattern (`avsep.sources.dataset_shards`), sorted.

    Raises:
        NoUrmpShardsError: there are none. ShardReadError: a URL's index is unreadable.
    """
    location = str(location)
    if not (is_url(location) or is_listing(location)):
        return [str(path) for path in find_shards(location)]
    try:
        return dataset_shards(location, None, policy)
    except FileNotFoundError as exc:
        raise NoUrmpShardsError(f"{exc} (make URMP shards with `avsep prepare urmp`)") from None


@contextmanager
def local_shards(location: str | os.PathLike, policy: ReadPolicy = DEFAULT_POLICY,
                 progress: bool = False, split: str | None = None) -> Iterator[list[Path]]:
    """Local files of the URMP shards at `location` (or of its `split`, e.g. MUSIC's
    'test'): a folder's own files, or remote shards copied into a temporary folder that is
    removed when the block ends.

    Raises:
        NoUrmpShardsError: there are none. ShardReadError: a shard could not be copied (the
            message names its URL).
    """
    urls = (urmp_shard_urls(location, policy) if split is None
            else dataset_shards(str(location), split, policy))
    if not any(is_url(url) for url in urls):  # a folder, or a list of local files
        yield [Path(url) for url in urls]
        return
    with tempfile.TemporaryDirectory(prefix="avsep-urmp-") as folder:
        files = []
        for number, url in enumerate(tqdm(urls, desc="copy shards", unit="shard",
                                          disable=not progress, dynamic_ncols=True)):
            if not is_url(url):
                files.append(Path(url))
                continue
            # Numbered names keep the order and stay unique across folders of the URLs;
            # the URL's own name says which shard a message is about.
            tail = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1])[-80:]
            name = f"{number:06d}-{tail}"
            files.append(copy_shard(url, Path(folder) / name, policy))
        yield files


def index_shard(shard: Path) -> list[SegmentEntry]:
    """Segments of one shard in file order, from its tar headers."""
    entries = []
    for key, members in index_samples(shard).items():
        if MIX not in members or STEMS not in members:
            kind = " (a Solos sample)" if AUDIO in members else ""
            raise ShardFormatError(
                f"{shard}: sample {key!r}{kind} has no {MIX}/{STEMS}: not a URMP shard"
            )
        parsed = parse_urmp_key(key)
        if parsed is None:
            raise ShardFormatError(f"{shard}: sample key {key!r} is not <piece>__seg<index>")
        entries.append(SegmentEntry(shard, key, *parsed, members))
    return entries


def index_urmp_shards(shards: str | os.PathLike | Sequence[Path]) -> list[SegmentEntry]:
    """All segments of the shard files `shards` (or of all shards in a folder), ordered by
    piece name, then segment."""
    files = find_shards(shards) if isinstance(shards, (str, os.PathLike)) else shards
    entries = [entry for shard in files for entry in index_shard(shard)]
    seen: dict[str, SegmentEntry] = {}
    for entry in entries:
        if entry.key in seen:
            raise ShardFormatError(
                f"sample {entry.key!r} appears twice: in {seen[entry.key].shard} and "
                f"{entry.shard}"
            )
        seen[entry.key] = entry
    return sorted(entries, key=lambda e: (e.piece, e.segment))


def select_pieces(entries: Sequence[SegmentEntry], limit_pieces: int | None = None,
                  pieces: Iterable[str] | None = None) -> list[SegmentEntry]:
    """Keep the segments of the named `pieces` and/or of the first `limit_pieces` pieces
    (in the order of `entries`: by name).

    Pieces are named by their folder name (`01_Jupiter_vn_vc`); dots in names may be given
    as dashes, as in the sample keys. Unknown names are an error listing the known ones.
    """
    order = list(dict.fromkeys(entry.piece for entry in entries))
    chosen = order
    if pieces is not None:
        wanted = [name.replace(".", "-") for name in pieces]
        unknown = [name for name in wanted if name not in order]
        if unknown:
            raise UsageError(
                f"unknown piece(s) {', '.join(unknown)} (in these shards: {', '.join(order)})"
            )
        chosen = [name for name in order if name in wanted]
    if limit_pieces is not None:
        if limit_pieces < 1:
            raise UsageError(f"limit_pieces must be at least 1, got {limit_pieces}")
        chosen = chosen[:limit_pieces]
    keep = set(chosen)
    return [entry for entry in entries if entry.piece in keep]


def player_frame_counts(entry: SegmentEntry) -> dict[int, int]:
    """Player index -> number of frames stored for that player (frames 0 .. n-1)."""
    found: dict[int, set[int]] = {}
    for ext in entry.members:
        frame = parse_player_frame(ext)
        if frame is not None:
            found.setdefault(frame[0], set()).add(frame[1])
    counts = {}
    for player, indices in found.items():
        if indices != set(range(len(indices))):
            raise ShardFormatError(
                f"{entry.shard}: sample {entry.key!r}: frames of player {player} are not "
                "numbered 000 .. n-1 without gaps"
            )
        counts[player] = len(indices)
    return counts


def read_segment(entry: SegmentEntry, spec: ClipSpec | None, sample_rate: int) -> UrmpSegment:
    """Decode one segment; `spec` gives the frame geometry, or None to skip the frames.

    The frames of each player are the `spec.num_frames` frames `spec.frame_stride` apart
    around the centre of the segment's real audio (the centre of `valid_samples`, so that the
    zero-padded last segment looks at frames of the music it holds), with the evaluation
    transform (short side to `spec.image_size`, centre crop).

    Raises:
        ShardFormatError: a member is missing or does not match the format; the message
            names the shard file and the sample.
    """
    where = f"{entry.shard}: sample {entry.key!r}"
    fd = os.open(entry.shard, os.O_RDONLY)
    try:
        header = parse_header(read_member(fd, entry, HEADER), where, URMP_FIELDS)
        check_sample_rate(header, sample_rate, where)
        mix = _array(fd, entry, MIX)
        stems = _array(fd, entry, STEMS)
        instruments = [str(code) for code in header["instruments"]]
        players = len(instruments)
        if int(header["players"]) != players:
            raise ShardFormatError(
                f"{where}: json says {header['players']} players but lists "
                f"{players} instruments"
            )
        if mix.ndim != 1 or stems.shape != (players, mix.shape[0]):
            raise ShardFormatError(
                f"{where}: expected mix.npy (T,) and stems.npy ({players}, T), got "
                f"{mix.shape} and {stems.shape}"
            )
        valid = int(header["valid_samples"])
        if not 0 < valid <= mix.shape[0]:
            raise ShardFormatError(
                f"{where}: valid_samples {valid} is outside 1 .. {mix.shape[0]}"
            )
        frames = None
        if spec is not None:
            frames = _read_frames(fd, entry, header, players, valid, spec)
    finally:
        os.close(fd)
    return UrmpSegment(
        key=entry.key,
        piece=str(header.get("piece", entry.piece)),
        segment=int(header.get("segment", entry.segment)),
        start_s=float(header["start_s"]),
        instruments=instruments,
        valid_samples=valid,
        mix=mix.astype(np.float32, copy=False),
        stems=stems.astype(np.float32, copy=False),
        frames=frames,
    )


def _array(fd: int, entry: SegmentEntry, ext: str) -> np.ndarray:
    """The array of member `ext`; an unreadable one is an error naming the sample."""
    data = read_member(fd, entry, ext)
    try:
        return load_npy(data)
    except ShardFormatError as exc:
        raise ShardFormatError(f"{entry.shard}: sample {entry.key!r}, {ext}: {exc}") from None


def _read_frames(fd: int, entry: SegmentEntry, header: dict, players: int, valid: int,
                 spec: ClipSpec) -> np.ndarray:
    """(P, 3, spec.num_frames, S, S) uint8 crops of every player."""
    counts = player_frame_counts(entry)
    if sorted(counts) != list(range(players)):
        raise ShardFormatError(
            f"{entry.shard}: sample {entry.key!r}: expected frames of players 0 .. "
            f"{players - 1} (p<k>.<i>.jpg), found players {sorted(counts)}"
        )
    spec = replace(spec, fps=int(header["fps"]), sample_rate=int(header["sample_rate"]))
    crops = []
    for player in range(players):
        indices = clip_frame_indices(valid // 2, counts[player], spec)
        images = []
        for i in indices:
            ext = player_frame_member(player, i)
            try:
                images.append(decode_jpeg(read_member(fd, entry, ext)))
            except ShardFormatError as exc:
                raise ShardFormatError(f"{entry.shard}: sample {entry.key!r}, {ext}: {exc}"
                                       ) from None
        crops.append(augment_frames(images, spec, rng=None))
    return np.stack(crops)
