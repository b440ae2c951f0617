"""The lean tar reader against Python's tarfile (the independent reference) and its errors."""

from __future__ import annotations

import io
import tarfile

import pytest

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
