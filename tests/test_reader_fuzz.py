"""Every shard reader ends, on any bytes, with its samples or an error about the input.

Real prepared shards (the `tiny` stand-in) are damaged at seeded random places: bytes
flipped inside the members (JSON headers, .npy arrays, JPEG frames, so that the tar layer
still reads), runs of garbage and cuts. Each reader must finish within a time limit and
either give its result or raise an error about the input (`InputError`: a damaged shard, a
sample that does not match the format), never another exception.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from crafted import Expired, time_limit

from avsep.data.clips import sample_clip, sample_header
from avsep.evaluation.reader import index_urmp_shards, read_segment
from avsep.faults import InputError
from avsep.geometry import ClipSpec
from avsep.sources import ReadPolicy, shard_samples
from data_prep.inspect import read_metadata

SPEC = ClipSpec(image_size=32, resize_short_side=36)
CASES = 40  # damaged copies per shard
LIMIT_S = 5  # seconds a reader may take on one damaged shard


def _damaged(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    kind = rng.choice(("flip", "flip", "garbage", "cut"))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif kind == "garbage":
        start = rng.randrange(len(out))
        length = rng.randint(1, 4096)
        out[start:start + length] = bytes(rng.randrange(256) for _ in range(length))
    else:
        del out[rng.randrange(len(out)):]
    return bytes(out)


def _read_solos(path: Path) -> None:
    for sample in shard_samples(str(path), ReadPolicy(1, 0.0)):
        header = sample_header(sample)
        if header["num_samples"] >= SPEC.clip_samples:
            sample_clip(sample, SPEC, rng=None)


def _read_urmp(path: Path) -> None:
    for entry in index_urmp_shards([path]):
        read_segment(entry, SPEC, SPEC.sample_rate)


def _fuzz(shard: Path, tmp_path: Path, readers: list[Callable[[Path], object]], seed: int
          ) -> list[str]:
    rng = random.Random(seed)
    original = shard.read_bytes()
    for reader in readers:  # the undamaged shard reads
        reader(shard)
    problems, errors = [], 0
    for number in range(CASES):
        damaged = tmp_path / f"case{number:03d}.tar"
        damaged.write_bytes(_damaged(original, rng))
        for reader in readers:
            try:
                with time_limit(LIMIT_S):
                    reader(damaged)
            except InputError:
                errors += 1
            except Exception as exc:  # noqa: BLE001 - what the test is looking for
                problems.append(f"case {number} {reader.__name__}: "
                                f"{type(exc).__name__}: {exc}"[:300])
            except Expired as exc:
                problems.append(f"case {number} {reader.__name__}: {exc}")
    assert errors > 0, "no damaged case was noticed: the mutations missed the data"
    return problems


def test_damaged_solos_shards_end_with_their_samples_or_an_input_error(prepared_tiny, tmp_path):
    shard = min((Path(prepared_tiny["solos"]) / "train").glob("*.tar"))
    problems = _fuzz(shard, tmp_path, [_read_solos, read_metadata], seed=1)
    assert not problems, "\n".join(problems)


def test_damaged_urmp_shards_end_with_their_segments_or_an_input_error(prepared_tiny, tmp_path):
    shard = min(Path(prepared_tiny["urmp"]).glob("*.tar"))
    problems = _fuzz(shard, tmp_path, [_read_urmp, read_metadata], seed=2)
    assert not problems, "\n".join(problems)
