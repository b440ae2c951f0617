"""Unusable inputs are named with a reason, counted, and never turned into samples."""

from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import signal
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import webdataset as wds

from avsep.cli import main as avsep_main
from data_prep.prepare.report import UnitResult
from data_prep.prepare.runner import RunContext, WorkUnit, run_units
from data_prep.prepare.settings import PrepareSettings
from data_prep.prepare.writer import UnitShardWriter


def write_mp4(
    path: Path,
    seconds: float,
    *,
    fps: float | Fraction = 25,
    video: bool = True,
    audio: bool = True,
    silent: bool = False,
    size: tuple[int, int] = (96, 64),
    faststart: bool = False,
) -> Path:
    """A small H.264 + AAC mp4 (either stream optional); the audio is a 440 Hz tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    rate = 44100
    with av.open(str(path), "w", options=options) as container:
        if video:
            vstream = container.add_stream("libx264", rate=fps)
            vstream.width, vstream.height, vstream.pix_fmt = size[0], size[1], "yuv420p"
        if audio:
            astream = container.add_stream("aac", rate=rate)
            astream.layout = "mono"
        if video:
            for i in range(round(seconds * fps)):
                image = np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
                for packet in vstream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in vstream.encode():
                container.mux(packet)
        if audio:
            t = np.arange(round(seconds * rate)) / rate
            tone = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 440 * t)
            tone = tone.astype(np.float32)
            for start in range(0, len(tone), 1024):
                frame = av.AudioFrame.from_ndarray(
                    tone[None, start:start + 1024], format="flt", layout="mono"
                )
                frame.sample_rate, frame.pts = rate, start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = avsep_main(argv)
    return code, capsys.readouterr().err


def run_quietly(argv: list[str]) -> tuple[int, str]:
    """Run the CLI capturing stderr (for module-scoped fixtures, where capsys is unavailable)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = avsep_main(argv)
    return code, err.getvalue()


def read_report(out: Path) -> dict[str, dict]:
    lines = (out / "report.jsonl").read_text().splitlines()
    return {json.loads(line)["source"]: json.loads(line) for line in lines}


# ----------------------------------------------------------------------------- Solos

SOLOS_CASES = {
    # file: (expected code, words the message must contain)
    "Violin/garbage.mp4": ("unreadable", "not a readable media file"),
    "Violin/truncated.mp4": ("truncated", "truncated"),
    "Violin/cut_header.mp4": ("unreadable", "corrupt or truncated"),
    "Cello/noaudio.mp4": ("no_audio", "no audio stream"),
    "Cello/novideo.mp4": ("no_video", "no video stream"),
    "Cello/short.mp4": ("too_short", "no playing span as long as one clip"),
    "Flute/silent.mp4": ("silent", "silent audio track"),
    "Flute/empty.mp4": ("empty_file", "empty file"),
}


@pytest.fixture(scope="module")
def bad_solos(tmp_path_factory):
    raw = tmp_path_factory.mktemp("bad_solos_raw")
    write_mp4(raw / "Violin" / "good.mp4", 7.0)
    (raw / "Violin" / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    whole = write_mp4(raw / "tmp" / "fast.mp4", 10.0, faststart=True).read_bytes()
    (raw / "Violin" / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # index kept
    late = write_mp4(raw / "tmp" / "late.mp4", 8.0).read_bytes()  # index at the end
    (raw / "Violin" / "cut_header.mp4").write_bytes(late[: len(late) - 2000])
    write_mp4(raw / "Cello" / "noaudio.mp4", 7.0, audio=False)
    write_mp4(raw / "Cello" / "novideo.mp4", 7.0, video=False)
    write_mp4(raw / "Cello" / "short.mp4", 3.0)
    write_mp4(raw / "Flute" / "silent.mp4", 7.0, silent=True)
    (raw / "Flute" / "empty.mp4").write_bytes(b"")
    for p in (raw / "tmp").iterdir():
        p.unlink()
    (raw / "tmp").rmdir()
    return raw


@pytest.fixture(scope="module")
def bad_solos_run(bad_solos, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad_solos_out")
    code, err = run_quietly(["prepare", "solos", "--src", str(bad_solos), "--out", str(out),
                             "--jobs", "0", "--val-fraction", "0"])
    return code, err, out


@pytest.mark.parametrize("source", sorted(SOLOS_CASES))
def test_solos_bad_file_is_reported_with_its_reason(bad_solos_run, source):
    _code, stderr, out = bad_solos_run
    expected_code, words = SOLOS_CASES[source]
    entry = read_report(out)[source]
    assert entry["kind"] == "bad_input"
    assert entry["code"] == expected_code, entry
    assert words in entry["reason"]
    assert f"[bad_input] {source}: " in stderr  # also shown on screen


def test_solos_bad_files_are_counted_and_the_run_goes_on(bad_solos_run):
    code, _stderr, out = bad_solos_run
    assert code == 0  # the good video made it
    summary = json.loads((out / "summary.json").read_text())
    expected = {}
    for expected_code, _ in SOLOS_CASES.values():
        expected[expected_code] = expected.get(expected_code, 0) + 1
    assert summary["bad_input"] == expected
    assert summary["units"] == len(SOLOS_CASES) + 1
    assert summary["units_with_samples"] == 1


def test_solos_no_sample_comes_from_a_bad_file(bad_solos_run):
    _, _, out = bad_solos_run
    samples = list(wds.WebDataset(sorted(glob.glob(str(out / "*" / "*.tar"))),
                                  shardshuffle=False).decode())
    assert samples, "the good video should give samples"
    assert {s["json"]["video_id"] for s in samples} == {"good"}
    for sample in samples:
        assert np.abs(sample["audio.npy"]).max() > 0.1  # the tone, not zeros
    assert not list(out.rglob("*.tmp"))


def test_solos_nothing_usable_exits_nonzero(bad_solos, tmp_path, capsys):
    raw = tmp_path / "raw"
    for name in ("Cello/noaudio.mp4", "Violin/garbage.mp4"):
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_bytes((bad_solos / name).read_bytes())
    code, err = run_cli(["prepare", "solos", "--src", str(raw), "--out", str(tmp_path / "o"),
                         "--jobs", "0"], capsys)
    assert code == 2
    assert "nothing usable was produced" in err


def test_solos_strict_stops_at_the_first_problem(bad_solos, tmp_path, capsys):
    code, err = run_cli(["prepare", "solos", "--src", str(bad_solos), "--out",
                         str(tmp_path / "o"), "--jobs", "0", "--strict"], capsys)
    assert code == 2
    assert "stopped (--strict) at: [bad_input]" in err
    # Units come in sorted order: Cello/noaudio.mp4 is the first bad one; nothing after it ran.
    done = sorted(p.name for p in (tmp_path / "o" / "manifest").glob("*.json"))
    assert done == ["Cello__noaudio.json"]


# ------------------------------------------------------------------------------ URMP


def write_piece(
    root: Path,
    name: str,
    seconds: float = 7.0,
    *,
    skip: tuple[str, ...] = (),
    stem_seconds: dict[int, float] | None = None,
    video: str = "ok",
) -> Path:
    """A URMP-like piece folder: stems with tones, AuMix = sum, side-by-side video."""
    folder = root / name
    folder.mkdir(parents=True)
    number, title, *codes = name.split("_")
    rate = 48000
    stems = []
    for k, code in enumerate(codes, start=1):
        length = round((stem_seconds or {}).get(k, seconds) * rate)
        stem = 0.2 * np.sin(2 * np.pi * 220 * k * np.arange(length) / rate)
        stems.append(stem.astype(np.float32))
        if f"stem{k}" not in skip:
            soundfile.write(folder / f"AuSep_{k}_{code}_{number}_{title}.wav", stem, rate)
    if len({len(s) for s in stems}) == 1:
        soundfile.write(folder / f"AuMix_{name}.wav", np.sum(stems, axis=0), rate)
    else:
        soundfile.write(folder / f"AuMix_{name}.wav", stems[0], rate)
    video_path = folder / f"Vid_{name}.mp4"
    if video == "ok":
        write_mp4(video_path, seconds, fps=Fraction(30000, 1001), audio=False,
                  size=(64 * len(codes), 48))
    elif video == "audio_only":
        write_mp4(video_path, seconds, video=False)
    elif video == "garbage":
        video_path.write_bytes(b"\x00\x01 not a video" * 100)
    return folder


URMP_CASES = {
    "02_NoStem_vn_vc": ("missing_stem", "missing stem AuSep_2_vc_02_NoStem.wav"),
    "03_Lengths_vn_vc": ("stem_length", "differ in length"),
    "04_NoVideo_vn_vc": ("missing_video", "missing video Vid_04_NoVideo_vn_vc.mp4"),
    "05_AudioOnly_vn_vc": ("no_video", "Vid_05_AudioOnly_vn_vc.mp4: no video stream"),
    "06_Garbage_vn_vc": ("unreadable", "Vid_06_Garbage_vn_vc.mp4: not a readable media"),
    "notapiece": ("bad_name", "is not NN_Title_code1_code2"),
}


@pytest.fixture(scope="module")
def bad_urmp_run(tmp_path_factory):
    raw = tmp_path_factory.mktemp("bad_urmp_raw")
    write_piece(raw, "01_Good_vn_vc")
    write_piece(raw, "02_NoStem_vn_vc", skip=("stem2",))
    write_piece(raw, "03_Lengths_vn_vc", stem_seconds={2: 6.5})
    write_piece(raw, "04_NoVideo_vn_vc", video="none")
    write_piece(raw, "05_AudioOnly_vn_vc", video="audio_only")
    write_piece(raw, "06_Garbage_vn_vc", video="garbage")
    (raw / "notapiece").mkdir()
    out = tmp_path_factory.mktemp("bad_urmp_out")
    code, err = run_quietly(["prepare", "urmp", "--src", str(raw), "--out", str(out),
                             "--jobs", "0"])
    return code, err, out


@pytest.mark.parametrize("piece", sorted(URMP_CASES))
def test_urmp_bad_piece_is_reported_with_its_reason(bad_urmp_run, piece):
    _code, stderr, out = bad_urmp_run
    expected_code, words = URMP_CASES[piece]
    entry = read_report(out)[piece]
    assert (entry["kind"], entry["code"]) == ("bad_input", expected_code), entry
    assert words in entry["reason"]
    assert f"[bad_input] {piece}: " in stderr


def test_urmp_good_piece_survives_bad_neighbours(bad_urmp_run):
    code, _, out = bad_urmp_run
    assert code == 0
    samples = list(wds.WebDataset(sorted(glob.glob(str(out / "*.tar"))),
                                  shardshuffle=False).decode())
    assert {s["json"]["piece"] for s in samples} == {"01_Good_vn_vc"}
    # 7 s of audio, a 210-frame video at 29.97 fps: one full segment + a zero-padded tail.
    usable = min(7 * 11025, math.floor(210 * 1001 / 30000 * 11025))
    first, last = sorted(samples, key=lambda s: s["json"]["segment"])
    assert first["json"]["valid_samples"] == 65535
    assert last["json"]["valid_samples"] == usable - 65535
    valid = last["json"]["valid_samples"]
    assert last["mix.npy"].shape == (65535,) and last["stems.npy"].shape == (2, 65535)
    assert np.abs(last["mix.npy"][:valid]).max() > 0.1 and not last["mix.npy"][valid:].any()
    assert not last["stems.npy"][:, valid:].any()
    assert last["json"]["num_frames"] == math.ceil(valid * 8 / 11025)
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["bad_input"].values()) == len(URMP_CASES)


# ------------------------------------------------------------------- crash isolation


def crash_on_unit_named_crash(unit: WorkUnit, ctx: RunContext, writer: UnitShardWriter,
                              result: UnitResult) -> None:
    """A stand-in for a decoder that segfaults on one file."""
    if unit.unit == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    writer.write({"__key__": unit.unit, "txt": unit.unit})
    result.samples += 1


def test_a_crashing_decoder_is_isolated_and_reported(tmp_path, capsys):
    names = ["a", "b", "crash", "d"]
    (tmp_path / "raw").mkdir()
    for name in names:
        (tmp_path / "raw" / name).write_bytes(b"x")
    units = [WorkUnit(n, n, n, "test", "", "t") for n in names]
    ctx = RunContext(tmp_path / "raw", tmp_path / "out", PrepareSettings(), ("",))
    code = run_units(crash_on_unit_named_crash, units, ctx, jobs=2)
    assert code == 0
    report = read_report(tmp_path / "out")
    assert report["crash"]["code"] == "decoder_crash"
    keys = sorted(s["__key__"] for s in wds.WebDataset(
        sorted(glob.glob(str(tmp_path / "out" / "*.tar"))), shardshuffle=False))
    assert keys == ["a", "b", "d"]


def test_solos_without_any_val_video_says_so(bad_solos_run):
    _, err, out = bad_solos_run
    assert "no video falls in val with --val-fraction 0" in err
    notes = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert [n["code"] for n in notes if n["unit"] == "" and n["code"] == "no_val"] == ["no_val"]
