"""The lean tar reader against Python's tarfile (the independent reference) and its errors."""

from __future__ import annotations

import io
import tarfile

import pytest
from crafted import padded, tar_header, time_limit

from avsep.tarstream import tar_members


def _archive(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        def add(name: str, data: bytes, kind: bytes = tarfile.REGTYPE) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.type = len(data), kind
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("clip__a.000.jpg", b"\xff\xd8" + bytes(range(256)) * 3)  # not a block multiple
        add("clip__a.json", b'{"fps": 8}')
        add("clip__a.empty", b"")
        add("folder", b"", tarfile.DIRTYPE)  # not a regular file: left out
        add("__meta__", b"skip me")  # webdataset metadata: left out
        add("d" * 120 + "/long.name.npy", b"x" * 1025)  # needs a long name (pax, GNU, ustar prefix)
        add("clip__b.wav", b"\0" * 512)
    return buffer.getvalue()


def _reference(raw: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar
                if m.isreg() and not m.name.startswith("__")]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT],
                         ids=["pax", "gnu", "ustar"])
def test_members_match_tarfile(fmt):
    raw = _archive(fmt)
    got = [(m["fname"], m["data"]) for m in tar_members(io.BytesIO(raw))]
    assert got == _reference(raw)
    assert [name for name, _ in got][-2:] == ["d" * 120 + "/long.name.npy", "clip__b.wav"]
    assert len(got) == 5


def test_a_damaged_header_or_a_cut_stream_is_an_error():
    raw = bytearray(_archive(tarfile.USTAR_FORMAT))
    damaged = raw.copy()
    damaged[3] ^= 0x20  # one letter of the first name
    with pytest.raises(tarfile.ReadError, match="checksum"):
        list(tar_members(io.BytesIO(bytes(damaged))))
    with pytest.raises(tarfile.ReadError, match="unexpected end"):
        list(tar_members(io.BytesIO(bytes(raw[:512 + 100]))))
    with pytest.raises(tarfile.ReadError, match="truncated tar header"):
        list(tar_members(io.BytesIO(bytes(raw[:300]))))


def test_shards_read_the_same_samples_as_webdatasets_reader(tmp_path):
    import webdataset as wds

    from avsep.sources import DEFAULT_POLICY, shard_samples

    path = tmp_path / "solos-train-000.tar"
    with wds.TarWriter(str(path)) as sink:
        for i in range(3):
            sink.write({"__key__": f"Violin__vid{i}__000", "json": {"index": i},
                        "000.jpg": b"\xff" * (100 + i), "001.jpg": b"\xfe" * 700})
    # The lean reader requires the end-of-archive block: webdataset's writer (tarfile) ends
    # every shard with it (two zero blocks, then zero padding to a whole record).
    assert path.read_bytes()[-1024:] == bytes(1024)
    ours = list(shard_samples(str(path), DEFAULT_POLICY))
    theirs = list(wds.WebDataset(str(path), shardshuffle=False))
    assert len(ours) == 3
    for a, b in zip(ours, theirs):
        assert {k: v for k, v in a.items() if k != "__url__"} == {
            k: v for k, v in b.items() if k not in ("__url__", "__local_path__")}


def test_the_stream_is_read_to_its_end_so_a_pipe_writer_does_not_fail():
    raw = _archive(tarfile.USTAR_FORMAT)  # tarfile pads the archive to a 10240-byte record
    stream = io.BytesIO(raw)
    assert len(list(tar_members(stream))) == 5
    assert stream.tell() == len(raw) and len(raw) % 10240 == 0


# Hand-made archives: each header built byte by byte, so that a test can damage one field.

END = bytes(2 * 512)  # the end-of-archive marker tarfile and webdataset's TarWriter write


def _member(name: bytes, data: bytes, kind: bytes = b"0", **header) -> bytes:
    return tar_header(name, len(data), kind, **header) + padded(data)


def _pax(*records: bytes) -> bytes:
    return _member(b"././@PaxHeader", b"".join(records), b"x")


def _record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length = len(body) + len(str(length))
    return b"%d" % length + body


def _read(raw: bytes) -> list[tuple[str, bytes]]:
    return [(m["fname"], m["data"]) for m in tar_members(io.BytesIO(raw))]


def test_hand_made_archives_read_as_tarfile_reads_them():
    raw = (_member(b"a.txt", b"hello") + _pax(_record("path", "p/" + "x" * 150 + "/"))
           + _member(b"ignored", b"x" * 600) + _member(b"L", b"long/name.bin\0", b"L")
           + _member(b"trunc", b"gnu") + _member(b"b.bin", b"yz", prefix=b"pre/fix")
           + _member(b"\xc3\xa9t\xc3\xa9.bin", b"", signed_checksum=True)
           + tar_header(b"dir", 1024, b"5")  # no data blocks whatever its size says (POSIX)
           + tar_header(b"old-style-dir/", 700, b"\0")  # a directory too
           + _member(b"unknown", b"x" * 513, b"A")  # an unknown type keeps its data blocks
           + _member(b"__meta__", b"skipped") + _member(b"..a..b", b"ok") + END)
    assert _read(raw) == _reference(raw) == [
        ("a.txt", b"hello"), ("p/" + "x" * 150, b"x" * 600), ("long/name.bin", b"gnu"),
        ("pre/fix/b.bin", b"yz"), ("été.bin", b""), ("..a..b", b"ok")]


def test_a_zero_length_pax_record_is_an_error_not_an_endless_loop():
    raw = _pax(b"0 path=a\n") + _member(b"a", b"data") + END
    with pytest.raises(tarfile.ReadError):  # tarfile rejects it too
        _reference(raw)
    with time_limit(2), pytest.raises(tarfile.ReadError, match="pax record at byte 0"):
        _read(raw)


@pytest.mark.parametrize("records", [
    b"0 path=a\n", b"00 path=a\n", b"x path=a\n", b" path=a\n", b"9path=a\n\n",
    b"3 path=a\n",  # shorter than its "3 path=" prefix
    b"4 =\n", b"7 =abc\n",  # no key before "="
    b"99 path=a\n",  # past the end of the header
    b"9 path=ab",  # no newline at its end
    b"9 pathxa\n",  # no "="
    b"9 p\xffth=a\n",  # key is not UTF-8
    b"9 path=a\n\0\0\0",  # a record of zeros after it
    b"9" * 30 + b" path=a\n",  # a length of many digits
    _record("size", "-4"), _record("size", "1e3"), _record("size", "٣"), _record("size", ""),
    _record("GNU.sparse.map", "0,4"),
], ids=lambda records: repr(records[:24]))
def test_a_bad_pax_record_is_an_error(records):
    with time_limit(2), pytest.raises(tarfile.ReadError):
        _read(_pax(records) + _member(b"a", b"data") + END)


def test_pax_values_that_are_not_utf8_are_kept_as_surrogates():
    assert _read(_pax(b"13 path=\xffa.b\n") + _member(b"a", b"data") + END) == [
        ("\udcffa.b", b"data")]


class _Recording(io.BytesIO):
    """A stream that remembers the largest read asked of it (a file object allocates that)."""

    largest = 0

    def read(self, size=-1):
        self.largest = max(self.largest, size)
        return super().read(size)


@pytest.mark.parametrize("size_field, pax_size, error", [
    (b"\xff" * 12, None, "bad number"),  # negative base-256
    (b"-0000000001\0", None, "out of range"),  # negative octal
    (b"\x80" + (10 ** 15).to_bytes(11, "big"), None, "out of range"),
    (b"\x80" + (60 << 30).to_bytes(11, "big"), None, "unexpected end"),  # allowed, but absent
    (b"77777777777\0", None, "unexpected end"),  # 8 GiB
    (None, str(10 ** 15), "out of range"),
    (None, str(60 << 30), "unexpected end"),
], ids=["base256-negative", "octal-negative", "1e15", "60GiB", "8GiB", "pax-1e15", "pax-60GiB"])
def test_a_huge_or_negative_size_fails_without_allocating_it(size_field, pax_size, error):
    raw = tar_header(b"a", 10, size_field=size_field) + b"x" * 10_000 + END
    if pax_size is not None:
        raw = _pax(_record("size", pax_size)) + raw
    stream = _Recording(raw)
    with time_limit(2), pytest.raises(tarfile.ReadError, match=error):
        list(tar_members(stream))
    assert stream.largest <= 64 << 20


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT],
                         ids=["pax", "gnu", "ustar"])
def test_a_stream_cut_at_a_member_boundary_is_an_error(fmt):
    raw = _archive(fmt)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    last = members[-1]
    for cut in [m.offset for m in members[1:]] + [last.offset_data + -(-last.size // 512) * 512]:
        assert _reference(raw[:cut])  # tarfile takes the cut as the end of the archive
        with pytest.raises(tarfile.ReadError, match="without its end-of-archive block"):
            _read(raw[:cut])


def test_one_zero_block_is_enough_to_end_the_archive():
    member = _member(b"a", b"x")
    assert _read(member + bytes(512)) == _read(member + END) == [("a", b"x")]
    assert _read(bytes(512)) == []
    with pytest.raises(tarfile.ReadError, match="end-of-archive"):
        _read(b"")
    with pytest.raises(tarfile.ReadError, match="truncated tar header"):
        _read(member + bytes(100))


def test_an_extension_header_without_its_member_is_an_error():
    for header in (_pax(_record("path", "a")), _member(b"L", b"name\0", b"L"),
                   _member(b"g", _record("comment", "c"), b"g")):
        with pytest.raises(tarfile.ReadError, match="before its member"):
            _read(_member(b"a", b"x") + header + END)


@pytest.mark.parametrize("raw, error", [
    (_member(b"/etc/passwd", b"x"), "escapes the archive"),
    (_member(b"../x", b"x"), "escapes the archive"),
    (_member(b"a/../../x", b"x"), "escapes the archive"),
    (_member(b"a/..", b"x"), "escapes the archive"),
    (_member(b"x", b"x", prefix=b"/abs"), "escapes the archive"),
    (_member(b"L", b"../x\0", b"L") + _member(b"x", b"x"), "escapes the archive"),
    (_pax(_record("path", "/x")) + _member(b"x", b"x"), "escapes the archive"),
    (_member(b"", b"x"), "empty name"),
    (_pax(_record("path", "/")) + _member(b"x", b"x"), "empty name"),
    (_member(b"L", b"\0", b"L") + _member(b"x", b"x"), "empty name"),
    (_member(b"L", b"n" * (64 << 10) + b"\0", b"L") + _member(b"x", b"x"), "at most"),
    (tar_header(b"L", 1 << 40, b"L"), "at most"),
    (_member(b"L", b"a\0", b"L") + _member(b"L", b"b\0", b"L") + _member(b"x", b"x"),
     "two GNU long names"),
    (_pax(_record("path", "a")) + _pax(_record("path", "b")) + _member(b"x", b"x"),
     "two pax extended headers"),
    (_member(b"L", b"a\0", b"L") + _pax(_record("path", "b")) + _member(b"x", b"x"),
     "both a GNU long name and a pax path"),
    (_member(b"g", _record("path", "a"), b"g") + _member(b"x", b"x"), "global header"),
    (_member(b"L", b"a\0x", b"L")[:-1] + b"y" + _member(b"x", b"x"), "past its size"),
    (_member(b"sparse", b"x", b"S"), "sparse"),
], ids=["absolute", "dotdot", "dotdot-inside", "dotdot-last", "absolute-prefix",
        "dotdot-gnu-long-name", "absolute-pax-path", "empty", "empty-pax-path",
        "empty-gnu-long-name", "long-name-over-64KiB", "long-name-1TiB", "two-long-names",
        "two-pax-headers", "long-name-and-pax-path", "global-path", "data-after-long-name",
        "gnu-sparse"])
def test_names_that_escape_and_doubtful_extension_headers_are_errors(raw, error):
    with time_limit(2), pytest.raises(tarfile.ReadError, match=error):
        _read(raw + END)


def test_a_checksum_mismatch_is_an_error():
    raw = bytearray(_member(b"a", b"x") + END)
    raw[148:155] = b"%06o\0" % (int(raw[148:154], 8) + 1)
    with pytest.raises(tarfile.ReadError, match="checksum"):
        _read(bytes(raw))
