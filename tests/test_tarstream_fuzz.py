"""The lean tar reader on damaged archives: it always ends, fails only with ReadError, and
never gives an answer that differs from Python's tarfile (the reference) without failing.

A small valid archive (GNU long name, pax header with `path` and `size`, ustar prefix,
directory, webdataset metadata member, empty file) is mutated a few hundred times with a
fixed seed: truncations, bit flips, header fields overwritten (mostly with the checksum
fixed, so that the field is actually parsed), pax record text overwritten, garbage inserted.
"""

from __future__ import annotations

import io
import random
import re
import tarfile
import time

from crafted import Expired, time_limit

from avsep.tarstream import tar_index, tar_members

SEED = 20240607
CASE_SECONDS = 1.0
_META = re.compile(r"__[^/]*__($|/)")  # webdataset's metadata members, which both skip

FIELDS = {  # ustar header fields: (start, end)
    "name": (0, 100), "mode": (100, 108), "uid": (108, 116), "gid": (116, 124),
    "size": (124, 136), "mtime": (136, 148), "chksum": (148, 156), "type": (156, 157),
    "linkname": (157, 257), "magic": (257, 263), "version": (263, 265), "uname": (265, 297),
    "devmajor": (329, 337), "prefix": (345, 500),
}


def _archive() -> tuple[bytes, list[int], range]:
    """(archive, offsets of its header blocks, byte range of its pax header's records)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(name: str, data: bytes, kind: bytes = tarfile.REGTYPE, fmt: int = tarfile.GNU_FORMAT,
                pax: dict[str, str] | None = None) -> None:
            tar.format = fmt
            info = tarfile.TarInfo(name)
            info.size, info.type, info.mtime = len(data), kind, 0
            info.pax_headers = pax or {}
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("clip__a.json", b'{"fps": 8}')
        add("d" * 120 + "/long.npy", bytes(range(256)) * 2 + b"tail")  # GNU long name ("L")
        add("clip__ü.jpg", b"\xff\xd8" + b"j" * 1023, fmt=tarfile.PAX_FORMAT,  # pax "path"
            pax={"size": "1025", "comment": "pax"})
        add("p" * 90 + "/" + "q" * 50, b"prefixed" * 12, fmt=tarfile.USTAR_FORMAT)  # ustar prefix
        add("folder", b"", tarfile.DIRTYPE)
        add("__meta__", b"skipped by both")
        add("clip__a.empty", b"")
    raw = buffer.getvalue()[:tar.offset]  # the end-of-archive blocks, not the record padding
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    headers = sorted({m.offset for m in members} | {m.offset_data - 512 for m in members})
    pax_member = next(m for m in members if m.name == "clip__ü.jpg")
    return raw, headers, range(pax_member.offset + 512, pax_member.offset_data - 512)


def _with_checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def _field_values(rng: random.Random, field: str) -> list[bytes]:
    junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
    numbers = [b"%011o\0" % rng.choice([0, 1, 10, 511, 512, 513, 1025, rng.randrange(20_000),
                                         8 ** 11 - 1]),
               b"\x80" + rng.randrange(1 << 88).to_bytes(11, "big"), b"\x80" + bytes(10) + b"\x05",
               b"\xff" * 12, b"-1\0", b" 17 \0", b"", b"1_0\0", b"9\0", junk]
    return {
        "name": [b"", b"/abs", b"../up", b"a/../../b", b"dir/", b"__meta__", b"x" * 100, junk],
        "prefix": [b"", b"pre", b"/abs", b"..", junk],
        "type": [bytes([t]) for t in b"0\x0012567LKxXgSAV"] + [bytes([rng.randrange(256)])],
        "magic": [b"ustar\0", b"ustar ", bytes(6), junk],
        "chksum": [b"%06o\0 " % rng.randrange(1 << 18), junk, b"\xff" * 8],
    }.get(field, numbers)


def _mutations(raw: bytes, headers: list[int], pax: range, rng: random.Random):
    """(description, mutated archive) pairs."""
    for cut in sorted(set(range(0, len(raw), 512)) | {rng.randrange(len(raw)) for _ in range(40)}):
        yield f"cut at {cut}", raw[:cut]
    for case in range(100):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        yield f"bit flips #{case}", bytes(data)
    for case in range(180):
        data = bytearray(raw)
        start = rng.choice(headers)
        field = rng.choice(list(FIELDS))
        value = rng.choice(_field_values(rng, field))
        first, last = FIELDS[field]
        data[start + first:start + last] = (value + bytes(last - first))[:last - first]
        fixed = field != "chksum" and rng.random() < 0.85
        if fixed:
            block = data[start:start + 512]
            _with_checksum(block)
            data[start:start + 512] = block
        yield (f"header at {start}: {field} = {value!r}{' (checksum fixed)' if fixed else ''}",
               bytes(data))
    for case in range(80):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            data[rng.choice(pax)] = rng.choice(b"0123456789 =\n\0x\xff")
        yield f"pax records #{case}", bytes(data)
    for case in range(60):
        at = rng.choice([rng.randrange(len(raw)), rng.randrange(len(raw) // 512) * 512])
        kind = rng.choice(["random", "block", "header"])
        if kind == "header":  # a copy of one of the headers: a repeated extension header
            start = rng.choice(headers)
            garbage = raw[start:start + 512]
        else:
            size = 512 * rng.randint(1, 2) if kind == "block" else rng.randint(1, 600)
            garbage = bytes(rng.randrange(256) for _ in range(size))
        yield f"{len(garbage)} {kind} bytes inserted at {at}", raw[:at] + garbage + raw[at:]


def _lean(raw: bytes) -> list[tuple[str, bytes]] | None:
    try:
        return [(m["fname"], m["data"]) for m in tar_members(io.BytesIO(raw))]
    except tarfile.ReadError:
        return None


def _indexed(raw: bytes) -> list[tuple[str, bytes]] | None:
    """The members as the positioned index finds them, their data read at its offsets."""
    try:
        return [(entry.name, raw[entry.offset:entry.offset + entry.size])
                for entry in tar_index(io.BytesIO(raw))]
    except tarfile.ReadError:
        return None


def _tarfile(raw: bytes) -> tuple[list[tuple[str, bytes]], bool] | None:
    """tarfile's regular members (metadata left out) and whether it stopped at a zero block
    (rather than at a header it could not parse or at the end of the data, which it also
    takes as the end of the archive); None where it fails."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r|", encoding="utf-8",
                          errors="surrogateescape") as tar:
            members = []
            for member in tar:
                if member.isreg():
                    if member.issparse() or member.size > len(raw):
                        return None  # data tarfile would make up (sparse) or cannot read
                    members.append((member.name, tar.extractfile(member).read()))
            stop = tar.offset
    except Exception:  # noqa: BLE001 - tarfile fails on damaged data with many types
        return None
    members = [(name, data) for name, data in members if not _META.match(name)]
    return members, raw[stop:stop + 512] == bytes(512)


def test_the_unmutated_archive_reads_as_tarfile_reads_it():
    raw, headers, pax = _archive()
    assert len(headers) == 9 and len(pax) > 0
    assert _tarfile(raw) == (_lean(raw), True)
    assert [name for name, _ in _lean(raw)] == [
        "clip__a.json", "d" * 120 + "/long.npy", "clip__ü.jpg", "p" * 90 + "/" + "q" * 50,
        "clip__a.empty"]


def test_mutated_archives_end_quickly_and_fail_only_with_read_error_or_agree_with_tarfile():
    raw, headers, pax = _archive()
    failures: list[str] = []
    counts = {"cases": 0, "read error": 0, "same as tarfile": 0, "tarfile stopped early": 0,
              "tarfile failed": 0}
    for description, data in _mutations(raw, headers, pax, random.Random(SEED)):
        counts["cases"] += 1
        start = time.perf_counter()
        try:
            with time_limit(CASE_SECONDS):
                ours = _lean(data)
                reference = _tarfile(data) if ours is not None else None
        except Expired:
            failures.append(f"{description}: still running after {CASE_SECONDS} s")
            continue
        except Exception as exc:  # noqa: BLE001 - anything but ReadError from the lean reader
            failures.append(f"{description}: {type(exc).__name__}: {exc}")
            continue
        if time.perf_counter() - start > CASE_SECONDS:  # the alarm may come late in C code
            failures.append(f"{description}: took {time.perf_counter() - start:.1f} s")
        if ours is None:
            counts["read error"] += 1
        elif reference is None:
            counts["tarfile failed"] += 1
        else:
            members, complete = reference
            if complete:
                counts["same as tarfile"] += 1
                if ours != members:
                    failures.append(f"{description}: {ours!r} but tarfile reads {members!r}")
            else:
                # tarfile ended the listing at a header whose unused fields (mode, owner,
                # times) it could not parse; what it listed before must match.
                counts["tarfile stopped early"] += 1
                if ours[:len(members)] != members:
                    failures.append(f"{description}: {ours!r}, tarfile (stopped early) reads "
                                    f"{members!r}")
    assert not failures, f"{len(failures)} of {counts['cases']} cases:\n" + "\n".join(failures[:20])
    # The cases reach past the checksum check: many are read, many are compared.
    assert counts["cases"] > 400 and counts["read error"] > 100
    assert counts["same as tarfile"] > 50, counts


def test_the_positioned_index_agrees_with_the_stream_reader_on_every_mutated_archive():
    raw, headers, pax = _archive()
    assert _indexed(raw) == _lean(raw)
    failures, indexed = [], 0
    for description, data in _mutations(raw, headers, pax, random.Random(SEED)):
        try:
            with time_limit(CASE_SECONDS):
                ours, streamed = _indexed(data), _lean(data)
        except Expired:
            failures.append(f"{description}: still running after {CASE_SECONDS} s")
            continue
        except Exception as exc:  # noqa: BLE001 - anything but ReadError from either reader
            failures.append(f"{description}: {type(exc).__name__}: {exc}")
            continue
        indexed += ours is not None
        if ours != streamed:
            failures.append(f"{description}: the index gives {ours!r}, the stream {streamed!r}")
    assert not failures, "\n".join(failures[:20])
    assert indexed > 50
