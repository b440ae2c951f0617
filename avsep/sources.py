"""Where prepared shards live, and reading them from there with retries.

`--data` names a dataset in one of these forms:

- a local folder written by `avsep prepare` (shards are found by listing it);
- a URL prefix under which that folder's layout lives: `https://host/solos`,
  `s3://bucket/solos`, `gs://bucket/solos`, `pipe:CMD` (webdataset's own URL forms). The
  index `shards.json` that `avsep prepare` writes beside `summary.json` lists every split's
  shards, so nothing has to list a bucket;
- a shard list file (one URL or path per line; relative lines are relative to the file;
  `#` starts a comment) or a single URL or brace pattern
  (`https://host/solos/train/solos-train-{000000..000127}.tar`; `::` joins several), expanded
  as webdataset expands them.
  The split of a listed shard is the name of the folder it sits in (`.../train/x.tar`).

Data never runs a command. `pipe:` (a shell command) is taken only from the user's own
command line or config. The paths of an index are checked to be plain relative shard paths
(`train/solos-train-000000.tar`: letters, digits, `._+-` and `/`; no scheme, no `..`, no
shell metacharacters) before they are joined to a prefix, since a `pipe:` prefix turns the
joined path into part of a shell command. A list file's `pipe:` lines are refused unless
the policy allows them (`--allow-pipe-lists`, `data.allow_pipe_lists`): a list file is data,
and such a file would otherwise be a script.

Shards are opened with webdataset's `gopen`: local paths directly, http(s) through
`curl --fail`, s3 through `aws s3 cp URL -`, gs through webdataset's `gsutil cat`; any
other storage can be given as a `pipe:` command. A read that fails is retried; a shard that
still fails is handed to `on_failure`, which training counts and skips and evaluation raises.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

from avsep.faults import InputError
from avsep.tarstream import tar_members

INDEX_NAME = "shards.json"
READ_ATTEMPTS = 3  # tries per shard before it counts as failed
READ_RETRY_DELAY_S = 2.0  # seconds between tries
# webdataset is imported where it is used: it pulls in torch (seconds), and the command line
# reads this module's defaults when it starts.
_URL_SCHEMES = ("http", "https", "s3", "gs", "pipe", "file", "hf", "ais", "sftp", "scp", "ftps")
# A path segment of an index entry: no leading '.' ('.', '..', hidden) or '-' (an option).
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


class ShardReadError(OSError):
    """A shard (or the index) could not be read after all attempts; names the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class BadShardError(ShardReadError, InputError):
    """A shard that is there but is not a readable shard (or a local shard that is missing):
    the input's fault, unlike a network failure."""


class ShardIndexError(InputError, ValueError):
    """An index (`shards.json`) or a shard list that cannot be used; names the file and
    the entry or line."""


@dataclass(frozen=True)
class ReadPolicy:
    """How hard to try: `attempts` reads per shard, `retry_delay_s` seconds apart; and
    whether a shard list file may hold `pipe:` lines (shell commands; `allow_pipe_lists`)."""

    attempts: int = READ_ATTEMPTS
    retry_delay_s: float = READ_RETRY_DELAY_S
    allow_pipe_lists: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"read attempts must be at least 1, got {self.attempts}")


DEFAULT_POLICY = ReadPolicy()


def is_url(location: str) -> bool:
    """True for webdataset URLs (`https://...`, `s3://...`, `pipe:...`), False for paths."""
    scheme = urlparse(str(location)).scheme
    return str(location).startswith("pipe:") or (len(scheme) > 1 and scheme in _URL_SCHEMES)


def opener_url(url: str) -> str:
    """The URL handed to webdataset's gopen.

    http(s) goes through `curl --fail` without curl's own retries (ours count them, and a
    server error is reported at once instead of after curl's 30 tries); s3 through the AWS
    CLI. Everything else (local paths, gs://, pipe:) is gopen's as it is.
    """
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return f"pipe:curl --fail --silent --show-error --location --connect-timeout 30 " \
               f"{shlex.quote(url)}"
    if scheme == "s3":
        return f"pipe:aws s3 cp --quiet {shlex.quote(url)} -"
    return url


def join(prefix: str, *parts: str) -> str:
    """`prefix/part/...` for a URL prefix or a local folder."""
    if is_url(prefix):
        return "/".join([prefix.rstrip("/"), *parts])
    return str(Path(prefix, *parts))


def read_bytes(url: str, policy: ReadPolicy = DEFAULT_POLICY) -> bytes:
    """The whole content at `url` (a small file such as the index), with retries."""
    return _with_retries(url, policy, lambda: _read_all(url))


def _read_all(url: str) -> bytes:
    stream = _gopen(url)
    try:
        data = stream.read()
    finally:
        stream.close()  # a pipe that exited non-zero raises here
    return data


def _gopen(url: str):
    """A binary read stream of `url` from webdataset's gopen (see `opener_url`)."""
    import webdataset as wds

    return wds.gopen(opener_url(url), "rb")


def expand_urls(pattern: str) -> list[str]:
    """Brace patterns and `::`-joined lists expanded exactly as webdataset expands them."""
    from webdataset.shardlists import expand_urls as expand

    return list(expand(pattern))


_READ_ERRORS = (OSError, tarfile.TarError, ValueError)


def _failure(url: str, exc: BaseException, attempt: int, policy: ReadPolicy
             ) -> ShardReadError | None:
    """The error to raise for a read of `url` that failed with `exc` at try `attempt`
    (from 0), or None to try again. A local file is read once: a missing or damaged file
    does not heal. A damaged shard is the input's fault (`BadShardError`) wherever it
    lives; what else fails at a URL (the network, the store) is not."""
    local = not is_url(url)
    if not local and attempt + 1 < policy.attempts:
        return None
    reason = f"{type(exc).__name__}: {exc}"
    if local and isinstance(exc, FileNotFoundError):
        return BadShardError(url, "no such file")
    if local and isinstance(exc, IsADirectoryError):
        return BadShardError(url, "a folder, not a shard file")
    if local and isinstance(exc, PermissionError):
        return BadShardError(url, "permission denied")
    if not local:
        reason = f"unreadable after {policy.attempts} attempts ({reason})"
    if isinstance(exc, (tarfile.TarError, ValueError)):
        return BadShardError(url, reason)
    return ShardReadError(url, reason)


def _with_retries(url: str, policy: ReadPolicy, read: Callable):
    for attempt in range(policy.attempts):
        if attempt:
            time.sleep(policy.retry_delay_s)
        try:
            return read()
        except _READ_ERRORS as exc:
            error = _failure(url, exc, attempt, policy)
            if error is not None:
                raise error from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def read_index(location: str, policy: ReadPolicy = DEFAULT_POLICY) -> dict | None:
    """The `shards.json` of a prepared dataset, or None for a local folder without one.

    Raises:
        ShardIndexError: it is not a JSON object with a `splits` mapping of lists.
    """
    url = join(location, INDEX_NAME)
    if not is_url(location) and not Path(url).is_file():
        return None
    data = read_bytes(url, policy)
    try:
        index = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ShardIndexError(f"{url}: not a JSON shard index ({exc})") from None
    splits = index.get("splits") if isinstance(index, dict) else None
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise ShardIndexError(f"{url}: not a shard index (expected {{\"splits\": {{name: "
                              "[{\"path\": ..., \"samples\": ..., \"bytes\": ...}]}}})")
    return index


class IndexedShard(NamedTuple):
    """A shard listed in an index: its URL, its path in the index, its split, its bytes."""

    url: str
    path: str
    split: str
    bytes: int


def index_shards(location: str, index: dict, split: str | None = None) -> list[IndexedShard]:
    """The shards an index lists, in index order: those of `split`, or every split's.

    Every path is checked to be a plain relative shard path before it is joined to
    `location` (see the module docstring).

    Raises:
        ShardIndexError: an entry that is not `{"path": str, ...}` with a plain path.
    """
    shards = []
    for name, entries in index["splits"].items():
        if split is not None and name != split:
            continue
        for number, entry in enumerate(entries):
            path = entry.get("path") if isinstance(entry, dict) else None
            where = f"{join(location, INDEX_NAME)}: entry {number} of split {name!r}"
            if not isinstance(path, str):
                raise ShardIndexError(f"{where} has no path")
            if not all(_SEGMENT.fullmatch(part) for part in path.split("/")):
                raise ShardIndexError(
                    f"{where} has the path {path!r}, which is not a plain relative shard path "
                    "(letters, digits, '._+-' and '/' only; no scheme, no '..', no leading "
                    "'.' or '-')")
            size = entry.get("bytes", 0)
            shards.append(IndexedShard(join(location, *path.split("/")), path, name,
                                       size if isinstance(size, int) and size >= 0 else 0))
    return shards


def split_of(url: str) -> str:
    """The folder a shard sits in ('train', 'val'; '' for none)."""
    parent = url.rstrip("/").rsplit("/", 2)
    return parent[-2] if len(parent) >= 2 else ""


def _listed(location: str, policy: ReadPolicy) -> list[str]:
    """The shard URLs of a list file, or of a single URL or brace pattern.

    Raises:
        ShardIndexError: a list file's `pipe:` line without `policy.allow_pipe_lists`.
    """
    if not is_url(location) and Path(location).is_file() and not location.endswith(".tar"):
        base = Path(location).parent
        urls = []
        try:
            lines = Path(location).read_text().splitlines()
        except UnicodeDecodeError:
            raise ShardIndexError(f"{location}: not a shard list (not text)") from None
        for number, line in enumerate(lines, 1):
            line = line.split("#", 1)[0].strip()
            if line.startswith("pipe:") and not policy.allow_pipe_lists:
                raise ShardIndexError(
                    f"{location}:{number}: a 'pipe:' line is a shell command, and a list "
                    "file is data; if this list is your own, allow it with "
                    "--allow-pipe-lists (training: --set data.allow_pipe_lists=true)")
            if line:
                urls += [u if is_url(u) or os.path.isabs(u) else str(base / u)
                         for u in expand_urls(line)]
        return urls
    return expand_urls(location)


def is_listing(location: str) -> bool:
    """True for a shard list file, a single shard or a brace pattern (not a dataset root)."""
    location = str(location)
    if "{" in location or location.endswith(".tar"):
        return True
    return not is_url(location) and Path(location).is_file()


def dataset_shards(location: str | os.PathLike, split: str | None,
                   policy: ReadPolicy = DEFAULT_POLICY) -> list[str]:
    """Shard URLs of `split` ('train', 'val'; None: the shards at the top of the dataset, as
    URMP's) in the dataset at `location` (any form of the module docstring), sorted.

    Raises:
        FileNotFoundError: no such shards, naming where they were looked for.
        ShardReadError: the index of a URL prefix could not be read.
        ShardIndexError: the index or the list file cannot be used (see `index_shards`).
    """
    location = str(location)
    if is_listing(location):
        urls = sorted(u for u in _listed(location, policy)
                      if split is None or split_of(u) == split)
        where = f"{location} (listed shards in a folder named {split!r})" if split else location
    elif is_url(location):
        index = read_index(location, policy)
        assert index is not None
        urls = sorted(shard.url for shard in index_shards(location, index, split)
                      if split is not None or "/" not in shard.path)  # None: URMP's, at the top
        where = f"{location} (its {INDEX_NAME} lists no {split or 'top-level'} shards)"
    else:
        folder = Path(location, split) if split else Path(location)
        urls = sorted(p for p in glob.glob(str(folder / "*.tar")) if os.path.isfile(p))
        where = str(folder)
    if not urls:
        raise FileNotFoundError(f"no {split + ' ' if split else ''}shards in {where}")
    return urls


def index_entry(path: str, samples: int, size: int) -> dict:
    """One shard in `shards.json`: its path relative to the dataset root, samples, bytes."""
    return {"path": path, "samples": samples, "bytes": size}


def shard_samples(url: str, policy: ReadPolicy) -> Iterator[dict]:
    """The webdataset samples of one shard; a read that fails is retried from the start,
    skipping the samples already given, and after `policy.attempts` raises ShardReadError
    (`BadShardError` for a damaged shard or a missing local file, which is read once)."""
    given = 0
    for attempt in range(policy.attempts):
        if attempt:
            time.sleep(policy.retry_delay_s)
        try:
            for position, sample in enumerate(_read_shard(url)):
                if position >= given:
                    given += 1
                    yield sample
            return
        except _READ_ERRORS as exc:
            error = _failure(url, exc, attempt, policy)
            if error is not None:
                raise error from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _read_shard(url: str) -> Iterator[dict]:
    import webdataset as wds

    stream = _gopen(url)
    finished = False
    try:
        if urlparse(url).path.endswith(".tar"):
            # Uncompressed (what `avsep prepare` writes): the lean reader, 13 us per member
            # against tarfile's 73 (benchmarks/reader.py --tar-readers; avsep.tarstream).
            files: Iterable[dict] = ({**member, "__url__": url} for member in tar_members(stream))
        else:  # compressed or unknown: tarfile's reader detects the compression
            source = [{"url": url, "stream": stream}]
            files = wds.tariterators.tar_file_expander(source, handler=wds.reraise_exception)
        yield from wds.tariterators.group_by_keys(files, handler=wds.reraise_exception)
        finished = True
    finally:
        try:
            stream.close()  # a pipe that exited non-zero (curl --fail) raises here
        except OSError:
            if finished:
                raise


def read_shards(policy: ReadPolicy, on_failure: Callable[[ShardReadError], None] | None = None,
                give_up_after: int = 0):
    """A pipeline stage: shard sources (`{"url": ...}`) -> samples.

    A shard that cannot be read goes to `on_failure` (default: raise) and the stage moves on
    to the next shard; after `give_up_after` failures in a row (0: never) it raises, so a
    stream whose shards are all unreachable stops instead of waiting forever.
    """

    def stage(sources: Iterable[dict]) -> Iterator[dict]:
        in_a_row = 0
        for source in sources:
            try:
                yield from shard_samples(source["url"], policy)
                in_a_row = 0
            except ShardReadError as exc:
                if on_failure is None:
                    raise
                on_failure(exc)
                in_a_row += 1
                if give_up_after and in_a_row >= give_up_after:
                    raise ShardReadError(exc.url, f"the last {in_a_row} shard reads all failed; "
                                         f"the last one: {exc.reason}") from None

    return stage


class FailureLog:
    """Shard failures seen in one process, handed on with the next batch (`drain`)."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str]] = []

    def __call__(self, error: ShardReadError) -> None:
        self.pending.append((error.url, error.reason))

    def drain(self) -> list[tuple[str, str]]:
        drained, self.pending = self.pending, []
        return drained

    def attach(self, batch: dict) -> dict:
        """`batch` with the failures since the previous batch under `shard_failures`."""
        return {**batch, "shard_failures": self.drain()}


def report_failures(failures: Iterable[tuple[str, str]], seen: set[str]) -> int:
    """Print each failed shard not printed before (stderr, once per URL); return the count
    of failures."""
    count = 0
    for url, reason in failures:
        count += 1
        if url not in seen:
            seen.add(url)
            print(f"warning: shard skipped after failed reads: {url}: {reason}", file=sys.stderr)
    return count


def copy_shard(url: str, destination: Path, policy: ReadPolicy = DEFAULT_POLICY) -> Path:
    """Copy the file at `url` to `destination` (whole, with retries); return `destination`."""

    def copy() -> Path:
        partial = destination.with_name(destination.name + ".part")
        stream = _gopen(url)
        try:
            with open(partial, "wb") as out:
                while chunk := stream.read(1 << 20):
                    out.write(chunk)
        finally:
            stream.close()  # a pipe that exited non-zero raises here
        os.replace(partial, destination)
        return destination

    return _with_retries(url, policy, copy)
