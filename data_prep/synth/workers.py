"""Parallel work over files: a process pool whose workers each load the soundfont once.

Workers start with the 'forkserver' context (or 'spawn' where that is missing), never with a
plain fork of a process that may already hold threads. `jobs=1` runs everything in the
calling process through the same code path.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from tqdm import tqdm

from .instruments import all_programs
from .render import FluidRenderer, check_soundfont

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

    from typing_extensions import Self

T = TypeVar("T")
R = TypeVar("R")

PRELOAD = ["data_prep.synth.solos", "data_prep.synth.urmp", "music21", "av", "fluidsynth"]

# Per-process state: the soundfont path given to this worker and its renderers by sample rate.
_soundfont: str | None = None
_renderers: dict[int, FluidRenderer] = {}


def _init_worker(soundfont: str, single_threaded: bool) -> None:
    global _soundfont
    _soundfont = soundfont
    if single_threaded:
        # one file per worker process at a time: keep OpenCV from starting threads of its own
        import cv2

        cv2.setNumThreads(1)


def renderer(sample_rate: int) -> FluidRenderer:
    """This process's renderer for `sample_rate` (loaded and primed on first use)."""
    if _soundfont is None:
        raise RuntimeError("renderer() called outside a WorkerPool")
    if sample_rate not in _renderers:
        _renderers[sample_rate] = FluidRenderer(_soundfont, sample_rate, all_programs())
    return _renderers[sample_rate]


def _close_renderers() -> None:
    global _soundfont
    for item in _renderers.values():
        item.close()
    _renderers.clear()
    _soundfont = None


@dataclass
class FileRecord:
    """What one job wrote: paths, seconds of video, bytes on disk, CPU seconds it took."""

    paths: list[str]
    video_seconds: float
    bytes: int
    cpu_seconds: float


class WorkerPool:
    """Runs jobs over files, in `jobs` processes, with a progress bar.

    Use as a context manager; `map` yields results in input order.
    """

    def __init__(self, jobs: int, soundfont: str, progress: bool = True) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.soundfont = str(check_soundfont(soundfont))
        self.jobs = jobs
        self.progress = progress
        self._pool: Pool | None = None

    def __enter__(self) -> Self:
        if self.jobs > 1:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                                  else "spawn")
            if context.get_start_method() == "forkserver":
                # import the heavy modules once in the server, not in every worker
                context.set_forkserver_preload(PRELOAD)
            self._pool = context.Pool(self.jobs, initializer=_init_worker,
                                      initargs=(self.soundfont, True))
        else:
            _init_worker(self.soundfont, False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        else:
            _close_renderers()

    def map(self, function: Callable[[T], R], items: Iterable[T], description: str) -> Iterator[R]:
        """function(item) for each item, in order, with a tqdm bar named `description`."""

        items = list(items)
        results: Iterator[R]
        if self._pool is not None:
            results = self._pool.imap(function, items, chunksize=1)
        else:
            results = map(function, items)
        yield from tqdm(results, total=len(items), desc=description, unit="file",
                        disable=not self.progress, leave=False)


@dataclass
class Summary:
    """Totals of one generation run."""

    layout: str
    root: str
    files: int = 0
    video_seconds: float = 0.0
    bytes: int = 0
    cpu_seconds: float = 0.0  # summed over the jobs, in whichever process ran them
    wall_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, record: FileRecord) -> None:
        self.files += len(record.paths)
        self.video_seconds += record.video_seconds
        self.bytes += record.bytes
        self.cpu_seconds += record.cpu_seconds

    def add_file(self, path: str | os.PathLike) -> None:
        self.files += 1
        self.bytes += os.path.getsize(path)

    def finish(self) -> Summary:
        self.wall_seconds = time.perf_counter() - self.started
        return self

    def __str__(self) -> str:
        rate = self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        return (f"{self.layout} stand-in in {self.root}: {self.files} files, "
                f"{self.video_seconds / 60:.1f} min of video, {self.bytes / 1e6:.1f} MB, "
                f"{self.wall_seconds:.1f} s wall ({rate:.1f} s of video per second), "
                f"{self.cpu_seconds:.1f} s CPU in jobs")
