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

Shards are opened with webdataset's `gopen`: local paths directly, http(s) through
`curl --fail`, s3 through `aws s3 cp URL -`, gs through webdataset's `gsutil cat`; any
other storage can be given as a `pipe:` command. A read that fails is retried; a shard that
still fails is handed to `on_failure`, which training counts and skips and evaluation raises.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from avsep.tarstream import tar_members

INDEX_NAME = "shards.json"
READ_ATTEMPTS = 3  # tries per shard before it counts as failed
READ_RETRY_DELAY_S = 2.0  # seconds between tries
# webdataset is imported where it is used: it pulls in torch (seconds), and the command line
# reads this module's defaults when it starts.
_URL_SCHEMES = ("http", "https", "s3", "gs", "pipe", "file", "hf", "ais", "sftp", "scp", "ftps")


class ShardReadError(OSError):
    """A shard (or the index) could not be read after all attempts; names the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class ReadPolicy:
    """How hard to try: `attempts` reads per shard, `retry_delay_s` seconds apart."""

    attempts: int = READ_ATTEMPTS
    retry_delay_s: float = READ_RETRY_DELAY_S

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


def _with_retries(url: str, policy: ReadPolicy, read: Callable):
    reason = ""
    for attempt in range(policy.attempts):
        if attempt:
            time.sleep(policy.retry_delay_s)
        try:
            return read()
        except (OSError, tarfile.TarError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
    raise ShardReadError(url, f"unreadable after {policy.attempts} attempts ({reason})")


def read_index(location: str, policy: ReadPolicy = DEFAULT_POLICY) -> dict | None:
    """The `shards.json` of a prepared dataset, or None for a local folder without one."""
    url = join(location, INDEX_NAME)
    if not is_url(location) and not Path(url).is_file():
        return None
    return json.loads(read_bytes(url, policy))


def split_of(url: str) -> str:
    """The folder a shard sits in ('train', 'val'; '' for none)."""
    parent = url.rstrip("/").rsplit("/", 2)
    return parent[-2] if len(parent) >= 2 else ""


def _listed(location: str) -> list[str]:
    """The shard URLs of a list file, or of a single URL or brace pattern."""
    if not is_url(location) and Path(location).is_file() and not location.endswith(".tar"):
        base = Path(location).parent
        urls = []
        for line in Path(location).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
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
    """
    location = str(location)
    if is_listing(location):
        urls = sorted(u for u in _listed(location) if split is None or split_of(u) == split)
        where = f"{location} (listed shards in a folder named {split!r})" if split else location
    elif is_url(location):
        index = read_index(location, policy)
        assert index is not None
        names = _index_paths(index, split)
        urls = sorted(join(location, *name.split("/")) for name in names)
        where = f"{location} (its {INDEX_NAME} lists no {split or 'top-level'} shards)"
    else:
        folder = Path(location, split) if split else Path(location)
        urls = sorted(p for p in glob.glob(str(folder / "*.tar")) if os.path.isfile(p))
        where = str(folder)
    if not urls:
        raise FileNotFoundError(f"no {split + ' ' if split else ''}shards in {where}")
    return urls


def _index_paths(index: dict, split: str | None) -> list[str]:
    if split is not None:
        return [s["path"] for s in index.get("splits", {}).get(split, [])]
    return [s["path"] for entries in index.get("splits", {}).values() for s in entries
            if "/" not in s["path"]]


def index_entry(path: str, samples: int, size: int) -> dict:
    """One shard in `shards.json`: its path relative to the dataset root, samples, bytes."""
    return {"path": path, "samples": samples, "bytes": size}


def shard_samples(url: str, policy: ReadPolicy) -> Iterator[dict]:
    """The webdataset samples of one shard; a read that fails is retried from the start,
    skipping the samples already given, and after `policy.attempts` raises ShardReadError."""
    given, reason = 0, ""
    for attempt in range(policy.attempts):
        if attempt:
            time.sleep(policy.retry_delay_s)
        try:
            for position, sample in enumerate(_read_shard(url)):
                if position >= given:
                    given += 1
                    yield sample
            return
        except (OSError, tarfile.TarError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
    raise ShardReadError(url, f"unreadable after {policy.attempts} attempts ({reason})")


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
