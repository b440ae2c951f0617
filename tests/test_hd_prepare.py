"""720p stand-in videos (1280 x 720, the shape of most Solos videos) render and prepare, and
the preparation benchmark's ffmpeg baseline makes 8 fps frames and 11025 Hz mono audio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest
import soundfile

from data_prep.synth.presets import (
    HD_ASPECT,
    PRESETS,
    RunOptions,
    SolosSettings,
    solos_settings,
)
from data_prep.synth.render import DEFAULT_SOUNDFONT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

needs_soundfont = pytest.mark.skipif(
    not Path(DEFAULT_SOUNDFONT).is_file(), reason=f"{DEFAULT_SOUNDFONT} not installed"
)

# One short 720p clip: two playing spans of at least one 65535-sample clip (5.94 s) each.
HD_CLIP = SolosSettings(clips_per_class=1, seconds=7.0, music_pieces=1,
                        span_seconds=(6.2, 6.6), gap_seconds=(0.2, 0.3), frame_height=720,
                        frame_aspect=HD_ASPECT, classes=("Violin",))


def test_the_hd_preset_is_720p_and_the_classic_settings_keep_their_repr():
    hd = PRESETS["hd"]
    assert (hd.solos.frame_width, hd.solos.frame_height) == (1280, 720)
    assert hd.urmp.frame_height == 720
    assert solos_settings("hd", frame_height=360).frame_width == 640
    # stand-in folders made before the aspect existed record this repr: it must not change
    assert "frame_aspect" not in repr(SolosSettings())
    assert "frame_aspect=(16, 9)" in repr(hd.solos)
    # read back from a manifest (JSON lists), the aspect compares equal
    from_json = SolosSettings(frame_height=720, frame_aspect=[16, 9])  # type: ignore[arg-type]
    assert from_json == SolosSettings(frame_height=720, frame_aspect=HD_ASPECT)
    with pytest.raises(ValueError, match="multiple of 18"):
        SolosSettings(frame_height=240, frame_aspect=HD_ASPECT)
    with pytest.raises(ValueError, match="frame aspect"):
        SolosSettings(frame_aspect=(3, 2))


@pytest.fixture(scope="module")
def hd_raw(tmp_path_factory) -> Path:
    from data_prep.synth.solos import generate_solos

    raw = tmp_path_factory.mktemp("hd") / "solos"
    generate_solos(raw, HD_CLIP, RunOptions(jobs=1, progress=False))
    return raw


@needs_soundfont
def test_the_720p_stand_in_renders_and_prepares(hd_raw, tmp_path):
    import webdataset as wds

    from avsep.media import probe
    from data_prep.prepare.solos import prepare_solos

    videos = sorted(hd_raw.glob("*/*.mp4"))
    assert len(videos) == 1
    info = probe(videos[0])
    assert info.video is not None and (info.video.width, info.video.height) == (1280, 720)
    manifest = json.loads((hd_raw / "synth_manifest.json").read_text())
    assert manifest["settings"]["frame_aspect"] == [16, 9]

    out = tmp_path / "shards"
    assert prepare_solos(hd_raw, out, jobs=0) == 0
    shards = sorted(str(p) for p in out.glob("*/*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("rgb8"))
    assert samples
    for sample in samples:
        header = json.loads(sample["json"]) if isinstance(sample["json"], bytes) else sample["json"]
        frames = [v for k, v in sample.items() if k.endswith(".jpg")]
        assert len(frames) == header["num_frames"]
        assert frames[0].shape == (256, 455, 3)  # short side 256, the 16:9 shape kept


@needs_soundfont
def test_the_ffmpeg_baseline_writes_8_fps_jpegs_and_11025_hz_audio(hd_raw, tmp_path):
    import prepare as bench  # benchmarks/prepare.py

    from data_prep.prepare.settings import PrepareSettings

    binary, _ = bench.find_ffmpeg(None)
    if binary is None:
        pytest.skip("no ffmpeg on PATH and no imageio-ffmpeg")
    video = min(hd_raw.glob("*/*.mp4"))
    wall, cpu, jpegs, _ = bench.run_ffmpeg(binary, [video], tmp_path / "ffmpeg", 1, 1,
                                        PrepareSettings())
    assert wall > 0 and cpu > 0
    assert abs(jpegs - HD_CLIP.seconds * 8) <= 1
    audio, rate = soundfile.read(str(tmp_path / "ffmpeg" / "0000" / "audio.wav"))
    assert rate == 11025 and audio.ndim == 1
    assert abs(len(audio) / rate - HD_CLIP.seconds) < 0.1
    first = min((tmp_path / "ffmpeg" / "0000").glob("*.jpg"))
    assert cv2.imread(str(first)).shape == (256, 455, 3)


def test_the_benchmark_says_when_there_is_no_ffmpeg(monkeypatch):
    import prepare as bench  # benchmarks/prepare.py

    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    assert bench.find_ffmpeg(None) == (None, "none")
    assert bench.find_ffmpeg("/opt/ffmpeg") == ("/opt/ffmpeg", "--ffmpeg")


@needs_soundfont
def test_the_stream_reader_gives_decords_frames(hd_raw):
    """Same timestamps, same picks and the same pixels as `FrameReader`, across gaps (seeks
    to a keyframe), a batch that repeats the last frame, and a step back."""
    import numpy as np

    from avsep.media import FrameReader
    from avsep.stream_frames import StreamFrameReader

    video = min(hd_raw.glob("*/*.mp4"))
    size = (455, 256)
    reference = FrameReader(video, size=size)
    times = np.concatenate([0.3 + np.arange(12) / 8, 4.1 + np.arange(10) / 8])
    picks = reference.nearest_frames(times)
    batches = [picks[:12], picks[11:16], picks[16:], picks[:3]]  # repeat, gap, step back
    stream = StreamFrameReader(video, size=size, keep=picks)
    np.testing.assert_array_equal(stream.frame_start_s, reference.frame_start_s)
    np.testing.assert_array_equal(stream.nearest_frames(times), picks)
    assert stream.end_s == reference.end_s
    for batch in batches:
        expected = np.stack(list(reference.read(batch)))
        np.testing.assert_array_equal(np.stack(list(stream.read(batch))), expected)
    stream.close()


def test_the_synth_command_offers_every_preset():
    from avsep.commands.synth import PRESET_NAMES
    from data_prep.synth.presets import PRESETS

    assert set(PRESET_NAMES) == set(PRESETS)
