"""The MUSIC protocol: mixtures of two solo test videos of different classes.

As in Sound of Pixels and the papers that compare with it, each test mixture is the sum of
two 65535-sample windows (about 6 s at 11025 Hz) of solo videos of different classes from the
test split, and every separated source is scored against its solo with SDR, SIR and SAR
(BSS-eval) and SI-SDR. Sources are mixed as in training, with gains off (`MixSources` in
eval mode: clipped to [-1, 1], divided by 2 and summed), and the references are the scaled
sources, so that the mixture is exactly their sum. The unprocessed mixture and the ideal
binary / ratio masks are scored on the same mixtures; scoring is the URMP protocol's
(`urmp.SegmentScorer`: same skip rule for silent windows, same batched metrics).

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
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from avsep import distributed
from avsep.classes import MUSIC21_CLASSES
from avsep.devices import resolve_device
from avsep.evaluation.reader import UrmpSegment, local_shards, read_member, tar_members
from avsep.evaluation.report import atomic_write, write_results
from avsep.evaluation.urmp import (
    SOP_FRAMES,
    EvaluationResult,
    SegmentScorer,
    _merge_ranks,
    _model_info,
    _parameter_device,
    _score_in_batches,
    _Stopwatch,
)
from avsep.faults import UsageError
from avsep.geometry import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    ClipSpec,
    ShardFormatError,
    augment_frames,
    clip_frame_indices,
    decode_jpeg,
    load_npy,
)
from avsep.mixing import MixSources
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
    members: dict[str, tuple[int, int]]
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


def index_music_shards(files: Sequence[Path]) -> list[Chunk]:
    """The chunks of MUSIC test shards, sorted by video id, then position in the video.

    Raises:
        ShardFormatError: a sample is not a MUSIC solo sample (no audio.npy, no json class).
    """
    chunks = []
    for shard in files:
        fd = os.open(shard, os.O_RDONLY)
        try:
            for key, members in tar_members(shard).items():
                probe = Chunk(shard, key, members, "", "", 0, 0, 0)
                if "audio.npy" not in members:
                    raise ShardFormatError(f"{shard}: sample {key!r} has no audio.npy: not a "
                                           "MUSIC (Solos-format) shard")
                header = json.loads(read_member(fd, probe, "json"))
                if "class" not in header or "classes" in header:
                    raise ShardFormatError(f"{shard}: sample {key!r} is not a solo sample")
                rate = int(header["sample_rate"])
                if rate != SAMPLE_RATE:
                    raise ShardFormatError(f"{shard}: sample {key!r} is at {rate} Hz, the MUSIC "
                                           f"protocol at {SAMPLE_RATE} Hz")
                chunks.append(Chunk(
                    shard, key, members, str(header["video_id"]), str(header["class"]),
                    round(float(header["start_s"]) * rate), int(header["num_samples"]),
                    int(header["num_frames"])))
        finally:
            os.close(fd)
    return sorted(chunks, key=lambda c: (c.video_id, c.first))


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
        audio = load_npy(read_member(fd, chunk, "audio.npy"))
        start = offset - chunk.first
        if audio.ndim != 1 or len(audio) < start + window:
            raise ShardFormatError(f"{chunk.shard}: sample {chunk.key!r}: audio {audio.shape} "
                                   f"is shorter than its header says")
        frames = None
        if spec is not None:
            indices = clip_frame_indices(start + window // 2, chunk.num_frames, spec)
            images = [decode_jpeg(read_member(fd, chunk, f"{i:03d}.jpg")) for i in indices]
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


@torch.no_grad()
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
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    device = resolve_device(device if device is not None else _parameter_device(separator))
    separator = separator.to(device).eval()
    rank, world_size = distributed.rank_and_world()
    watch = _Stopwatch(device)
    scorer = SegmentScorer(separator, device, watch, classes=MUSIC21_CLASSES)
    spec = clip_spec or SOP_FRAMES
    frames_spec = spec if scorer.condition_kind == "frames" else None
    mixer = MixSources(mixing).eval()
    with local_shards(shard_dir, policy, progress=progress and rank == 0, split="test") as files:
        chunks = index_music_shards(files)
        if pairs_file is not None:
            pairs, sha1 = load_pairs(pairs_file)
        else:
            pairs = make_pairs(chunks, mixtures, seed)
            sha1 = hashlib.sha1(pairs_text(pairs).encode()).hexdigest()
        window = int(pairs["window_samples"])
        entries = locate(pairs, chunks)
        mine = [(e.number, e) for e in entries if e.number % world_size == rank]
        read = partial(read_mixture, spec=frames_spec, window=window, mixer=mixer)
        scored, skipped = _score_in_batches(scorer, mine, read, watch, batch_size=batch_size,
                                            workers=workers, progress=progress and rank == 0)
    local = (scored, dict(skipped), dict(watch.seconds), time.perf_counter() - started)
    result = _merge_ranks(distributed.gather_objects(local), segments=len(entries), info={
        "model": _model_info(separator),
        "shards": str(shard_dir),
        "pairs": {"sha1": sha1, "seed": pairs.get("seed"), "mixtures": len(entries),
                  "window_samples": window, "file": PAIRS_NAME,
                  "source": str(pairs_file) if pairs_file is not None else "generated"},
        "mixing": mixing,
        "frames": {k: v for k, v in asdict(spec).items()
                   if k in ("image_size", "num_frames", "frame_stride")}
        if frames_spec is not None else None,
        "device": str(device),
        "world_size": world_size,
        "batch_size": batch_size,
        **(info or {}),
    }, protocol=PROTOCOL)
    if out_dir is not None and rank == 0:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        text = (Path(pairs_file).read_text() if pairs_file is not None else pairs_text(pairs))
        atomic_write(out / PAIRS_NAME, text)
        write_results(result, out)
    return result
