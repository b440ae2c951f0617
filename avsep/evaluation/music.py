"""The MUSIC protocol: mixtures of two solo test videos of different classes.

As in Sound of Pixels and the papers that compare with it, each test mixture is the sum of
two 65535-sample windows (about 6 s at 11025 Hz) of solo videos of different classes from the
test split, and every separated source is scored against its solo with SDR, SIR and SAR
(BSS-eval) and SI-SDR. Sources are mixed as in training, with gains off (`MixSources` in
eval mode: clipped to [-1, 1], divided by 2 and summed), and the references are the scaled
sources, so that the mixture is exactly their sum. The unprocessed mixture and the ideal
binary / ratio masks are scored on the same mixtures; scoring is the URMP protocol's
(`scoring.SegmentScorer`: same skip rule for silent windows, same batched metrics), and so
is the run (`runner.run_protocol`).

The mixtures come from a fixed list, `pairs.json` (format in docs/contracts.md): each entry
names video a, the offset of its window, video b and its offset. It is generated from the
test split and a seed with SHA-256-derived draws (no library random generator, so the same
test split and seed give the same file on every machine and version), written next to the
results, and its SHA-1 is recorded in results.json; `pairs=` reuses a published list.
Window offsets count samples at 11025 Hz from the start of the video, so a list does not
depend on how preparation cut videos into chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from avsep.classes import MUSIC21_CLASSES
from avsep.evaluation.reader import UrmpSegment
from avsep.evaluation.report import atomic_write, write_results
from avsep.evaluation.runner import EvaluationProtocol, EvaluationResult, RunOptions, run_protocol
from avsep.faults import UsageError
from avsep.geometry import CLIP_SAMPLES, SAMPLE_RATE, ClipSpec, augment_frames, clip_frame_indices
from avsep.mixing import MixSources
from avsep.shard_format import (
    AUDIO,
    HEADER,
    SOLOS_FIELDS,
    Members,
    ShardFormatError,
    check_sample_rate,
    decode_jpeg,
    frame_member,
    header_count,
    index_samples,
    load_npy,
    parse_header,
    read_member,
)
from avsep.sources import DEFAULT_POLICY, ReadPolicy

PAIRS_FORMAT = "avsep-music-pairs/1"
PAIRS_NAME = "pairs.json"
PROTOCOL = "music-solo-pairs"
DEFAULT_MIXTURES = 256


@dataclass(frozen=True)
class Chunk:
    """One prepared sample of a solo test video (from its tar headers and json header).

    Attributes:
        shard, key, members: where it is (as `reader.SegmentEntry`, for `read_member`).
        video_id, class_name: what it shows.
        first: its first audio sample, counted from the start of the video (11025 Hz).
        num_samples, num_frames: its audio samples and stored frames (8 fps).
    """

    shard: Path
    key: str
    members: Members
    video_id: str
    class_name: str
    first: int
    num_samples: int
    num_frames: int

    def holds(self, offset: int, window: int) -> bool:
        return self.first <= offset and offset + window <= self.first + self.num_samples


@dataclass(frozen=True)
class Window:
    """One source of a mixture: `window` samples of `video_id` from `offset` (samples)."""

    video_id: str
    class_name: str
    offset: int


def index_music_shards(files: Sequence[Path], sample_rate: int = SAMPLE_RATE) -> list[Chunk]:
    """The chunks of MUSIC test shards, sorted by video id, then position in the video.

    Args:
        sample_rate: the rate the caller works at (the model's); every chunk must be at it.

    Raises:
        ShardFormatError: a sample is not a MUSIC solo sample (no audio.npy, no json class),
            or its audio is at another rate (the message names both).
    """
    chunks = []
    for shard in files:
        fd = os.open(shard, os.O_RDONLY)
        try:
            for key, members in index_samples(shard).items():
                chunks.append(_chunk(fd, Chunk(Path(shard), key, members, "", "", 0, 0, 0),
                                     sample_rate))
        finally:
            os.close(fd)
    return sorted(chunks, key=lambda c: (c.video_id, c.first))


def _chunk(fd: int, probe: Chunk, sample_rate: int) -> Chunk:
    """The chunk `probe` locates, with what its json header says."""
    where = f"{probe.shard}: sample {probe.key!r}"
    if AUDIO not in probe.members:
        raise ShardFormatError(f"{where} has no {AUDIO}: not a MUSIC (Solos-format) shard")
    header = parse_header(read_member(fd, probe, HEADER), where, ("class", *SOLOS_FIELDS))
    if "classes" in header:
        raise ShardFormatError(f"{where} is not a solo sample")
    rate = check_sample_rate(header, sample_rate, where)
    return Chunk(probe.shard, probe.key, probe.members, str(header["video_id"]),
                 str(header["class"]), round(float(header["start_s"]) * rate),
                 header_count(header, "num_samples", where),
                 header_count(header, "num_frames", where))


def _draw(seed: int, number: int, what: str, count: int) -> int:
    """A uniform integer in [0, count) that depends only on (seed, number, what)."""
    digest = hashlib.sha256(f"{seed}:{number}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def make_pairs(chunks: Sequence[Chunk], count: int, seed: int = 0,
               window: int = CLIP_SAMPLES) -> dict:
    """The pairs.json content: `count` mixtures of two test videos of different classes.

    Mixture i draws class a uniformly among the classes with a usable video, class b among
    the others, a video of each class, one of its chunks holding a whole window, and the
    window's offset inside that chunk; every draw comes from `_draw(seed, i, ...)`.

    Raises:
        ValueError: fewer than two classes have a video with a whole window.
    """
    if count < 1:
        raise UsageError(f"the number of mixtures must be at least 1, got {count}")
    usable: dict[str, dict[str, list[Chunk]]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.video_id, c.first)):  # input order is moot
        if chunk.num_samples >= window:
            usable.setdefault(chunk.class_name, {}).setdefault(chunk.video_id, []).append(chunk)
    classes = sorted(usable)
    if len(classes) < 2:
        raise UsageError(f"the test split has usable videos (at least {window} samples) of "
                         f"{len(classes)} class(es) ({', '.join(classes) or 'none'}); mixtures "
                         "need two different classes")

    def pick(number: int, side: str, class_name: str) -> dict:
        videos = sorted(usable[class_name])
        video = videos[_draw(seed, number, f"video_{side}", len(videos))]
        options = usable[class_name][video]
        chunk = options[_draw(seed, number, f"chunk_{side}", len(options))]
        offset = chunk.first + _draw(seed, number, f"offset_{side}",
                                     chunk.num_samples - window + 1)
        return {"video_id": video, "class": class_name, "offset": offset}

    pairs = []
    for number in range(count):
        class_a = classes[_draw(seed, number, "class_a", len(classes))]
        others = [c for c in classes if c != class_a]
        class_b = others[_draw(seed, number, "class_b", len(others))]
        pairs.append({"a": pick(number, "a", class_a), "b": pick(number, "b", class_b)})
    videos = {c.video_id for c in chunks}
    return {"format": PAIRS_FORMAT, "seed": seed, "window_samples": window,
            "sample_rate": SAMPLE_RATE, "test_videos": len(videos), "pairs": pairs}


def pairs_text(pairs: dict) -> str:
    """The exact text of a pairs.json (sorted keys, one space indent, final newline)."""
    return json.dumps(pairs, indent=1, sort_keys=True) + "\n"


def load_pairs(path: str | os.PathLike) -> tuple[dict, str]:
    """A pairs.json and the SHA-1 of its bytes; a file of another format is an error."""
    data = Path(path).read_bytes()
    try:
        pairs = json.loads(data)
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
    if not isinstance(pairs, dict) or pairs.get("format") != PAIRS_FORMAT:
        raise UsageError(f"{path}: not a MUSIC pair list (expected \"format\": "
                         f"\"{PAIRS_FORMAT}\")")
    if int(pairs.get("sample_rate", 0)) != SAMPLE_RATE:
        raise UsageError(f"{path}: offsets at {pairs.get('sample_rate')} Hz; avsep's shards are "
                         f"at {SAMPLE_RATE} Hz")
    for number, pair in enumerate(pairs.get("pairs") or []):
        for side in ("a", "b"):
            source = pair.get(side) if isinstance(pair, dict) else None
            if not isinstance(source, dict) or not {"video_id", "class", "offset"} <= set(source):
                raise UsageError(f"{path}: pair {number} lacks {side}.video_id/class/offset")
    if not pairs.get("pairs"):
        raise UsageError(f"{path}: the list holds no pairs")
    return pairs, hashlib.sha1(data).hexdigest()


@dataclass(frozen=True)
class MixtureEntry:
    """One mixture to read: its number and the chunk and offset of each source."""

    number: int
    sources: tuple[tuple[Chunk, int], ...]


def locate(pairs: dict, chunks: Sequence[Chunk]) -> list[MixtureEntry]:
    """The chunk holding each window of the list; a window no test chunk holds is an error
    (a list made from another test split, or shards prepared differently)."""
    window = int(pairs["window_samples"])
    by_video: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_video.setdefault(chunk.video_id, []).append(chunk)
    entries = []
    for number, pair in enumerate(pairs["pairs"]):
        sources = []
        for side in ("a", "b"):
            source = pair[side]
            found = [c for c in by_video.get(str(source["video_id"]), [])
                     if c.holds(int(source["offset"]), window)]
            if not found:
                where = ("is not in the test shards" if source["video_id"] not in by_video
                         else f"holds no {window} samples from offset {source['offset']}")
                raise UsageError(f"pair {number}: video {source['video_id']} {where} "
                                 "(was the pair list made from another test split?)")
            if found[0].class_name != source["class"]:
                raise UsageError(f"pair {number}: video {source['video_id']} is "
                                 f"{found[0].class_name} in the shards, {source['class']} in "
                                 "the pair list")
            sources.append((found[0], int(source["offset"])))
        entries.append(MixtureEntry(number, tuple(sources)))
    return entries


def read_window(chunk: Chunk, offset: int, window: int, spec: ClipSpec | None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Audio float32 (window,) from `offset` and, with `spec`, the frames (3, F, S, S) around
    the window's centre (evaluation transform: resize, centre crop)."""
    fd = os.open(chunk.shard, os.O_RDONLY)
    try:
        audio = load_npy(read_member(fd, chunk, AUDIO))
        start = offset - chunk.first
        if audio.ndim != 1 or len(audio) < start + window:
            raise ShardFormatError(f"{chunk.shard}: sample {chunk.key!r}: audio {audio.shape} "
                                   f"is shorter than its header says")
        frames = None
        if spec is not None:
            indices = clip_frame_indices(start + window // 2, chunk.num_frames, spec)
            images = [decode_jpeg(read_member(fd, chunk, frame_member(i))) for i in indices]
            frames = augment_frames(images, spec, rng=None)
    finally:
        os.close(fd)
    return np.ascontiguousarray(audio[start:start + window], dtype=np.float32), frames


def mixed_segment(key: str, number: int, names: Sequence[str], audio: Sequence[np.ndarray],
                  frames: Sequence[np.ndarray] | None, start_s: float,
                  mixer: MixSources) -> UrmpSegment:
    """Solo sources mixed as in training, as the URMP scorer takes a segment: the mix, the
    scaled sources as stems and each source's frames. 'piece' names the class pair.

    Args:
        audio: one (window,) float32 array per source.
        frames: one (3, F, S, S) uint8 array per source, or None (class-conditioned models).
    """
    with torch.no_grad():
        mix, scaled = mixer(torch.from_numpy(np.stack(audio))[None])
    return UrmpSegment(
        key=key, piece=" + ".join(sorted(names)), segment=number, start_s=start_s,
        instruments=list(names), valid_samples=len(audio[0]), mix=mix[0].numpy(),
        stems=scaled[0].numpy(), frames=np.stack(frames) if frames is not None else None)


def read_mixture(entry: MixtureEntry, spec: ClipSpec | None, window: int,
                 mixer: MixSources) -> UrmpSegment:
    """One mixture of the pair list as the URMP scorer takes it (`mixed_segment`), keyed
    `mix<number>`."""
    audio, frames = zip(*(read_window(c, o, window, spec) for c, o in entry.sources))
    return mixed_segment(
        f"mix{entry.number:05d}", entry.number, [chunk.class_name for chunk, _ in entry.sources],
        audio, frames if spec is not None else None, entry.sources[0][1] / SAMPLE_RATE, mixer)


class MusicProtocol(EvaluationProtocol):
    """The mixtures of a pair list (given, or drawn from the test split), in list order.

    Args:
        pairs_file: a pairs.json to reuse; None: `mixtures` pairs drawn with `seed`.
        mixing: how sources are mixed ('sop' or 'peak').
    """

    name = PROTOCOL
    classes = MUSIC21_CLASSES
    split = "test"

    def __init__(self, pairs_file: str | os.PathLike | None, mixtures: int, seed: int,
                 mixing: Literal["sop", "peak"]) -> None:
        self.pairs_file, self.mixtures, self.seed = pairs_file, mixtures, seed
        self.mixing = mixing
        self.mixer = MixSources(mixing).eval()
        self.pairs: dict = {}
        self.sha1 = ""
        self.count = 0

    def items(self, files: list[Path], sample_rate: int) -> Sequence[MixtureEntry]:
        chunks = index_music_shards(files, sample_rate)
        if self.pairs_file is not None:
            self.pairs, self.sha1 = load_pairs(self.pairs_file)
        else:
            self.pairs = make_pairs(chunks, self.mixtures, self.seed)
            self.sha1 = hashlib.sha1(pairs_text(self.pairs).encode()).hexdigest()
        entries = locate(self.pairs, chunks)
        self.count = len(entries)
        return entries

    def reader(self, mine: Sequence[Any], frames: ClipSpec | None, sample_rate: int,
               workers: int) -> Callable[[MixtureEntry], UrmpSegment]:
        return partial(read_mixture, spec=frames, window=int(self.pairs["window_samples"]),
                       mixer=self.mixer)

    def info(self) -> dict[str, Any]:
        source = str(self.pairs_file) if self.pairs_file is not None else "generated"
        return {"pairs": {"sha1": self.sha1, "seed": self.pairs.get("seed"),
                          "mixtures": self.count,
                          "window_samples": int(self.pairs["window_samples"]),
                          "file": PAIRS_NAME, "source": source},
                "mixing": self.mixing}

    def write(self, result: EvaluationResult, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        text = (Path(self.pairs_file).read_text() if self.pairs_file is not None
                else pairs_text(self.pairs))
        atomic_write(out / PAIRS_NAME, text)
        write_results(result, out)


def evaluate_music(
    separator,
    shard_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    pairs_file: str | os.PathLike | None = None,
    mixtures: int = DEFAULT_MIXTURES,
    seed: int = 0,
    mixing: Literal["sop", "peak"] = "sop",
    batch_size: int = 4,
    device: str | torch.device | None = None,
    clip_spec: ClipSpec | None = None,
    workers: int = 2,
    progress: bool = True,
    info: dict[str, Any] | None = None,
    policy: ReadPolicy = DEFAULT_POLICY,
) -> EvaluationResult:
    """Evaluate `separator` on mixtures of two MUSIC solo test videos (module docstring).

    Args:
        shard_dir: prepared MUSIC shards (`avsep prepare music --out`); their test/ split is
            read (a folder or a URL prefix, shard list or brace pattern).
        out_dir: if given, rank 0 writes pairs.json, results.json, segments.csv, results.md.
        pairs_file: a pairs.json to reuse; otherwise `mixtures` pairs are drawn with `seed`.
        mixing: how sources are mixed ('sop' or 'peak', the checkpoint's `data.mixing`).
        Other arguments as `evaluate_urmp`.

    Returns:
        the merged result; `info` holds the pair list's seed, count and SHA-1.
    """
    options = RunOptions(batch_size, device, clip_spec, workers, progress, info, policy)
    protocol = MusicProtocol(pairs_file, mixtures, seed, mixing)
    return run_protocol(separator, protocol, shard_dir, out_dir, options)
