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

Yields webdataset's member layout, `{"fname": str, "data": bytes}`, for regular files.
Errors are `tarfile.ReadError`, which the shard readers retry and then report.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
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


def tar_members(stream: BinaryIO) -> Iterator[dict]:
    """The regular files of the uncompressed tar `stream`, in order, as
    `{"fname": name, "data": contents}`; webdataset's metadata members (`__*__`) are left
    out, as its own reader does. A damaged or cut stream raises `tarfile.ReadError`."""
    read = stream.read
    long_name: str | None = None  # a GNU long name header's, for the next member
    pax: dict[str, str] | None = None  # a pax extended header's records, for the next member
    pending = False  # extension headers were read; the member they belong to must follow
    while True:
        header = read(BLOCK)
        if len(header) != BLOCK or header == _ZERO_BLOCK:
            if not header:
                raise tarfile.ReadError(
                    "the tar stream ends without its end-of-archive block (truncated?)")
            if len(header) != BLOCK:
                raise tarfile.ReadError("truncated tar header")
            if pending:
                raise tarfile.ReadError(
                    "the tar stream ends after an extension header, before its member")
            # End of archive. Read the stream to its end (the record's zero padding): a pipe
            # closed early makes its writer (curl) fail, and that would count against the shard.
            while read(1 << 16):
                pass
            return
        if not _checksum_matches(header):
            raise tarfile.ReadError("tar header checksum mismatch")
        kind = header[156:157]
        size = _number(header[124:136])
        if kind in _EXTENSIONS:
            data = _extension_data(stream, kind, size)
            pending = True
            # One of each per member: with two, tarfile keeps the first and GNU tar the last.
            if kind == b"L":
                if long_name is not None:
                    raise tarfile.ReadError("two GNU long names for one tar member")
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == b"g":
                # Global records apply to all later members; none matters to a shard, except
                # ones that would rename or resize members, which this reader leaves out.
                records = _pax_records(data)
                if "path" in records or "size" in records:
                    raise tarfile.ReadError("a pax global header sets a path or a size")
            elif kind != b"K":  # "x" or "X"; a GNU long link name ("K") matters to no shard
                if pax is not None:
                    raise tarfile.ReadError("two pax extended headers for one tar member")
                pax = _pax_records(data)
            continue
        name: str | None = None
        if pending:
            name = long_name
            if pax is not None:
                if "size" in pax:
                    size = _pax_size(pax["size"])
                if "path" in pax:
                    if name is not None:  # which wins differs between tar readers
                        raise tarfile.ReadError(
                            "a tar member has both a GNU long name and a pax path")
                    name = pax["path"].rstrip("/")  # as tarfile does
            long_name, pax, pending = None, None, False
        if not 0 <= size <= MAX_MEMBER_BYTES:
            raise tarfile.ReadError(f"tar member size {size} is out of range")
        # An old-style regular file ("\0") whose own name ends in "/" is a directory.
        if kind in _REGULAR or (
                kind == b"\0" and header[:100].split(b"\0", 1)[0][-1:] != b"/"):
            if name is None:
                name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                # The ustar prefix; read whatever the magic says, as tarfile (webdataset's
                # reader) does, so that both name a member alike.
                if header[345]:
                    prefix = header[345:500].split(b"\0", 1)[0]
                    name = f"{prefix.decode('utf-8', 'surrogateescape')}/{name}"
            if not name or name[0] == "/" or (".." in name and ".." in name.split("/")):
                raise tarfile.ReadError(f"member path {name[:200]!r} escapes the archive"
                                        if name else "a tar member has an empty name")
            data = _read_exact(stream, size)
            if size % BLOCK:
                _read_exact(stream, BLOCK - size % BLOCK)
            if not _META.match(name):
                yield {"fname": name, "data": data}
        elif kind == b"S":
            raise tarfile.ReadError("GNU sparse members are not supported")
        elif kind not in _NO_DATA and kind != b"\0":
            # An unknown type keeps its data blocks (as tarfile reads it): skip them in steps.
            remaining = size + (-size % BLOCK)
            while remaining:
                remaining -= len(_read_exact(stream, min(remaining, _CHUNK)))
