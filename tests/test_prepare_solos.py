"""`avsep prepare solos`: chunking, split, resume, and the shards read back with webdataset."""

from __future__ import annotations

import glob
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import webdataset as wds

from avsep.media import decode_audio, probe, resample
from data_prep.prepare.report import UnitResult
from data_prep.prepare.settings import PrepareSettings, parse_size
from data_prep.prepare.solos import chunk_bounds, plan_chunks
from data_prep.prepare.split import Part, split_of
from data_prep.prepare.writer import MarkerStore, UnitShardWriter
from tests.av_alignment import best_lag, lag_scores, motion_energy, onset_envelope

RATE = 11025
CLIP = 65535


# ------------------------------------------------------------------------ unit level


@pytest.mark.parametrize("length", [CLIP, 2 * CLIP - 1, 132300, 132301, 400_000, 1_000_003])
def test_chunks_are_equal_contiguous_and_never_shorter_than_a_clip(length):
    max_len = 132300  # 12 s
    chunks = chunk_bounds(1000, 1000 + length, max_len)
    assert chunks[0][0] == 1000 and chunks[-1][1] == 1000 + length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))  # contiguous
    sizes = [b - a for a, b in chunks]
    assert max(sizes) <= max_len and min(sizes) >= CLIP
    assert max(sizes) - min(sizes) <= 1
    assert len(chunks) == math.ceil(length / max_len)


def test_plan_chunks_clips_spans_and_skips_short_ones():
    settings = PrepareSettings()
    spans = [[0.0, 5.0], [6.0, 20.0], [30.0, 50.0]]  # too short / two chunks / runs past end
    chunks, issues = plan_chunks(spans, end_s=40.0, settings=settings, source="V/x.mp4")
    assert {c[0] for c in chunks} == {1, 2}
    assert [(i.kind, i.code) for i in issues] == [("skipped", "span_too_short"),
                                                  ("note", "span_clipped")]
    assert chunks[0][1] == 6 * RATE and chunks[1][2] == 20 * RATE  # span 1 covered exactly
    assert max(c[2] for c in chunks if c[0] == 2) == 40 * RATE  # span 2 clipped to the video


def test_split_depends_on_the_id_only_and_matches_the_fraction():
    ids = [f"video{i}" for i in range(5000)]
    val = [i for i in ids if split_of(i, 0.1) == "val"]
    assert 0.08 < len(val) / len(ids) < 0.12
    assert all(split_of(i, 0.1) == "val" for i in val)  # deterministic
    assert set(val) <= {i for i in ids if split_of(i, 0.3) == "val"}  # growing is monotone


def test_parts_cover_every_unit_exactly_once():
    units = [f"Class/id{i}" for i in range(200)]
    parts = [Part(i, 7).select(units) for i in range(7)]
    assert sorted(u for p in parts for u in p) == sorted(units)
    assert min(len(p) for p in parts) > 10  # roughly balanced
    with pytest.raises(ValueError, match="0-based"):
        Part.parse("7/7")


def test_parse_size():
    assert parse_size("512M") == 512 * 2**20
    assert parse_size("1.5G") == int(1.5 * 2**30)
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("big")


def test_writer_publishes_shards_only_on_commit(tmp_path):
    writer = UnitShardWriter(tmp_path, tmp_path / "train", "solos-train", "abc", 10_000, 3)
    for i in range(7):
        writer.write({"__key__": f"k{i}", "audio.npy": np.zeros(1000, np.float32)})
    assert not list(tmp_path.rglob("*.tar"))  # nothing visible before commit
    shards = writer.commit()
    assert [s.samples for s in shards] == [3, 3, 1]  # split by sample count
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "solos-train-abc-000.tar", "solos-train-abc-001.tar", "solos-train-abc-002.tar"]
    aborted = UnitShardWriter(tmp_path, tmp_path / "train", "solos-train", "def", 10_000, 3)
    aborted.write({"__key__": "x", "txt": "x"})
    aborted.abort()
    assert not list((tmp_path / "train").glob("*def*"))


def test_marker_is_not_complete_when_a_shard_changed(tmp_path):
    writer = UnitShardWriter(tmp_path, tmp_path, "t", "tag", 10**6, 10)
    writer.write({"__key__": "k", "txt": "hello"})
    store = MarkerStore(tmp_path)
    store.save(UnitResult("C/v", "fp1", "C", "train", shards=writer.commit(), samples=1))
    assert store.is_complete("C/v", "fp1") is not None
    assert store.is_complete("C/v", "fp2") is None  # other settings or source
    with open(tmp_path / "t-tag-000.tar", "ab") as f:
        f.write(b"\0" * 512)
    assert store.is_complete("C/v", "fp1") is None


def test_mp4_audio_is_decoded_without_delay(tmp_path):
    """Clicks in an AAC track land on the right 11025 Hz sample (no resampler delay)."""
    rate, clicks_s = 44100, [1.0, 2.5, 3.75]
    path = tmp_path / "clicks.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        audio = np.zeros(5 * rate, np.float32)
        for t in clicks_s:
            audio[round(t * rate)] = 0.9
        for start in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start:start + 1024], format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    resampled = resample(decode_audio(path, info.audio), info.audio.sample_rate, RATE)
    for t in clicks_s:
        window = np.abs(resampled[round(t * RATE) - 50: round(t * RATE) + 50])
        assert abs(int(np.argmax(window)) - 50) <= 1, t


# --------------------------------------------------------------- prepared stand-in


def read_samples(directory: Path) -> list[dict]:
    urls = sorted(glob.glob(str(directory / "*.tar")))
    return list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8"))


@pytest.fixture(scope="module")
def solos_samples(prepared_tiny) -> dict[str, list[dict]]:
    out = prepared_tiny["solos"]
    return {split: read_samples(out / split) for split in ("train", "val")}


@pytest.fixture(scope="module")
def solos_raw_spans(synth_tiny) -> dict[str, list[tuple[float, float]]]:
    spans = json.loads((synth_tiny["solos"] / "solos_timestamps.json").read_text())
    return {vid: [(a / 25, b / 25) for a, b in s] for c in spans.values() for vid, s in c.items()}


def test_solos_samples_have_8_fps_frames_and_11025_hz_audio(solos_samples):
    samples = solos_samples["train"] + solos_samples["val"]
    assert samples
    for sample in samples:
        meta = sample["json"]
        audio = sample["audio.npy"]
        assert meta["sample_rate"] == RATE and audio.dtype == np.float32
        assert audio.shape == (meta["num_samples"],) and len(audio) >= CLIP
        duration = len(audio) / RATE
        frames = sorted(k for k in sample if k.endswith(".jpg"))
        assert frames == [f"{i:03d}.jpg" for i in range(meta["num_frames"])]
        assert abs(len(frames) - 8 * duration) <= 1
        image = sample["000.jpg"]
        assert image.dtype == np.uint8 and min(image.shape[:2]) == 256 and image.shape[2] == 3
        assert np.abs(audio).max() > 0  # never a zero-filled sample


def test_solos_samples_lie_inside_playing_spans(solos_samples, solos_raw_spans):
    """Chunks tile the playing spans exactly: nothing from before, after or between them."""
    covered: dict[str, list[tuple[float, float]]] = {}
    for sample in solos_samples["train"] + solos_samples["val"]:
        meta = sample["json"]
        start, end = meta["start_s"], meta["start_s"] + meta["num_samples"] / RATE
        covered.setdefault(meta["video_id"], []).append((start, end))
        assert any(a - 1 / RATE <= start and end <= b + 1 / RATE
                   for a, b in solos_raw_spans[meta["video_id"]]), meta
    not_playing = 0.0
    for video_id, spans in solos_raw_spans.items():
        chunks = sorted(covered[video_id])
        assert all(x[1] == pytest.approx(y[0]) for x, y in itertools.pairwise(chunks))
        assert sum(b - a for a, b in chunks) == pytest.approx(sum(b - a for a, b in spans),
                                                              abs=2 / RATE)
        not_playing += spans[0][0]
    assert not_playing > 0.5, "the stand-in should start some videos with a non-playing gap"


def test_solos_split_is_by_video(solos_samples):
    train = {s["json"]["video_id"] for s in solos_samples["train"]}
    val = {s["json"]["video_id"] for s in solos_samples["val"]}
    assert train and val
    assert not train & val
    for split, samples in solos_samples.items():
        assert all(split_of(s["json"]["video_id"], 0.25) == split for s in samples)
    keys = [s["__key__"] for s in solos_samples["train"] + solos_samples["val"]]
    assert len(keys) == len(set(keys)) and not any("." in k for k in keys)


def _motion_and_onsets(sample: dict, audio_shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(k for k in sample if k.endswith(".jpg"))
    motion = motion_energy(np.stack([sample[k] for k in names]))
    audio = np.roll(sample["audio.npy"], audio_shift)
    return motion, onset_envelope(audio, RATE, 8, len(motion))


def test_audio_onsets_line_up_with_motion_in_the_frames(solos_samples):
    """The stand-in's instruments jolt on note onsets: lag between them within one frame."""
    samples = solos_samples["train"] + solos_samples["val"]
    lags, scores = lag_scores([_motion_and_onsets(s) for s in samples])
    assert abs(int(lags[np.argmax(scores)])) <= 1, dict(zip(lags.tolist(), scores.round(2)))
    # The measurement can see a misalignment: audio delayed by 3 frames reads as lag -3.
    shifted = [_motion_and_onsets(s, audio_shift=3 * RATE // 8) for s in samples]
    assert abs(best_lag(shifted) + 3) <= 1


# ------------------------------------------------------------------------- resume


def _shard_state(out: Path) -> dict[str, int]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*.tar")}


def test_resume_after_kill_gives_the_same_shards_without_redoing_work(
    synth_tiny, prepared_tiny, tmp_path
):
    raw, reference = synth_tiny["solos"], prepared_tiny["solos"]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "avsep", "prepare", "solos", "--src", str(raw), "--out",
               str(out), "--jobs", "0", "--val-fraction", "0.25"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((out / "manifest").glob("*.json"))) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, "the run finished before it could be killed"
        time.sleep(0.02)
    time.sleep(0.15)  # let it get into the middle of the next video
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = _shard_state(out)
    done_before = {p.name for p in (out / "manifest").glob("*.json")}
    assert finished_before and len(done_before) < len(list(raw.glob("*/*.mp4")))

    rerun = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"{len(done_before)} already done" in rerun.stderr
    after = _shard_state(out)
    for name, mtime in finished_before.items():  # finished work was kept, not redone...
        unit_done = any(name in m.read_text() for m in (out / "manifest").glob("*.json")
                        if m.name in done_before)
        if unit_done:
            assert after[name] == mtime, name
    assert not list(out.rglob("*.tmp"))  # ...leftovers of the killed video are gone
    assert sorted(after) == sorted(_shard_state(reference))  # same shard files as a clean run
    for split in ("train", "val"):
        resumed = {s["__key__"]: s for s in read_samples(out / split)}
        clean = {s["__key__"]: s for s in read_samples(reference / split)}
        assert sorted(resumed) == sorted(clean)  # nothing duplicated or missing
        for key, sample in clean.items():
            np.testing.assert_array_equal(resumed[key]["audio.npy"], sample["audio.npy"])


def test_parts_of_a_job_array_add_up_to_the_whole_run(synth_tiny, prepared_tiny, tmp_path):
    from avsep.cli import main as avsep_main

    out = tmp_path / "parts"
    for index in range(2):
        code = avsep_main(["prepare", "solos", "--src", str(synth_tiny["solos"]), "--out",
                           str(out), "--jobs", "0", "--val-fraction", "0.25",
                           "--part", f"{index}/2"])
        assert code == 0
        done = len(list((out / "manifest").glob("*.json")))
        assert 0 < done <= 13 and (index == 1 or done < 13)  # part 0 alone is not everything
    assert sorted(_shard_state(out)) == sorted(_shard_state(prepared_tiny["solos"]))
    summary = json.loads((out / "summary.json").read_text())
    reference = json.loads((prepared_tiny["solos"] / "summary.json").read_text())
    assert summary["samples"] == reference["samples"]


def test_inspect_summarizes_solos_shards(prepared_tiny, solos_samples, capsys):
    from avsep.cli import main as avsep_main

    out = prepared_tiny["solos"]
    assert avsep_main(["inspect", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    samples = solos_samples["train"] + solos_samples["val"]
    assert summary["kind"] == "solos"
    assert summary["samples"] == len(samples)
    assert summary["videos"] == len({s["json"]["video_id"] for s in samples})
    assert len(summary["labels"]) == len({s["json"]["class"] for s in samples})
    assert summary["bytes"] == sum(p.stat().st_size for p in out.rglob("*.tar"))
    hours = sum(len(s["audio.npy"]) for s in samples) / RATE / 3600
    assert summary["hours"] == pytest.approx(hours)
    assert summary["splits"] == {"train": len(solos_samples["train"]),
                                 "val": len(solos_samples["val"])}
    assert avsep_main(["inspect", str(out)]) == 0
    assert "videos: " in capsys.readouterr().out
