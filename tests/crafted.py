"""Test helpers for hostile inputs: hand-made tar blocks and a time limit for code that
might never return."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

BLOCK = 512


class Expired(BaseException):
    """Raised by `time_limit`; a BaseException so that no `except Exception` swallows it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `Expired` (instead of hanging) when the block runs longer than `seconds`."""
    def expire(signum, frame):
        raise Expired(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def tar_header(name: bytes, size: int, kind: bytes = b"0", *, size_field: bytes | None = None,
               prefix: bytes = b"", signed_checksum: bool = False) -> bytes:
    """A ustar header block with a correct checksum (fields as Python's tarfile writes
    them); `size_field` replaces the octal size, e.g. with a crafted one."""
    block = bytearray(BLOCK)
    block[:len(name)] = name
    block[100:124] = b"0000644\0" b"0000000\0" b"0000000\0"  # mode, uid, gid
    block[124:136] = b"%011o\0" % size if size_field is None else size_field
    block[136:148] = b"00000000000\0"  # mtime
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    block[345:345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    checksum = sum(block) - (256 * sum(b >= 0x80 for b in block) if signed_checksum else 0)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def padded(data: bytes) -> bytes:
    """`data` padded with zeros to whole blocks."""
    return data + bytes(-len(data) % BLOCK)
