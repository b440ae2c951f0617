"""Separating a user's video: windows and overlap-add, regions, WAVs, errors, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

import avsep
from avsep.cli import main
from avsep.geometry import ClipSpec
from avsep.inference import VideoSource, prepare_model, separate_video
from avsep.inference.regions import (
    Region,
    RegionError,
    check_regions,
    equal_width_regions,
    parse_regions,
    regions_from_heatmap,
    urmp_instruments,
)
from avsep.inference.render import write_mp4
from avsep.inference.windows import OverlapAdd, WindowPlan, taper

SMALL = ClipSpec(image_size=64)


def _duet_video(path: Path, seconds: float, sample_rate: int = 48000, fps: float = 29.97,
                audio: bool = True) -> Path:
    """Two players side by side (red left, green right, 80 x 64 each), a tone each."""
    count = round(seconds * fps)
    frames = np.zeros((count, 64, 160, 3), np.uint8)
    frames[:, 10:60, 15:65] = (255, 0, 0)
    frames[:, 10:60, 95:145] = (0, 255, 0)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    mix = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1800 * t) * (t % 2 < 1))
    return write_mp4(path, iter(frames), fps, mix.astype(np.float32) if audio else None,
                     sample_rate if audio else None)


@pytest.fixture(scope="module")
def duet_20s(tmp_path_factory) -> Path:
    return _duet_video(tmp_path_factory.mktemp("duet") / "Vid_01_Duet_vn_vc.mp4", 20.0)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return avsep.save_checkpoint(path, avsep.create_model("avsep_unittest"),
                                 config={"data": {"image_size": 64}})


@pytest.mark.parametrize("length", [1, 1000, 65535, 65536, 100_000, 262_143])
@pytest.mark.parametrize("hop", [None, 20_000, 65535])
def test_overlap_add_of_the_windows_gives_back_the_signal(length, hop):
    signal = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
    plan = WindowPlan.cover(length, 65535, hop)
    assert plan.starts[0] == 0 and plan.starts[-1] + 65535 >= length
    assert len(plan) == 1 or plan.starts[-2] + 65535 < length  # no window too many
    joined = OverlapAdd(plan, 2)
    for i in range(len(plan)):
        chunk = plan.extract(signal, i)
        assert chunk.shape == (2, 65535)
        joined.add(i, chunk)
    np.testing.assert_allclose(joined.result(), signal, rtol=1e-5, atol=1e-5)


def test_overlap_add_weights_sum_to_one_and_cross_fade():
    plan = WindowPlan.cover(3 * 1000, 1000, 500)
    joined = OverlapAdd(plan, 1)
    for i in range(len(plan)):  # window i outputs the constant i
        joined.add(i, np.full((1, 1000), float(i), np.float32))
    out = joined.result()[0]
    assert out[0] == 0 and out[-1] == len(plan) - 1
    w = taper(1000)
    # In the overlap of windows 0 and 1, the output is w1 / (w0 + w1): a monotonic crossfade.
    overlap = out[500:1000]
    np.testing.assert_allclose(overlap, w[:500] / (w[500:] + w[:500]), rtol=1e-5)
    assert np.all(np.diff(overlap) >= 0)
    with pytest.raises(ValueError, match="window 0 was added twice"):
        joined.add(0, np.zeros((1, 1000), np.float32))


def test_regions_parse_and_bad_strings_say_what_is_wrong():
    assert parse_regions("0,0,80,64; 80,0,160,64") == [Region(0, 0, 80, 64), Region(80, 0, 160, 64)]
    bad = {
        "": "no regions given",
        "0,0,10": r"region 1 \('0,0,10'\): expected 4 integers x0,y0,x1,y1, got 3",
        "0,0,10,10;a,0,5,5": r"region 2 \('a,0,5,5'\): 'a' is not an integer",
        "0,0,10,10;;": "region 2 is empty",
        "5,0,5,10": r"region 1 \('5,0,5,10'\) is empty: need x0 < x1",
        "0,0,1.5,4": "'1.5' is not an integer",
        "-1,0,5,5": "must not be negative",
    }
    for text, message in bad.items():
        with pytest.raises(RegionError, match=message):
            parse_regions(text)
    with pytest.raises(RegionError, match=r"region 2 \(80, 0, 161, 64\) extends beyond the "
                                          r"160x64 frame"):
        check_regions(parse_regions("0,0,80,64;80,0,161,64"), (64, 160))


def test_automatic_regions_equal_widths_urmp_names_and_heatmap_blobs():
    assert urmp_instruments("x/Vid_01_Jupiter_vn_vc.mp4") == ["vn", "vc"]
    assert urmp_instruments("Vid_24_Pirates_vn_vn_va_vc.mp4") == ["vn", "vn", "va", "vc"]
    assert urmp_instruments("concert.mp4") is None
    assert urmp_instruments("Vid_01_Jupiter.mp4") is None
    regions = equal_width_regions((64, 161), 3, ["vn", "va", "vc"])
    assert [(r.x0, r.x1, r.label) for r in regions] == [(0, 54, "vn"), (54, 107, "va"),
                                                        (107, 161, "vc")]
    heatmap = np.zeros((4, 7), np.float32)
    heatmap[1:3, 5] = 2.0  # right blob, strongest
    heatmap[2, 1] = 1.0  # left blob
    heatmap[0, 3] = 0.1  # below the threshold
    found = regions_from_heatmap(heatmap, (64, 107), (96, 160))
    assert len(found) == 2
    left, right = found
    # Left cell (2, 1): model centre (40, 24) -> frame (60, 35.9); grown by a cell each side.
    assert left.x0 < 36 < left.x1 and left.y0 < 60 < left.y1 and left.x1 < 80
    assert right.x0 > 80 and right.y0 < 36 and right.y1 > 60
    assert regions_from_heatmap(np.zeros((4, 7)), (64, 107), (96, 160)) == [Region(0, 0, 160, 96)]


class PassThrough(nn.Module):
    """A 'separator' that gives each of its N sources 1/N of the window's mixture."""

    condition_kind = "frames"
    sample_rate = 11025

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def separate(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(condition.shape))
        n = condition.shape[1]
        return mix[:, None].expand(-1, n, -1) / n


def test_windows_and_overlap_add_cover_a_video_of_any_length(tmp_path):
    video = _duet_video(tmp_path / "odd.mp4", 13.37, sample_rate=44100)
    model = PassThrough()
    separation = separate_video(video, prepare_model(model, "cpu", SMALL), players=2,
                                batch_size=3, progress=False)
    source = VideoSource(video)
    # The halves, put back together over all windows, are the mixture at the model's rate...
    np.testing.assert_allclose(separation.model_sources.sum(axis=0), source.audio, atol=1e-5)
    assert separation.model_sources.shape == (2, len(source.audio))
    # ... every window got each region's crops: (batch, 2 regions, 3, 3 frames, 64, 64)
    assert {c[1:] for c in model.calls} == {(2, 3, 3, 64, 64)}
    assert sum(c[0] for c in model.calls) == len(WindowPlan.cover(len(source.audio), 65535))
    # ... and at the input's rate the residual is the mixture minus the sources.
    np.testing.assert_allclose(separation.residual,
                               source.native_audio - separation.sources.sum(axis=0), atol=1e-6)


def test_separate_command_on_a_20s_ensemble_video(duet_20s, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["separate", str(duet_20s), "--checkpoint", str(tiny_checkpoint),
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.glob("*.wav"))
    assert names == ["region_1_vn.wav", "region_2_vc.wav", "residual.wav"]  # from the name
    decoded = VideoSource(duet_20s).native_audio
    waves = {}
    for name in names:
        info = soundfile.info(str(out / name))
        assert info.samplerate == 48000 and info.frames == len(decoded)
        assert abs(info.frames / 48000 - 20.0) < 0.05
        waves[name], _ = soundfile.read(str(out / name), dtype="float32")
    np.testing.assert_allclose(waves["residual.wav"],
                               decoded - waves["region_1_vn.wav"] - waves["region_2_vc.wav"],
                               atol=1e-5)
    assert np.abs(waves["region_1_vn.wav"]).max() > 0  # something was separated


def test_separate_command_with_given_regions_and_from_the_heatmap(tiny_checkpoint, tmp_path,
                                                                   capsys):
    short = _duet_video(tmp_path / "concert.mp4", 4.0)
    args = ["--checkpoint", str(tiny_checkpoint), "--quiet"]
    assert main(["separate", str(short), *args, "--out", str(tmp_path / "a"),
                 "--regions", "0,0,80,64;80,0,160,64;40,0,120,64"]) == 0
    assert len(list((tmp_path / "a").glob("region_*.wav"))) == 3
    assert main(["separate", str(short), *args, "--out", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "(heatmap)" in printed
    assert (tmp_path / "b" / "residual.wav").is_file()
    assert len(list((tmp_path / "b").glob("region_*.wav"))) >= 1


def test_separate_command_errors_are_clear(tiny_checkpoint, tmp_path, capsys):
    video = _duet_video(tmp_path / "concert.mp4", 2.0)
    args = ["--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(["separate", str(video), *args, "--regions", "0,0,80"]) == 2
    assert "region 1 ('0,0,80'): expected 4 integers" in capsys.readouterr().err
    assert main(["separate", str(video), *args, "--regions", "0,0,80,64;80,0,200,64"]) == 2
    assert "extends beyond the 160x64 frame" in capsys.readouterr().err
    silent = _duet_video(tmp_path / "silent.mp4", 2.0, audio=False)
    assert main(["separate", str(silent), *args]) == 2
    assert "silent.mp4: no audio stream" in capsys.readouterr().err
    assert main(["separate", str(video), *args, "--classes", "vn,banjo"]) == 2
    assert "unknown instrument 'banjo'" in capsys.readouterr().err


def test_class_conditioned_models_need_classes(tmp_path, capsys):
    torch.manual_seed(0)
    checkpoint = avsep.save_checkpoint(tmp_path / "mhu.pt", avsep.create_model("mhunet_unittest"))
    video = _duet_video(tmp_path / "concert.mp4", 3.0)
    args = ["--checkpoint", str(checkpoint), "--quiet"]
    assert main(["separate", str(video), *args, "--out", str(tmp_path / "a")]) == 2
    assert "needs --classes" in capsys.readouterr().err
    assert main(["separate", str(video), *args, "--out", str(tmp_path / "b"), "--players", "2"]
                ) == 2
    assert "--classes with one code or class name per region" in capsys.readouterr().err
    assert main(["separate", str(video), *args, "--out", str(tmp_path / "c"), "--players", "2",
                 "--classes", "vn,vc,fl"]) == 2
    assert "gives 3 instrument(s) for 2 region(s)" in capsys.readouterr().err
    assert main(["separate", str(video), *args, "--out", str(tmp_path / "d"),
                 "--classes", "vn,Cello"]) == 0
    assert sorted(p.name for p in (tmp_path / "d").glob("*.wav")) == [
        "region_1_vn.wav", "region_2_Cello.wav", "residual.wav"]
    # A URMP-style name gives the classes.
    urmp = _duet_video(tmp_path / "Vid_03_Duo_fl_cl.mp4", 3.0)
    assert main(["separate", str(urmp), *args, "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "region_2_cl.wav").is_file()
