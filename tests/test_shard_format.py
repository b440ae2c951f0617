"""The shard format module: names, header checks, decoding, and the positioned index, which
must find exactly what the streaming parser reads on real prepared shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from avsep.data.clips import sample_header
from avsep.evaluation.music import index_music_shards
from avsep.evaluation.reader import index_urmp_shards, read_segment
from avsep.faults import InputError
from avsep.geometry import ClipSpec
from avsep.shard_format import (
    AUDIO,
    HEADER,
    MIX,
    SOLOS_FIELDS,
    STEMS,
    URMP_FIELDS,
    ShardFormatError,
    check_sample_rate,
    decode_jpeg,
    frame_member,
    index_samples,
    load_npy,
    parse_header,
    parse_player_frame,
    parse_urmp_key,
    player_frame_member,
    solos_key,
    split_member_name,
    urmp_key,
)
from avsep.tarstream import tar_index, tar_members
from data_prep.inspect import read_metadata


# ---------------------------------------------------------------------------- names
def test_keys_and_member_names_round_trip():
    assert urmp_key("05.Entertainer_sax_sax", 3) == "05-Entertainer_sax_sax__seg0003"
    assert parse_urmp_key("05-Entertainer_sax_sax__seg0003") == ("05-Entertainer_sax_sax", 3)
    assert parse_urmp_key("Violin__abc__000_000") is None
    assert solos_key("Violin", "a.b-c_d", 2, 10) == "Violin__a-b-c_d__002_010"
    assert frame_member(7) == "007.jpg" and player_frame_member(2, 41) == "p2.041.jpg"
    assert parse_player_frame("p2.041.jpg") == (2, 41)
    assert parse_player_frame(frame_member(7)) is None and parse_player_frame(MIX) is None
    assert split_member_name("dir/key__x.p0.001.jpg", "s.tar") == ("key__x", "p0.001.jpg")
    with pytest.raises(ShardFormatError, match="s.tar: member 'noext' has no extension"):
        split_member_name("noext", "s.tar")


# ----------------------------------------------------------------------- header checks
def test_a_sample_rate_that_differs_is_an_error_naming_both_rates():
    where = "shards/x.tar: sample 'k'"
    assert check_sample_rate({"sample_rate": 11025}, 11025, where) == 11025
    with pytest.raises(ShardFormatError) as caught:
        check_sample_rate({"sample_rate": 22050}, 11025, where)
    assert str(caught.value) == ("shards/x.tar: sample 'k' has audio at 22050 Hz, the model "
                                 "expects 11025 Hz")
    with pytest.raises(ShardFormatError, match="at 11025 Hz, the config expects 22050 Hz"):
        check_sample_rate({"sample_rate": 11025}, 22050, where, expects="the config")
    for header in ({}, {"sample_rate": "11025"}, {"sample_rate": True}):
        with pytest.raises(ShardFormatError, match="no sample rate .* expects 11025 Hz"):
            check_sample_rate(header, 11025, where)
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize("data, message", [
    (b"{not json", "its json member is not JSON"),
    (b"\xff\xfe", "its json member is not JSON"),
    (b"[1, 2]", "its json member is not an object"),
    (b'{"sample_rate": 11025}', "its json header lacks instruments, players"),
])
def test_a_header_that_does_not_fit_is_an_error_naming_the_sample(data, message):
    with pytest.raises(ShardFormatError, match=f"^s.tar: sample 'k': {message}"):
        parse_header(data, "s.tar: sample 'k'", URMP_FIELDS)


def test_undecodable_members_are_format_errors():
    with pytest.raises(ShardFormatError, match="not a readable .npy array"):
        load_npy(b"\x93NUMPY garbage")
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object))
    with pytest.raises(ShardFormatError):  # pickled objects are refused
        load_npy(buffer.getvalue())
    for data in (b"", b"not a jpeg"):
        with pytest.raises(ShardFormatError, match="undecodable JPEG frame"):
            decode_jpeg(data)


# ------------------------------------------------------ real prepared shards, both readers
def _shards(prepared_tiny) -> list[Path]:
    return sorted(Path(prepared_tiny["solos"]).rglob("*.tar")) + \
        sorted(Path(prepared_tiny["urmp"]).glob("*.tar"))


def test_the_positioned_index_finds_what_the_streaming_parser_reads(prepared_tiny):
    for shard in _shards(prepared_tiny):
        data = shard.read_bytes()
        with open(shard, "rb") as stream:
            streamed = [(m["fname"], m["data"]) for m in tar_members(stream)]
        with open(shard, "rb") as stream:
            entries = list(tar_index(stream))
        assert [(e.name, data[e.offset:e.offset + e.size]) for e in entries] == streamed
        with tarfile.open(shard) as tar:  # and where tarfile says the data lies
            reference = [(m.name, m.offset_data, m.size) for m in tar if m.isfile()]
        assert [(e.name, e.offset, e.size) for e in entries] == reference
        grouped = index_samples(shard)
        assert sum(len(members) for members in grouped.values()) == len(streamed)
        assert all(HEADER in members for members in grouped.values())


def test_prepared_headers_hold_the_fields_the_readers_require(prepared_tiny):
    solos = sorted(Path(prepared_tiny["solos"]).rglob("*.tar"))
    urmp = sorted(Path(prepared_tiny["urmp"]).glob("*.tar"))
    assert solos and urmp
    for shards, fields, member in ((solos, SOLOS_FIELDS, AUDIO), (urmp, URMP_FIELDS, STEMS)):
        for shard in shards:
            index = index_samples(shard)
            for key, header in read_metadata(shard):
                assert set(fields) <= set(header), (shard, key)
                assert member in index[key]
    sample = {"__key__": "k", "__url__": "u", HEADER: json.dumps(
        dict.fromkeys(SOLOS_FIELDS, 1)).encode()}
    assert sample_header(sample)["num_frames"] == 1  # what training's reader takes


def test_a_prepared_shard_cut_at_a_member_boundary_is_truncated_for_every_reader(
        prepared_tiny, tmp_path):
    shard = min(Path(prepared_tiny["urmp"]).glob("*.tar"))
    with tarfile.open(shard) as tar:
        last = [m for m in tar if m.isfile()][-1]
    cut = tmp_path / "urmp-cut.tar"
    cut.write_bytes(shard.read_bytes()[:last.offset])  # whole members, no end blocks
    with pytest.raises(ShardFormatError, match=r"urmp-cut.tar: not a readable tar .*truncated"):
        index_samples(cut)
    with pytest.raises(ShardFormatError, match="truncated"):
        index_urmp_shards([cut])
    with pytest.raises(ShardFormatError, match="truncated"):
        read_metadata(cut)


def _with_rate(shard: Path, out: Path, rate: int) -> Path:
    """A copy of `shard` whose json headers say `rate` (members otherwise unchanged)."""
    with tarfile.open(shard) as source, tarfile.open(out, "w") as sink:
        for member in source:
            data = source.extractfile(member).read() if member.isfile() else b""
            if member.name.endswith(f".{HEADER}"):
                data = json.dumps({**json.loads(data), "sample_rate": rate}).encode()
                member.size = len(data)
            sink.addfile(member, io.BytesIO(data))
    return out


def test_evaluation_readers_name_both_rates(prepared_tiny, tmp_path):
    urmp = _with_rate(min(Path(prepared_tiny["urmp"]).glob("*.tar")), tmp_path / "u.tar", 22050)
    entry = index_urmp_shards([urmp])[0]
    with pytest.raises(ShardFormatError, match=rf"u.tar: sample '{entry.key}' has audio at "
                                               "22050 Hz, the model expects 11025 Hz"):
        read_segment(entry, ClipSpec(image_size=16), 11025)
    solos = min((Path(prepared_tiny["solos"]) / "train").glob("*.tar"))
    assert index_music_shards([solos])  # the Solos format at the expected rate reads
    with pytest.raises(ShardFormatError, match="has audio at 11025 Hz, the model expects "
                                               "22050 Hz"):
        index_music_shards([solos], sample_rate=22050)
