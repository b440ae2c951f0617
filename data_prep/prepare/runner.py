"""Running work units: skip finished ones, split into parts, parallelize, isolate crashes.

A dataset module (solos.py, urmp.py) lists its `WorkUnit`s and provides a `process`
function that decodes one unit and writes its samples; `run_units` does the rest:

- units of other `--part`s and units already done (see writer.py) are skipped;
- the others run in a pool of worker processes (forkserver, with the heavy libraries
  preloaded), one unit per task; `jobs=0` runs them in this process (debugging);
- a worker killed by a crashing decoder breaks the pool: the units it was working on are
  retried one at a time in a fresh process, and a unit that crashes again is reported as
  unusable instead of stopping the run;
- a unit that runs longer than `unit_timeout_s` (a hung decoder) has its worker killed and
  is reported as unusable with the reason `timeout`;
- an exception that is not `BadInput` (a library that fails to load, an ImportError, a
  MemoryError, a bug) is not the input's fault: the run stops at once naming where it came
  from, nothing is recorded or cached for the unit, and the next run retries it;
- `strict` stops at the first unusable input;
- report.jsonl and summary.json are rebuilt from every done-marker at the end.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from avsep.faults import Fault, describe_fault
from avsep.media import BadInput
from data_prep.prepare.report import (
    BAD_INPUT,
    Issue,
    UnitResult,
    format_summary,
    write_report,
)
from data_prep.prepare.settings import PrepareSettings
from data_prep.prepare.split import Part, unit_tag
from data_prep.prepare.writer import (
    MarkerStore,
    UnitShardWriter,
    atomic_write_text,
    clear_unit_outputs,
)

RUNNING_DIR = ".running"
DEFAULT_UNIT_TIMEOUT_S = 1800.0  # far above any real video's preparation time


@dataclass(frozen=True)
class WorkUnit:
    """One independent piece of work: a Solos video or a URMP piece.

    Attributes:
        unit: unique id ('<Class>/<video id>' or the piece folder name).
        source: the file or folder, relative to RAW.
        label: class name (Solos) or piece name (URMP), for summaries.
        split: 'train' / 'val' / 'test'.
        shard_dir: directory of its shards, relative to OUT ('' for OUT itself).
        shard_prefix: shard file name prefix, e.g. 'solos-train'.
        params: unit-specific inputs (e.g. playing spans), JSON-serializable.
    """

    unit: str
    source: str
    label: str
    split: str
    shard_dir: str
    shard_prefix: str
    params: dict = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return unit_tag(self.unit)


@dataclass(frozen=True)
class RunContext:
    """What every unit needs besides itself (picklable, sent to worker processes)."""

    src: Path
    out: Path
    settings: PrepareSettings
    shard_dirs: tuple[str, ...]  # every directory (relative to OUT) a unit's shards may be in
    threads: int = 1  # decoder threads per unit


def decoder_threads(jobs: int) -> int:
    """Video decoder threads per unit: the cores left over by the worker processes."""
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


ProcessFn = Callable[[WorkUnit, RunContext, UnitShardWriter, UnitResult], None]


def source_signature(path: Path) -> list:
    """Size and mtime of a file, or of every file in a folder, to notice changed inputs."""
    if path.is_dir():
        return [
            [p.name, p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(path.iterdir())
            if p.is_file()
        ]
    if path.is_file():
        return [path.stat().st_size, path.stat().st_mtime_ns]
    return []


def fingerprint(unit: WorkUnit, ctx: RunContext) -> str:
    """Hash of everything that determines a unit's output."""
    payload = {
        "settings": ctx.settings.as_dict(),
        "unit": asdict(unit),
        "source": source_signature(ctx.src / unit.source),
        "format": 1,  # bump when the sample layout changes
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def execute_unit(
    process: ProcessFn, unit: WorkUnit, ctx: RunContext, unit_print: str
) -> UnitResult | UnitFault:
    """Process one unit from scratch and publish its shards and done-marker (see writer.py).

    Returns:
        the unit's result (also saved as its done-marker), or a `UnitFault` when something
        other than the input failed; nothing is saved then, so the next run retries the unit.
    """
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    store = MarkerStore(ctx.out)
    running = store.directory / RUNNING_DIR / unit.tag
    atomic_write_text(running, str(os.getpid()))
    clear_unit_outputs([ctx.out / d for d in ctx.shard_dirs], unit.tag)
    result = UnitResult(unit=unit.unit, fingerprint=unit_print, label=unit.label, split=unit.split)
    writer = UnitShardWriter(
        ctx.out,
        ctx.out / unit.shard_dir,
        unit.shard_prefix,
        unit.tag,
        ctx.settings.shard_max_bytes,
        ctx.settings.shard_max_samples,
    )
    try:
        process(unit, ctx, writer, result)
        result.shards = writer.commit()
    except BadInput as exc:
        writer.abort()
        _drop_output(result)
        result.issues.append(Issue(unit.source, BAD_INPUT, exc.code, str(exc)))
    except Exception as exc:  # noqa: BLE001 - not the input's fault: hand it to the parent
        writer.abort()
        running.unlink(missing_ok=True)
        return UnitFault(unit, describe_fault(exc))
    result.extra["cpu_s"] = round(time.process_time() - cpu_start, 3)
    result.extra["wall_s"] = round(time.perf_counter() - wall_start, 3)
    store.save(result)
    running.unlink(missing_ok=True)
    return result


@dataclass(frozen=True)
class UnitFault:
    """A unit that failed for a reason that is not about its input (never saved)."""

    unit: WorkUnit
    fault: Fault


def _drop_output(result: UnitResult) -> None:
    result.samples, result.audio_seconds, result.shards = 0, 0.0, []


def _init_worker() -> None:
    """Worker set-up: die with the parent, one thread per library (parallelism is the pool)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan keeps writing
        except OSError:
            pass
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# The decoding libraries: preloaded by the fork server, so checked in the parent first.
DECODER_MODULES = ("torch", "torchaudio", "decord", "av", "cv2", "webdataset")


def _import_decoders() -> Fault | None:
    """Import the decoding libraries here; describe the first one that fails to load.

    The fork server would otherwise die on it at start-up with nothing but an EOFError.
    """
    for name in DECODER_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - an OSError from a .so is the usual one
            return describe_fault(exc)
    return None


def _start_fork_server() -> None:
    """Start the workers' fork server now, so that it imports the decoders while this
    process checks them (`_import_decoders`) rather than after: two imports of torch at
    the same time instead of one after the other, seconds off every run."""
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(DECODER_MODULES))
    multiprocessing.forkserver.ensure_running()


def _make_pool(jobs: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    # Workers fork from a server that has already imported the decoders: fast start-up.
    context.set_forkserver_preload(list(DECODER_MODULES))
    return ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker)


class _Reporter:
    """Collects results as they arrive, prints their issues, implements --strict and stops
    the run at the first fault that is not about an input."""

    def __init__(self, bar, strict: bool) -> None:
        self.bar, self.strict = bar, strict
        self.results: dict[str, UnitResult] = {}
        self.stop_reason: str | None = None
        self.fault: UnitFault | None = None

    def __call__(self, result: UnitResult | UnitFault) -> None:
        if isinstance(result, UnitFault):
            if self.fault is None:
                self.fault = result
                self.stop_reason = "fault"
            return
        self.results[result.unit] = result
        for issue in result.issues:
            self.bar.write(issue.line(), file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix(samples=sum(r.samples for r in self.results.values()))
        if self.strict and result.bad and self.stop_reason is None:
            self.stop_reason = next(i.line() for i in result.issues if i.kind == BAD_INPUT)


Todo = list[tuple[WorkUnit, str]]  # units with their fingerprints


def _run_batch(
    process: ProcessFn, batch: Todo, ctx: RunContext, width: int, reporter, timeout_s: float
) -> Todo:
    """Run `batch` in a pool of `width` workers; return the units lost to a broken pool.

    A unit running for longer than `timeout_s` has its worker killed and is reported as
    unusable ('timeout'); the pool breaks with it and its other units come back as lost.
    """
    watch = _HangWatch(MarkerStore(ctx.out).directory / RUNNING_DIR, timeout_s)
    with _make_pool(width) as pool:
        futures = {pool.submit(execute_unit, process, u, ctx, fp): (u, fp) for u, fp in batch}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=watch.poll_s, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                error = future.exception()
                if error is None:
                    reporter(future.result())
                elif isinstance(error, BrokenProcessPool):
                    broken = True
                else:
                    raise error
            if reporter.stop_reason is not None:
                # Units already running finish (their work is kept); no new one starts.
                pool.shutdown(wait=True, cancel_futures=True)
                return []
            if broken:
                pool.shutdown(wait=True, cancel_futures=True)
                return [item for future, item in futures.items() if item[0].unit not in
                        reporter.results]
            for unit, fp in watch.hung([item for item in batch
                                        if item[0].unit not in reporter.results]):
                reporter(_failed_result(
                    unit, fp, ctx, "timeout",
                    f"still decoding after {timeout_s:.0f} s (a hung decoder?); stopped. "
                    "Raise --unit-timeout if this input is just very long"))
    return []


class _HangWatch:
    """Finds units that have been running too long and kills their worker processes.

    A unit is running from the moment its worker writes RUNNING_DIR/<tag> (holding the
    worker's pid); time is measured here, in the parent, from when that file is first seen.
    """

    def __init__(self, running_dir: Path, timeout_s: float) -> None:
        self.running_dir, self.timeout_s = running_dir, timeout_s
        self.poll_s = min(1.0, timeout_s / 4)
        self.first_seen: dict[str, float] = {}

    def hung(self, batch: Todo) -> Todo:
        """Kill the workers of units of `batch` running longer than the timeout; return them."""
        now, killed = time.monotonic(), []
        for unit, fp in batch:
            marker = self.running_dir / unit.tag
            try:
                pid = int(marker.read_text())
            except (OSError, ValueError):
                continue
            started = self.first_seen.setdefault(unit.unit, now)
            if now - started > self.timeout_s:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                marker.unlink(missing_ok=True)
                killed.append((unit, fp))
        return killed


def _failed_result(unit: WorkUnit, fp: str, ctx: RunContext, code: str, reason: str) -> UnitResult:
    """Done-marker for a unit stopped from outside its worker (a crash, a timeout)."""
    result = UnitResult(unit.unit, fp, unit.label, unit.split)
    result.issues.append(Issue(unit.source, BAD_INPUT, code, reason))
    clear_unit_outputs([ctx.out / d for d in ctx.shard_dirs], unit.tag)
    MarkerStore(ctx.out).save(result)
    return result


def _run_pool(
    process: ProcessFn, todo: Todo, ctx: RunContext, jobs: int, reporter, timeout_s: float
) -> None:
    """Run units in worker processes; retry alone the units whose worker crashed."""
    running_dir = MarkerStore(ctx.out).directory / RUNNING_DIR
    queue: Todo = list(todo)
    suspects: Todo = []
    while (queue or suspects) and reporter.stop_reason is None:
        if suspects:
            batch, width = [suspects.pop(0)], 1
        else:
            batch, width, queue = queue, min(jobs, len(queue)), []
        for unit, _ in batch:
            (running_dir / unit.tag).unlink(missing_ok=True)
        lost = _run_batch(process, batch, ctx, width, reporter, timeout_s)
        if not lost:
            continue
        started = [item for item in lost if (running_dir / item[0].tag).exists()]
        if not started:
            raise RuntimeError(
                "worker processes died before starting any work: the decoding libraries "
                "probably fail to load (run `avsep doctor`)"
            )
        if len(batch) == 1:
            unit, fp = batch[0]
            (running_dir / unit.tag).unlink(missing_ok=True)
            reporter(_failed_result(
                unit, fp, ctx, "decoder_crash",
                "the worker process died twice on this file (a decoder crash, or out of memory)"))
            continue
        suspects += started
        queue += [item for item in lost if item not in started]


def run_units(
    process: ProcessFn,
    units: list[WorkUnit],
    ctx: RunContext,
    *,
    jobs: int = 1,
    part: Part | None = None,
    strict: bool = False,
    retry_bad: bool = False,
    global_issues: Sequence[Issue] = (),
    label_name: str = "class",
    unit_name: str = "unit",
    unit_timeout_s: float = DEFAULT_UNIT_TIMEOUT_S,
) -> int:
    """Prepare every unit of this part that is not done yet; return the exit code.

    Args:
        unit_timeout_s: a unit still running after this long is stopped and reported as
            unusable ('timeout'); only in worker processes (jobs >= 1).

    Returns:
        0 if this part's units hold at least one sample (now or from an earlier run); 2 if
        nothing usable was produced or `strict` stopped the run (the inputs' fault); 1 if
        a unit failed for a reason that is not about its input (a fault of the environment
        or of avsep).
    """

    ctx.out.mkdir(parents=True, exist_ok=True)
    store = MarkerStore(ctx.out)
    prints = {unit.unit: fingerprint(unit, ctx) for unit in units}
    part = part or Part()
    mine = part.select(units, key=lambda u: u.unit)
    finished: dict[str, UnitResult] = {}
    todo: list[tuple[WorkUnit, str]] = []
    for unit in mine:
        previous = store.is_complete(unit.unit, prints[unit.unit])
        if previous is not None and not (retry_bad and previous.bad):
            finished[unit.unit] = previous
        else:
            todo.append((unit, prints[unit.unit]))
    for issue in global_issues:
        print(issue.line(), file=sys.stderr)
    where = f" (part {part}: {len(mine)} of {len(units)})" if part.count > 1 else ""
    print(
        f"{len(mine)} {unit_name}s{where}: {len(finished)} already done, {len(todo)} to prepare",
        file=sys.stderr,
    )
    if todo and jobs > 0:
        _start_fork_server()
    fault = _import_decoders() if todo and jobs > 0 else None
    if fault is not None:
        fault.report(f"starting the {unit_name} decoders")
        print(f"  No {unit_name} was touched; nothing was recorded.", file=sys.stderr)
        return 1
    bar = tqdm(total=len(todo), unit=unit_name, dynamic_ncols=True, file=sys.stderr)
    reporter = _Reporter(bar, strict)
    try:
        if jobs <= 0:
            for unit, fp in todo:
                reporter(execute_unit(process, unit, ctx, fp))
                if reporter.stop_reason is not None:
                    break
        else:
            _run_pool(process, todo, ctx, jobs, reporter, unit_timeout_s)
    finally:
        bar.close()

    # The report covers every unit of the whole run (all parts) that is done for these settings.
    everything = [
        r for r in store.all() if r.unit in prints and r.fingerprint == prints[r.unit]
    ]
    summary = write_report(ctx.out, everything, list(global_issues))
    print(format_summary(summary, label_name), file=sys.stderr)
    print(f"report: {ctx.out / 'report.jsonl'}", file=sys.stderr)
    if reporter.fault is not None:
        failed = reporter.fault
        failed.fault.report(f"preparing {failed.unit.source}")
        print(f"  Nothing was recorded against {failed.unit.source}; the run stopped and the "
              "next run retries it.", file=sys.stderr)
        return 1
    if reporter.stop_reason is not None:
        print(f"stopped (--strict) at: {reporter.stop_reason}", file=sys.stderr)
        return 2
    produced = sum(r.samples for r in [*finished.values(), *reporter.results.values()])
    if produced == 0:
        print("error: nothing usable was produced (see the reasons above)", file=sys.stderr)
        return 2
    return 0
