"""Training-side read speed of prepared Solos shards: samples per second per worker.

Reads shards with plain webdataset the way a training loader does: per sample, the audio
array and 3 frames (evenly spaced over the chunk) are decoded to numpy; the other JPEGs are
dropped before decoding. Prints samples/s and MB/s for one process, and for a
`torch.utils.data.DataLoader` with several workers (total and per worker).

    python benchmarks/reader.py shards/solos/train
    python benchmarks/reader.py shards/solos/train --workers 4 --samples 2000
"""

from __future__ import annotations

import argparse
import glob
import itertools
import math
import os
import sys
import time

import numpy as np
import webdataset as wds

from data_prep.inspect import summarize_shards

FRAMES_PER_SAMPLE = 3


def keep_audio_and_frames(sample: dict, frames: int = FRAMES_PER_SAMPLE) -> dict:
    """Drop all JPEGs but `frames` evenly spaced ones (before any decoding)."""
    names = sorted(k for k in sample if k.endswith(".jpg"))
    picks = np.linspace(0, len(names) - 1, frames).round().astype(int)
    kept = {names[i] for i in picks}
    return {k: v for k, v in sample.items() if not k.endswith(".jpg") or k in kept}


def to_arrays(sample: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """(audio (T,), frames (3, H, W, 3) uint8, class index)."""
    names = sorted(k for k in sample if k.endswith(".jpg"))
    return sample["audio.npy"], np.stack([sample[k] for k in names]), sample["json"]["class_index"]


def make_dataset(urls: list[str]):
    return (
        wds.WebDataset(urls, shardshuffle=False, nodesplitter=None,
                       workersplitter=wds.split_by_worker, empty_check=False)
        .map(keep_audio_and_frames)
        .decode("rgb8")
        .map(to_arrays)
    )


def measure(iterable, limit: int) -> tuple[int, float, int]:
    """(samples read, seconds, bytes of decoded arrays), timed from the first sample on.

    Timing starts once the first sample has arrived, so DataLoader worker start-up (a
    one-off cost per epoch or run) is not counted.
    """
    iterator = iter(iterable)
    next(iterator)
    start = time.perf_counter()
    count = nbytes = 0
    for audio, frames, _ in itertools.islice(iterator, limit):
        count += 1
        nbytes += audio.nbytes + frames.nbytes
    return count, time.perf_counter() - start, nbytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", help="a folder of .tar shards (e.g. OUT/train)")
    parser.add_argument("--samples", type=int, default=1000, help="samples to read per run")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader workers for the multi-worker run (0: skip it)")
    args = parser.parse_args()
    urls = sorted(glob.glob(os.path.join(args.shards, "**", "*.tar"), recursive=True))
    if not urls:
        print(f"error: no .tar shards under {args.shards}", file=sys.stderr)
        return 1
    shard_bytes = sum(os.path.getsize(u) for u in urls)
    total = summarize_shards(args.shards)["samples"]
    print(f"{len(urls)} shards, {shard_bytes / 1e6:.1f} MB, {total} samples")

    # Repeat the shard list so that small stand-in folders still give `samples` samples.
    repeated = urls * math.ceil(args.samples / max(total, 1))
    for _ in make_dataset(urls):  # warm the page cache and imports
        pass
    count, seconds, nbytes = measure(make_dataset(repeated), args.samples)
    print(f"1 process: {count / seconds:.1f} samples/s ({nbytes / seconds / 1e6:.0f} MB/s "
          f"decoded; audio + {FRAMES_PER_SAMPLE} frames per sample)")

    if args.workers > 0:
        import torch

        torch.set_num_threads(1)
        loader = torch.utils.data.DataLoader(  # shards are split over workers by webdataset
            make_dataset(repeated), batch_size=None, num_workers=args.workers
        )
        count, seconds, _ = measure(loader, args.samples)
        print(f"DataLoader, {args.workers} workers: {count / seconds:.1f} samples/s, "
              f"{count / seconds / args.workers:.1f} per worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
