"""The members of an uncompressed tar stream, read with little per-member work.

A training clip uses one or a few of a sample's ~65 frames, but a tar stream must be read
member by member, and Python's `tarfile` spends ~73 us on each header (most of the data
worker's time on the demo preset, which competes with the training step for the same 2
CPU cores); this reader takes ~13 us (`benchmarks/reader.py SHARDS --tar-readers`). This reader parses only what a shard needs: the name (ustar prefix,
GNU long names and pax `path` records included), the size (octal or base-256, pax `size`)
and the type, and checks each header's checksum, so a damaged shard still fails loudly.

Yields webdataset's member layout, `{"fname": str, "data": bytes}`, for regular files.
Errors are `tarfile.ReadError`, which the shard readers retry and then report.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

BLOCK = 512
_REGULAR = (b"0", b"\0", b"7")  # regular file, old-style regular file, contiguous file
_CHECKSUM_BLANK = 8 * 32  # the checksum field counts as eight spaces
_META = re.compile(r"__[^/]*__($|/)")  # webdataset's metadata members, which it skips


def _number(field: bytes) -> int:
    """An octal header number, or GNU base-256 when the first byte has its high bit set."""
    if field and field[0] & 0x80:
        value = field[0] & 0x7F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise tarfile.ReadError(f"bad number {field!r} in a tar header") from None


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise tarfile.ReadError(f"unexpected end of the tar stream ({len(data)} of {size} bytes)")
    return data


def _pax_records(data: bytes) -> dict[str, str]:
    """`length key=value\\n` records of a pax extended header."""
    records, position = {}, 0
    while position < len(data):
        space = data.index(b" ", position)
        length = int(data[position:space])
        key, _, value = data[space + 1:position + length - 1].partition(b"=")
        records[key.decode("utf-8")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def tar_members(stream: BinaryIO) -> Iterator[dict]:
    """The regular files of the uncompressed tar `stream`, in order, as
    `{"fname": name, "data": contents}`; webdataset's metadata members (`__*__`) are left
    out, as its own reader does."""
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = stream.read(BLOCK)
        if not header or header == bytes(BLOCK):
            # End of archive. Read the stream to its end (the record's zero padding): a pipe
            # closed early makes its writer (curl) fail, and that would count against the shard.
            while stream.read(1 << 16):
                pass
            return
        if len(header) != BLOCK:
            raise tarfile.ReadError("truncated tar header")
        if _number(header[148:156]) != sum(header[:148]) + _CHECKSUM_BLANK + sum(header[156:]):
            raise tarfile.ReadError("tar header checksum mismatch")
        kind = header[156:157]
        size = int(pax["size"]) if "size" in pax else _number(header[124:136])
        data = _read_exact(stream, size)
        if size % BLOCK:
            _read_exact(stream, BLOCK - size % BLOCK)
        if kind == b"L":  # GNU long name of the next member
            long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if kind == b"x":  # pax extended header of the next member
            pax = _pax_records(data)
            continue
        if kind == b"g":  # pax global header: nothing a shard needs
            continue
        if long_name is not None:
            name = long_name
        elif "path" in pax:
            name = pax["path"]
        else:
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if header[257:262] == b"ustar" and header[345] != 0:
                prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                name = f"{prefix}/{name}"
        long_name, pax = None, {}
        if kind not in _REGULAR or _META.match(name):
            continue
        yield {"fname": name, "data": data}
