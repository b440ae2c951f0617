"""Training-side read speed of prepared Solos shards: samples per second per worker.

Reads shards with plain webdataset the way a training loader does: per sample, the audio
array and 3 frames (evenly spaced over the chunk) are decoded to numpy; the other JPEGs are
dropped before decoding. Prints samples/s and MB/s for one process, and for a
`torch.utils.data.DataLoader` with several workers (total and per worker).

`--loopback` also serves the folder over HTTP on 127.0.0.1 and reads the same shards from
there, through the URL handling training uses (`avsep.sources.opener_url`: curl), so the
cost of streaming over HTTP is printed beside the local read.

    python benchmarks/reader.py shards/solos/train
    python benchmarks/reader.py shards/solos/train --workers 4 --samples 2000
    python benchmarks/reader.py shards/solos/train --loopback
    python benchmarks/reader.py shards/solos/train --tar-readers   # tarfile vs avsep.tarstream

`--tar-readers` times the tar member parsing alone (no decoding), tarfile's reader as
webdataset uses it against avsep's lean reader (`avsep.tarstream`, what training reads
uncompressed shards with), on the same shards, alternating, best of 3 each.
"""

from __future__ import annotations

import argparse
import functools
import glob
import itertools
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import webdataset as wds

from avsep.sources import opener_url
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


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def loopback_server(folder: str) -> Iterator[str]:
    """`http://127.0.0.1:PORT` serving `folder` from a thread, for the duration of the block."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(label: str, urls: list[str], total: int, samples: int, workers: int) -> None:
    """Print samples/s of one process and of `workers` DataLoader workers reading `urls`."""
    # Repeat the shard list so that small stand-in folders still give `samples` samples.
    repeated = urls * math.ceil(samples / max(total, 1))
    for _ in make_dataset(urls):  # warm the page cache and imports
        pass
    count, seconds, nbytes = measure(make_dataset(repeated), samples)
    print(f"{label}, 1 process: {count / seconds:.1f} samples/s ({nbytes / seconds / 1e6:.0f} "
          f"MB/s decoded; audio + {FRAMES_PER_SAMPLE} frames per sample)")
    if workers > 0:
        import torch

        torch.set_num_threads(1)
        loader = torch.utils.data.DataLoader(  # shards are split over workers by webdataset
            make_dataset(repeated), batch_size=None, num_workers=workers
        )
        count, seconds, _ = measure(loader, samples)
        print(f"{label}, DataLoader, {workers} workers: {count / seconds:.1f} samples/s, "
              f"{count / seconds / workers:.1f} per worker")


def compare_tar_readers(urls: list[str], rounds: int = 3) -> None:
    """Print members/s of tarfile's reader and of avsep.tarstream over `urls` (page cache warm)."""
    from avsep.tarstream import tar_members

    best = {"tarfile (webdataset)": math.inf, "avsep.tarstream": math.inf}
    readers = {"tarfile (webdataset)": wds.tariterators.tar_file_iterator, "avsep.tarstream": tar_members}
    members = 0
    for _ in range(rounds):
        for name, reader in readers.items():
            start, members = time.perf_counter(), 0
            for url in urls:
                with open(url, "rb") as stream:
                    members += sum(1 for _ in reader(stream))
            best[name] = min(best[name], time.perf_counter() - start)
    for name, seconds in best.items():
        print(f"tar members, {name}: {members / seconds:,.0f} members/s "
              f"({seconds / members * 1e6:.0f} us each; {members} members, best of {rounds})")
    print(f"avsep.tarstream is {best['tarfile (webdataset)'] / best['avsep.tarstream']:.1f}x faster")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shards", help="a folder of .tar shards (e.g. OUT/train)")
    parser.add_argument("--samples", type=int, default=1000, help="samples to read per run")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader workers for the multi-worker run (0: skip it)")
    parser.add_argument("--loopback", action="store_true",
                        help="also read the folder over HTTP from a server on 127.0.0.1")
    parser.add_argument("--tar-readers", action="store_true",
                        help="only compare the tar member parsers (tarfile vs avsep.tarstream)")
    args = parser.parse_args()
    urls = sorted(glob.glob(os.path.join(args.shards, "**", "*.tar"), recursive=True))
    if not urls:
        print(f"error: no .tar shards under {args.shards}", file=sys.stderr)
        return 1
    shard_bytes = sum(os.path.getsize(u) for u in urls)
    total = summarize_shards(args.shards)["samples"]
    print(f"{len(urls)} shards, {shard_bytes / 1e6:.1f} MB, {total} samples")
    if args.tar_readers:
        compare_tar_readers(urls)
        return 0
    run("local folder", urls, total, args.samples, args.workers)
    if args.loopback:
        with loopback_server(args.shards) as base:
            names = [os.path.relpath(u, args.shards).replace(os.sep, "/") for u in urls]
            remote = [opener_url(f"{base}/{name}") for name in names]
            run("HTTP loopback", remote, total, args.samples, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
