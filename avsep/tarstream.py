"""The members of an uncompressed tar stream, read with little per-member work.

A training clip uses one or a few of a sample's ~65 frames, but a tar stream must be read
member by member, and Python's `tarfile` spends several times longer on each header than
this reader does (`benchmarks/reader.py SHARDS --tar-readers` compares the two); on a small
machine that time competes with the training step for the same CPU cores. This reader parses
only what a shard needs: the name (ustar prefix, GNU long names and pax `path` records
included), the size (octal or base-256, pax `size`) and the type.

Shards come from disks and networks we do not control, so the reader ends on any byte
sequence, reads no more than the stream holds, and fails loudly (`tarfile.ReadError`, one
line) instead of returning a partial or altered member list. It checks:

- every header's checksum (unsigned, or signed as some old tars wrote it);
- sizes: a number (octal, or positive base-256), at most `MAX_MEMBER_BYTES`; data is read in
  chunks, so a huge declared size fails at the stream's end instead of allocating it first;
- pax extended headers (at most `MAX_PAX_BYTES`): each `length key=value\\n` record must have
  a decimal length, lie inside the header, end with a newline and contain `=`; keys must be
  UTF-8; a `size` record must be a decimal integer. Records that would change names or sizes
  in ways this reader does not implement (global `path`/`size`, GNU sparse files) are errors;
- GNU long names / long link names: at most `MAX_LONG_NAME_BYTES`; one of each per member;
- the end of the archive: the stream must end with at least one zero block. A shard cut at a
  member boundary would otherwise look complete and silently lose its last samples;
- member names: not empty, not absolute, no `..` component (they must not escape the
  folder a member could be extracted into).

Where `tarfile` reads a stream without error, this reader gives the same regular members or
an error, with these intended differences: it requires the end-of-archive block (`tarfile`
takes an early end or a damaged header as the end of the archive), rejects the names above,
does not validate header fields it does not use (mode, owner, times), leaves out
webdataset's `__*__` metadata members and all non-regular members, and rejects GNU sparse
members.

Two ways through one parser: `tar_members` reads a stream and yields webdataset's member
layout, `{"fname": str, "data": bytes}`, for regular files (training, streamed shards);
`tar_index` seeks past the data of a file and yields where each member's data lies
(`TarEntry`), for positioned reads of a few members (evaluation, `avsep inspect`; see
`avsep.shard_format.index_samples`). Errors are `tarfile.ReadError`, which the shard readers
retry or turn into `ShardFormatError` and then report.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = 512
MAX_MEMBER_BYTES = 64 << 30  # far above any shard member; a larger size is a damaged header
MAX_PAX_BYTES = 1 << 20  # pax headers hold a few short records
MAX_LONG_NAME_BYTES = 64 << 10  # far above any file system's path limit
_CHUNK = 16 << 20  # larger reads go in steps, so a declared size is never allocated up front

_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = (b"0", b"7")  # regular file, contiguous file (and "\0", checked apart)
# Link, symlink, device, directory and FIFO headers have no data blocks, whatever their size
# field says (POSIX; tarfile reads them so too).
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")
# GNU long name and long link name, pax extended header (and Solaris' variant), pax global.
_EXTENSIONS = (b"L", b"K", b"x", b"X", b"g")
_CHECKSUM_BLANK = 8 * 32  # the checksum field counts as eight spaces
_LOW_BYTES = bytes(range(128))
_META = re.compile(r"__[^/]*__($|/)")  # webdataset's metadata members, which it skips


def _number(field: bytes) -> int:
    """A header number: octal text, or GNU base-256 when the first byte is 0x80.

    Negative base-256 (0xff) and other non-octal text are errors, as in `tarfile`.
    """
    if field[0] == 0x80:
        return int.from_bytes(field[1:], "big")
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise tarfile.ReadError(f"bad number {field!r} in a tar header") from None


def _checksum_matches(header: bytes) -> bool:
    field = header[148:156]
    try:
        expected = _number(field)
    except tarfile.ReadError:
        return False
    unsigned = sum(header) - sum(field) + _CHECKSUM_BLANK
    if expected == unsigned:
        return True
    # Some old tars summed signed chars: each byte >= 0x80 then counts 256 less.
    high = len(header.translate(None, _LOW_BYTES)) - len(field.translate(None, _LOW_BYTES))
    return expected == unsigned - 256 * high


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size) if size <= _CHUNK else b""
    if len(data) == size:
        return data
    # Short (a pipe may return less than asked) or large: read the rest in bounded steps.
    parts, got = [data], len(data)
    while got < size:
        part = stream.read(min(size - got, _CHUNK))
        if not part:
            raise tarfile.ReadError(f"unexpected end of the tar stream ({got} of {size} bytes)")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _pax_size(text: str) -> int:
    # Digits only: int() would also take signs, spaces, "_" and non-ASCII digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise tarfile.ReadError(f"bad size {text[:40]!r} in a pax header")
    return int(text)


def _pax_records(data: bytes) -> dict[str, str]:
    """The `length key=value\\n` records of a pax extended header, each checked."""
    records: dict[str, str] = {}
    position, end = 0, len(data)
    while position < end:
        space = data.find(b" ", position, position + 21)
        digits = data[position:space]
        if space < 0 or not digits.isdigit():
            raise tarfile.ReadError(f"bad pax record at byte {position}: no decimal length")
        length = int(digits)
        stop = position + length
        # The length counts the whole record: digits, space, at least "k=", and the newline.
        if length < len(digits) + 4 or stop > end or data[stop - 1] != 0x0A:
            raise tarfile.ReadError(
                f"bad pax record at byte {position}: length {length} does not end a record")
        key, equals, value = data[space + 1:stop - 1].partition(b"=")
        if not equals or not key:
            raise tarfile.ReadError(f"bad pax record at byte {position}: no key=value")
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise tarfile.ReadError(f"bad pax record at byte {position}: key {key[:40]!r} "
                                    "is not UTF-8") from None
        records[name] = value.decode("utf-8", "surrogateescape")
        position = stop
    if any(key.startswith("GNU.sparse.") for key in records):
        raise tarfile.ReadError("GNU sparse members are not supported")
    return records


def _extension_data(stream: BinaryIO, kind: bytes, size: int) -> bytes:
    """The data of a GNU long name / link name or pax header, its padding checked."""
    limit = MAX_PAX_BYTES if kind in (b"x", b"X", b"g") else MAX_LONG_NAME_BYTES
    if not 0 <= size <= limit:
        raise tarfile.ReadError(
            f"tar extension header {kind.decode()!r} of {size} bytes (at most {limit})")
    padded = _read_exact(stream, size + (-size % BLOCK))
    # tarfile reads these headers to the end of their last block: zeros past the size keep a
    # header whose size was damaged from meaning different things to the two readers.
    if padded[size:].strip(b"\0"):
        raise tarfile.ReadError(f"tar extension header {kind.decode()!r} has data past its size")
    return padded[:size]


class _Pending:
    """The extension headers read for the member that follows them."""

    __slots__ = ("long_name", "pax", "seen")

    def __init__(self) -> None:
        self.long_name: str | None = None  # a GNU long name header's
        self.pax: dict[str, str] | None = None  # a pax extended header's records
        self.seen = False  # extension headers were read; the member they belong to must follow

    def add(self, kind: bytes, data: bytes) -> None:
        """Take the data of one extension header (`_EXTENSIONS`)."""
        self.seen = True
        # One of each per member: with two, tarfile keeps the first and GNU tar the last.
        if kind == b"L":
            if self.long_name is not None:
                raise tarfile.ReadError("two GNU long names for one tar member")
            self.long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif kind == b"g":
            # Global records apply to all later members; none matters to a shard, except
            # ones that would rename or resize members, which this reader leaves out.
            records = _pax_records(data)
            if "path" in records or "size" in records:
                raise tarfile.ReadError("a pax global header sets a path or a size")
        elif kind != b"K":  # "x" or "X"; a GNU long link name ("K") matters to no shard
            if self.pax is not None:
                raise tarfile.ReadError("two pax extended headers for one tar member")
            self.pax = _pax_records(data)

    def apply(self, size: int) -> tuple[str | None, int]:
        """The name (None: the header's own) and the size of the member that follows the
        extension headers, whose records are then forgotten."""
        name = self.long_name
        if self.pax is not None:
            if "size" in self.pax:
                size = _pax_size(self.pax["size"])
            if "path" in self.pax:
                if name is not None:  # which wins differs between tar readers
                    raise tarfile.ReadError("a tar member has both a GNU long name and a pax path")
                name = self.pax["path"].rstrip("/")  # as tarfile does
        self.long_name, self.pax, self.seen = None, None, False
        return name, size


def _check_end(header: bytes, pending: bool) -> None:
    """A header block that is short or all zeros ends the archive only when it is a whole
    zero block after a complete member."""
    if not header:
        raise tarfile.ReadError("the tar stream ends without its end-of-archive block (truncated?)")
    if len(header) != BLOCK:
        raise tarfile.ReadError("truncated tar header")
    if pending:
        raise tarfile.ReadError("the tar stream ends after an extension header, before its member")


def _header_name(header: bytes) -> str:
    """A ustar header's own member name, with its prefix."""
    name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    # The ustar prefix; read whatever the magic says, as tarfile (webdataset's reader) does,
    # so that both name a member alike.
    if header[345]:
        prefix = header[345:500].split(b"\0", 1)[0]
        name = f"{prefix.decode('utf-8', 'surrogateescape')}/{name}"
    return name


def _checked_name(name: str) -> str:
    if not name or name[0] == "/" or (".." in name and ".." in name.split("/")):
        raise tarfile.ReadError(f"member path {name[:200]!r} escapes the archive"
                                if name else "a tar member has an empty name")
    return name


class _Reading:
    """How the walk gets past member data: it reads it (a stream, `tar_members`)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def data(self, size: int) -> bytes | None:
        """The member data of `size` bytes that follows (None where it is skipped)."""
        return _read_exact(self.stream, size)

    def skip(self, size: int) -> None:
        while size:  # in steps: a declared size is never allocated up front
            size -= len(_read_exact(self.stream, min(size, _CHUNK)))

    def finish(self) -> None:
        # Read the stream to its end (the record's zero padding): a pipe closed early makes
        # its writer (curl) fail, and that would count against the shard.
        while self.stream.read(1 << 16):
            pass


class _Seeking(_Reading):
    """Seeks past member data instead (a file of `length` bytes, `tar_index`)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        super().__init__(stream)
        self.length = length

    def data(self, size: int) -> bytes | None:
        self.skip(size)
        return None

    def skip(self, size: int) -> None:
        end = self.stream.seek(size, 1)
        if end > self.length:  # seeking past the end succeeds; the data is not there
            raise tarfile.ReadError(f"unexpected end of the tar stream: truncated (data up to "
                                    f"byte {end} of {self.length})")

    def finish(self) -> None:
        pass


def _walk(stream: BinaryIO, past: _Reading, base: int = 0
          ) -> Iterator[tuple[str, int, int, bytes | None]]:
    """(name, offset of its data from `base`, size, data or None) of every regular member
    of `stream`, webdataset's metadata members included; `past` reads or skips the data."""
    read = stream.read
    position = base  # of the next header block
    pending = _Pending()
    while True:
        header = read(BLOCK)
        if len(header) != BLOCK or header == _ZERO_BLOCK:
            _check_end(header, pending.seen)
            past.finish()  # end of archive
            return
        if not _checksum_matches(header):
            raise tarfile.ReadError("tar header checksum mismatch")
        kind = header[156:157]
        size = _number(header[124:136])
        if kind in _EXTENSIONS:
            pending.add(kind, _extension_data(stream, kind, size))
            position += BLOCK + size + (-size % BLOCK)
            continue
        name: str | None = None
        if pending.seen:
            name, size = pending.apply(size)
        if not 0 <= size <= MAX_MEMBER_BYTES:
            raise tarfile.ReadError(f"tar member size {size} is out of range")
        stored = size + (-size % BLOCK)  # bytes of its data blocks
        # An old-style regular file ("\0") whose own name ends in "/" is a directory.
        if kind in _REGULAR or (
                kind == b"\0" and header[:100].split(b"\0", 1)[0][-1:] != b"/"):
            name = _checked_name(_header_name(header) if name is None else name)
            data = past.data(size)
            if stored != size:
                past.skip(stored - size)
            yield name, position + BLOCK, size, data
        elif kind == b"S":
            raise tarfile.ReadError("GNU sparse members are not supported")
        elif kind not in _NO_DATA and kind != b"\0":
            # An unknown type keeps its data blocks (as tarfile reads it): skip them.
            past.skip(stored)
        else:
            stored = 0  # no data blocks, whatever the size field says
        position += BLOCK + stored


def tar_members(stream: BinaryIO) -> Iterator[dict]:
    """The regular files of the uncompressed tar `stream`, in order, as
    `{"fname": name, "data": contents}`; webdataset's metadata members (`__*__`) are left
    out, as its own reader does. A damaged or cut stream raises `tarfile.ReadError`."""
    for name, _, _, data in _walk(stream, _Reading(stream)):
        if not _META.match(name):
            yield {"fname": name, "data": data}


@dataclass(frozen=True)
class TarEntry:
    """Where one regular member's data lies in a tar file.

    Attributes:
        name: the member's path in the archive.
        offset: the byte of the file where its data starts.
        size: its length in bytes.
    """

    name: str
    offset: int
    size: int


def tar_index(stream: BinaryIO) -> Iterator[TarEntry]:
    """The regular files of the uncompressed tar file `stream` (seekable, read from its
    current position), in order, without their data: the same headers, checks and errors as
    `tar_members` (a member whose data would lie past the end of the file is an error too),
    for positioned reads of the members afterwards."""
    base = stream.tell()
    length = stream.seek(0, 2)
    stream.seek(base)
    for name, offset, size, _ in _walk(stream, _Seeking(stream, length), base):
        if not _META.match(name):
            yield TarEntry(name, offset, size)
