"""Localization heatmaps: time alignment, spatial mapping, rendering, accuracy, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import matplotlib
import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F

import avsep
import avsep.inference.localize
from avsep.cli import main
from avsep.evaluation.localization import (
    heat_figures,
    negative_audio_checks,
    player_boxes,
    region_iou,
    same_scale_figures,
    score_piece,
    success_scores,
)
from avsep.geometry import ClipSpec
from avsep.inference import localize_video, prepare_model, render_localization
from avsep.inference.localize import cell_centres, output_times, upsample_heatmap
from avsep.inference.render import colormap_lut, overlay, write_mp4
from avsep.inference.windows import WindowPlan, stft_frame_spans
from avsep.models import SoundOfPixels, SoundOfPixelsConfig
from avsep.models.localization import Localizer
from avsep.models.vision import IMAGENET_MEAN, IMAGENET_STD

RATE = 11025
SMALL = ClipSpec(image_size=64)  # 64-pixel short side: a 4 x 7 vision map, fast on CPU


class ColourProbe(SoundOfPixels):
    """A stand-in model whose pixel-wise masks are known in advance (`ColourLocalizer`).

    The mask of a vision-map location keeps, for each colour channel c, the frequency band
    `bands[c]` in proportion to the mean of channel c over the location's 16 x 16 block
    (averaged over the clip's frames). A red object thus "sounds" in the red band.
    """

    def __init__(self, bands: list[tuple[float, float] | None]) -> None:
        super().__init__(SoundOfPixelsConfig(num_channels=4, ngf=4, depth=3, vision_arch="tiny"))
        freqs = torch.arange(512) * RATE / 1022
        rows = [((freqs >= b[0]) & (freqs < b[1])).float() if b else torch.zeros(512)
                for b in bands]
        self.register_buffer("band_masks", torch.stack(rows))  # (3, F)

    def colours(self, frames: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
        rgb = (frames * std + mean).mean(dim=2)  # (B, 3, H, W) in [0, 1]
        return F.avg_pool2d(rgb, 16, ceil_mode=True)


class ColourLocalizer(Localizer):
    """The localization of a `ColourProbe`: its known masks instead of the nets'."""

    def pixelwise_masks(self, mix, frames, threshold=False):
        masks = torch.einsum("bchw,cf->bhwf", self.model.colours(frames), self.model.band_masks)
        tf = 1 + mix.shape[1] // 256
        return masks[..., None].expand(*masks.shape, tf).contiguous()

    def location_masks(self, mix, frames, chunk_size=32):
        power = self.model.spectrogram(mix)["mag"].square()  # (B, F, Tf)
        masks = self.pixelwise_masks(mix, frames)  # (B, h, w, F, Tf)
        b, h, w = masks.shape[:3]
        flat = masks.reshape(b, h * w, *masks.shape[3:])
        chunks = (flat[:, i:i + chunk_size] for i in range(0, h * w, chunk_size))
        return power, (h, w), chunks


@pytest.fixture(autouse=True)
def probes_localize_by_colour(monkeypatch):
    """Inference localizes a `ColourProbe` with its `ColourLocalizer`."""
    def localizer(model, gate=None):
        return (ColourLocalizer if isinstance(model, ColourProbe) else Localizer)(model, gate)

    monkeypatch.setattr(avsep.inference.localize, "Localizer", localizer)


def write_video(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None,
                sample_rate: int = 44100) -> Path:
    """frames (N, H, W, 3) uint8 -> an H.264 + AAC mp4 (no audio stream if audio is None)."""
    return write_mp4(path, iter(frames), fps, audio, sample_rate if audio is not None else None)


def tone(seconds: float, freq: float, sample_rate: int, start: float = 0.0,
         stop: float | None = None, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    on = (t >= start) & (t < (seconds if stop is None else stop))
    return (amplitude * np.sin(2 * np.pi * freq * t) * on).astype(np.float32)


def red_square_frames(count: int) -> np.ndarray:
    frames = np.zeros((count, 96, 160, 3), np.uint8)
    frames[:, 32:64, 16:48] = (255, 0, 0)
    return frames


@pytest.fixture(scope="module")
def tone_burst_video(tmp_path_factory) -> Path:
    """14 s at 25 fps, a red square on black; a 1 kHz tone only from 7.3 s to 9.1 s."""
    path = tmp_path_factory.mktemp("burst") / "burst.mp4"
    return write_video(path, red_square_frames(14 * 25), 25.0,
                       tone(14.0, 1000.0, 44100, start=7.3, stop=9.1))


def test_output_frames_are_the_videos_frames_at_the_chosen_fps():
    times = output_times(19.99, 8.0)
    assert len(times) == 160 and times[-1] == pytest.approx(159 / 8)
    assert len(output_times(20.0, 8.0)) == 160  # a frame starting at 20.0 s is past the end
    assert len(output_times(0.01, 8.0)) == 1


def test_stft_frame_spans_pick_the_frames_around_each_time():
    plan = WindowPlan.cover(5 * 65535, 65535, 32767)
    times = np.arange(0, 30, 0.125)
    spans = stft_frame_spans(plan, 2, times, RATE, 8.0, 256, 256)
    start = plan.starts[2]
    # Exactly the times inside window 2, in order.
    inside = np.flatnonzero((times * RATE >= start) & (times * RATE < start + 65535))
    np.testing.assert_array_equal(spans.out, inside)
    for i, lo, hi in zip(spans.out, spans.lo, spans.hi):
        centres = (np.arange(lo, hi) * 256 + start) / RATE  # frame centre times
        assert np.all(np.abs(centres - times[i]) <= 1 / 16 + 1e-9)
        # No frame that is within half a period was left out (except at the window's end).
        if 0 < lo and hi < 256:
            assert abs(((lo - 1) * 256 + start) / RATE - times[i]) > 1 / 16 - 1e-9
            assert abs((hi * 256 + start) / RATE - times[i]) >= 1 / 16 - 1e-9
    values = np.random.default_rng(0).random((3, 256)).astype(np.float32)
    values[:, :100] *= 1e6  # loud, then quiet: the running sums must not swamp the quiet part
    means = spans.mean_over_frames(values)
    assert means.shape == (len(spans.out), 3)
    for n, (lo, hi) in enumerate(zip(spans.lo, spans.hi)):
        np.testing.assert_allclose(means[n], values[:, lo:hi].mean(axis=1), rtol=1e-5)


def test_heatmap_energy_over_time_follows_the_sound(tone_burst_video):
    probe = prepare_model(ColourProbe([(0.0, 6000.0), None, None]), "cpu", SMALL)
    loc = localize_video(tone_burst_video, probe, fps=8.0, progress=False)
    assert loc.heatmaps.shape == (112, 4, 7)  # 14 s at 8 fps; 64 x 107 model frame
    np.testing.assert_allclose(loc.times_s, np.arange(112) / 8)
    energy = loc.heatmaps.reshape(len(loc), -1).sum(axis=1)
    playing = energy[(loc.times_s > 7.3 + 0.15) & (loc.times_s < 9.1 - 0.15)]
    level = np.median(playing)
    assert level > 0 and np.all(np.abs(playing / level - 1) < 0.05)
    silent = (loc.times_s < 7.3 - 0.15) | (loc.times_s > 9.1 + 0.15)
    assert np.all(energy[silent] < 1e-3 * level)
    # The onset and offset land on the right output frames: half-level crossings within
    # one frame period of the true times.
    rising = loc.times_s[np.argmax(energy > level / 2)]
    falling = loc.times_s[len(energy) - np.argmax(energy[::-1] > level / 2) - 1]
    assert abs(rising - 7.3) <= 0.125 and abs(falling - 9.1) <= 0.125


def test_heatmap_peak_lies_on_the_sounding_object(tone_burst_video):
    probe = prepare_model(ColourProbe([(0.0, 6000.0), None, None]), "cpu", SMALL)
    loc = localize_video(tone_burst_video, probe, fps=2.0, progress=False)
    heat = loc.frame_heatmap(16)  # t = 8 s, while the tone plays
    assert heat.shape == (96, 160)
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    assert 32 <= row < 64 and 16 <= col < 48


def test_pixel_scores_weigh_each_locations_energy_by_the_sources_shares():
    torch.manual_seed(0)
    model = Localizer(SoundOfPixels(SoundOfPixelsConfig(num_channels=4, ngf=4, depth=3,
                                                        vision_arch="tiny")).eval())
    mix = torch.randn(1, 8191) * 0.1
    frames = torch.randint(0, 256, (1, 3, 1, 64, 96), dtype=torch.uint8)
    low, high = torch.randn(2, 8191) * 0.1
    sources = torch.stack([low, high])[None]  # (1, 2, T)
    scores = model.pixel_scores(mix, frames, sources, chunk_size=5)
    masks = model.pixelwise_masks(mix, frames)[0]  # (h, w, F, Tf), the full-mask path
    tf = masks.shape[-1]
    located = (masks * model.model.spectrogram(mix)["mag"][0, :, :tf]).square()
    power = model.model.spectrogram(sources[0])["mag"][..., :tf].square()  # (2, F, Tf)
    share = power / power.sum(dim=0)
    for n in range(2):
        expected = (located * (share[n] - (1 - share[n]))).sum(dim=2)  # (h, w, Tf)
        torch.testing.assert_close(scores[0, n], expected, rtol=1e-4, atol=1e-6)
    # One source is the whole mixture, the other silent: +-1 everywhere, the energy map.
    whole = model.pixel_scores(mix, frames, torch.stack([mix[0], torch.zeros(8191)])[None])
    energy = model.pixel_energies(mix, frames, per_frame=True)
    torch.testing.assert_close(whole[:, 0], energy, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(whole[:, 1], -energy, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="expected sources"):
        model.pixel_scores(mix, frames, sources[:, :, :100])


def test_upsampled_cell_lands_on_its_block():
    model_size, frame_size = (64, 107), (96, 160)
    heatmap = np.zeros((4, 7), np.float32)
    heatmap[2, 5] = 1.0
    heat = upsample_heatmap(heatmap, model_size, frame_size)
    row, col = np.unravel_index(np.argmax(heat), heat.shape)
    # Cell (2, 5) sees model pixels rows 32..48, cols 80..96: centre (40, 88) -> frame.
    assert abs(row - 40 * 96 / 64) <= 1.5 and abs(col - 88 * 160 / 107) <= 1.5
    ys, xs = cell_centres(model_size, (4, 7), frame_size)
    assert ys[2] == pytest.approx(60.0) and xs[5] == pytest.approx(88 * 160 / 107)
    assert xs[6] == pytest.approx(104 * 160 / 107)  # the last cell (96..112) overhangs 107
    _, xs = cell_centres((64, 97), (4, 7), frame_size)  # centre 104 is off the 97-px frame
    assert xs[6] == pytest.approx(96.5 * 160 / 97)


def test_overlay_blends_the_colour_map():
    lut = colormap_lut("viridis")
    expected = np.round(np.array(matplotlib.colormaps["viridis"](1.0)[:3]) * 255).astype(int)
    np.testing.assert_array_equal(lut[255], expected)
    frame = np.full((2, 2, 3), 100, np.uint8)
    heat = np.array([[0.0, 1.0], [0.5, 1.0]])
    np.testing.assert_array_equal(overlay(frame, heat, lut, 0.0), frame)
    np.testing.assert_array_equal(overlay(frame, heat, lut, 1.0)[0, 1], lut[255])
    half = overlay(frame, heat, lut, 0.5)[0, 0].astype(float)
    np.testing.assert_allclose(half, (100 + lut[0].astype(float)) / 2, atol=1)
    with pytest.raises(ValueError, match="unknown colour map 'nope'"):
        colormap_lut("nope")


def test_overlay_video_has_both_streams_and_the_inputs_duration(tone_burst_video, tmp_path):
    probe = prepare_model(ColourProbe([(0.0, 6000.0), None, None]), "cpu", SMALL)
    loc = localize_video(tone_burst_video, probe, fps=8.0, progress=False)
    files = render_localization(loc, tone_burst_video, tmp_path, keyframe_every_s=4.0,
                                progress=False)
    with av.open(str(files.video)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == 44100
        assert (video.codec_context.height, video.codec_context.width) == (96, 160)
        frames = sum(1 for _ in container.decode(video=0))
        video_s = float(video.duration * video.time_base)
        audio_s = float(audio.duration * audio.time_base)
    assert frames == 112
    assert video_s == pytest.approx(14.0, abs=0.13) and audio_s == pytest.approx(14.0, abs=0.05)
    assert [p.name[:11] for p in files.keyframes] == [f"frame_{i:05d}" for i in (0, 32, 64, 96)]
    assert files.contact_sheet.is_file()


def _urmp_piece(root: Path, seconds: float = 10.0) -> Path:
    """A URMP-layout duet: a red player (440 Hz, 0-6 s) left, a green one (2 kHz, 3-10 s)."""
    folder = root / "01_Probe_vn_fl"
    folder.mkdir(parents=True)
    frames = np.zeros((round(seconds * 25), 96, 160, 3), np.uint8)
    frames[:, 20:80, 10:70] = (255, 0, 0)
    frames[:, 20:80, 90:150] = (0, 255, 0)
    stems = [tone(seconds, 440.0, 48000, 0.0, 6.0), tone(seconds, 2000.0, 48000, 3.0)]
    for k, (stem, code) in enumerate(zip(stems, ("vn", "fl")), start=1):
        soundfile.write(str(folder / f"AuSep_{k}_{code}_01_Probe.wav"), stem, 48000)
    soundfile.write(str(folder / "AuMix_01_Probe_vn_fl.wav"), stems[0] + stems[1], 48000)
    write_video(folder / "Vid_01_Probe_vn_fl.mp4", frames, 25.0, stems[0] + stems[1], 48000)
    # The players' squares as the stand-in's boxes (one entry per video frame).
    (folder / "Boxes_01_Probe_vn_fl.json").write_text(json.dumps(
        {"fps": 25.0, "frame_size": [96, 160],
         "boxes": [[[10, 20, 70, 80], [90, 20, 150, 80]]] * len(frames)}))
    return folder


def test_localization_accuracy_rewards_the_right_player_only(tmp_path):
    folder = _urmp_piece(tmp_path)
    right = prepare_model(ColourProbe([(300.0, 700.0), (1500.0, 3000.0), None]), "cpu", SMALL)
    wrong = prepare_model(ColourProbe([(1500.0, 3000.0), (300.0, 700.0), None]), "cpu", SMALL)
    good = score_piece(folder, right, fps=8.0)
    bad = score_piece(folder, wrong, fps=8.0)
    # Active frames: 0-6 s for player 1, 3-10 s for player 2 (give or take a frame at edges).
    assert abs(good.evaluated[0] - 48) <= 2 and abs(good.evaluated[1] - 56) <= 2
    assert good.hits == good.evaluated and good.accuracy == 1.0
    assert bad.hits == [0, 0] and bad.accuracy == 0.0
    # 7 map columns; cell centres 0-2 fall in the left half of the frame, 3-6 in the right.
    assert good.chance == pytest.approx([3 / 7, 4 / 7])
    # The class-aware IoU against the players' boxes: the right player's region lies in its
    # square, the wrong one's in the other square.
    assert [len(v) for v in good.ious] == good.evaluated
    assert good.scores["ciou"] >= 0.9 and bad.scores["ciou"] == 0.0
    assert good.scores["auc"] > bad.scores["auc"]


def test_player_boxes_from_the_stand_ins_file_or_the_columns(tmp_path):
    folder = tmp_path / "01_Probe_vn_fl"
    folder.mkdir()
    times = np.array([0.0, 0.1, 0.5])
    columns = player_boxes(folder, times, (96, 160), 2)
    np.testing.assert_array_equal(columns[2], [[0, 0, 80, 96], [80, 0, 160, 96]])
    # Drawn at 10 fps on a 48 x 80 frame: frame i is shown from i / 10 s; twice the size here.
    boxes = [[[i, 1, 10 + i, 20], [40, 2, 60, 30]] for i in range(4)]
    (folder / "Boxes_01_Probe_vn_fl.json").write_text(
        json.dumps({"fps": 10.0, "frame_size": [48, 80], "boxes": boxes}))
    drawn = player_boxes(folder, times, (96, 160), 2)
    np.testing.assert_allclose(drawn[:, 0, 0], [0, 2, 6])  # frames 0, 1 and the last (3)
    np.testing.assert_allclose(drawn[1, 1], [80, 4, 120, 60])
    with pytest.raises(ValueError, match="expected boxes of 3 players"):
        player_boxes(folder, times, (96, 160), 3)


def test_heat_figures_by_hand():
    boxes = np.zeros((2, 2, 4), bool)
    boxes[:, :, :2] = True  # half of the cells
    heat = np.zeros((2, 2, 4))
    heat[0, 0, 0] = 3.0  # all heat in a box, on one cell: peak / mean = 3 / (3 / 8)
    heat[1] = 1.0        # frame 2: uniform
    figures = heat_figures(heat, boxes)
    assert figures["in_boxes"] == pytest.approx((1.0 + 0.5) / 2)
    assert figures["contrast"] == pytest.approx((8.0 + 1.0) / 2)
    assert figures["energy"] == pytest.approx((3.0 + 8.0) / 2)
    assert figures["box_share"] == 0.5 and figures["frames_with_heat"] == 2
    silent = heat_figures(np.zeros((2, 2, 4)), boxes)
    assert silent["frames_with_heat"] == 0 and silent["energy"] == 0.0
    assert math.isnan(silent["in_boxes"]) and math.isnan(silent["contrast"])


def test_same_scale_figures_by_hand():
    boxes = np.zeros((2, 2, 4), bool)
    boxes[:, :, :2] = True
    true = np.zeros((2, 2, 4))
    true[0, 0, 0] = 4.0  # frame 1: all in a box, mean 0.5
    true[1] = 1.0        # frame 2: uniform, mean 1, half of it (4) in the boxes
    # The same layout at a tenth of the heat: the per-map figures cannot tell it apart.
    faint = true / 10.0
    assert heat_figures(faint, boxes)["in_boxes"] == heat_figures(true, boxes)["in_boxes"]
    figures = same_scale_figures(faint, true, boxes)
    assert figures["boxed_heat"] == pytest.approx(0.1)
    # Peaks 0.4 and 0.1 over the true maps' means 0.5 and 1.
    assert figures["peak_over_true_mean"] == pytest.approx((0.4 + 0.1) / (0.5 + 1.0))
    own = same_scale_figures(true, true, boxes)
    assert own["boxed_heat"] == 1.0
    assert own["peak_over_true_mean"] == pytest.approx((4.0 + 1.0) / 1.5)
    # A frame where the true audio is all but silent does not blow the ratio up (frame by
    # frame it would be 1 / 1e-12 there).
    quiet = true.copy()
    quiet[1] = 1e-12
    louder = quiet.copy()
    louder[1, 0, 0] = 1.0
    assert same_scale_figures(louder, quiet, boxes)["peak_over_true_mean"] == pytest.approx(
        (4.0 + 1.0) / (0.5 + 1e-12))
    # Heat moved off the players: none in the boxes, its peak outside them.
    outside = np.zeros((2, 2, 4))
    outside[:, 1, 3] = 2.0
    assert same_scale_figures(outside, true, boxes)["boxed_heat"] == 0.0
    assert math.isnan(same_scale_figures(true, np.zeros_like(true), boxes)["boxed_heat"])
    with pytest.raises(ValueError, match="of one shape"):
        same_scale_figures(true[:1], true, boxes)


def test_negative_audio_checks_run_the_same_video_with_other_sounds(tmp_path):
    folder = _urmp_piece(tmp_path, seconds=6.0)
    other = _urmp_piece(tmp_path / "other", seconds=4.0)
    probe = prepare_model(ColourProbe([(300.0, 700.0), (1500.0, 3000.0), None]), "cpu", SMALL)
    figures = negative_audio_checks(folder, probe, offscreen=other / f"Vid_{other.name}.mp4",
                                    fps=4.0)
    assert set(figures) == {"true", "silent", "noise", "offscreen"}
    assert figures["true"]["energy"] == 1.0 and figures["true"]["boxed_heat"] == 1.0
    assert figures["true"]["peak_over_true_mean"] >= 1.0  # a peak is at least the mean
    assert figures["silent"]["energy"] == 0.0 and figures["silent"]["frames_with_heat"] == 0
    assert figures["silent"]["boxed_heat"] == 0.0
    # The probe keeps the sound of a band where its colour is: its heat lies on the squares.
    assert figures["true"]["in_boxes"] > 0.8 > figures["true"]["box_share"]
    assert figures["noise"]["frames_with_heat"] > 0
    # The per-player heat (what `avsep localize --players` draws) is checked the same way.
    separating = prepare_model(
        BandSeparatingProbe([(300.0, 700.0), (1500.0, 3000.0), (0.0, 0.0)]), "cpu", SMALL)
    drawn = negative_audio_checks(folder, separating, fps=4.0, heat="players",
                                  offscreen=other / f"Vid_{other.name}.mp4")
    assert drawn["true"]["energy"] == 1.0 and drawn["silent"]["frames_with_heat"] == 0
    assert drawn["true"]["in_boxes"] > 0.8 > drawn["true"]["box_share"]
    with pytest.raises(ValueError, match="heat must be 'total' or 'players'"):
        negative_audio_checks(folder, probe, offscreen=other, heat="both")


def test_region_iou_and_success_scores_by_hand():
    box = np.zeros((4, 6), bool)
    box[:, :3] = True  # the left player's column
    inside = box.astype(float) * 5.0
    assert region_iou(inside, box) == 1.0
    assert region_iou(5.0 - inside, box) == 0.0  # all heat in the other player's column
    assert region_iou(np.ones((4, 6)), box) == pytest.approx(12 / 24)  # flat: every cell
    assert region_iou(-np.ones((4, 6)), box) == pytest.approx(12 / 24)  # no heat: every cell
    # Evidence against (the other player's cells) must not lift the background to mid-level.
    signed = np.zeros((4, 6))
    signed[:, :3], signed[:, 3:] = 1.0, -1.0
    assert region_iou(signed, box) == 1.0
    one_cell = np.zeros((4, 6))
    one_cell[0, 0] = -1.0  # negative evidence counts as none
    one_cell[1, 1] = 2.0
    assert region_iou(one_cell, box) == pytest.approx(1 / 12)
    assert success_scores([1.0]) == pytest.approx({"ciou": 1.0, "auc": 1.0})
    # IoU 0: only the threshold 0 succeeds, the first trapezoid (1 + 0) / 2 * 0.05.
    assert success_scores([0.0]) == pytest.approx({"ciou": 0.0, "auc": 0.025})
    # IoU 0.3 and 0.6: success 1 up to 0.3, 1/2 up to 0.6, then 0.
    scores = success_scores([0.3, 0.6])
    expected_auc = 0.3 + 0.025 * 1.5 + 0.25 * 0.5 + 0.025 * 0.5
    assert scores["ciou"] == 1.0 and scores["auc"] == pytest.approx(expected_auc)
    assert math.isnan(success_scores([])["ciou"])


def _tiny_checkpoint(path: Path, name: str = "avsep_unittest") -> Path:
    torch.manual_seed(0)
    return avsep.save_checkpoint(path, avsep.create_model(name),
                                 config={"data": {"image_size": 64}})


def test_localize_command_writes_video_keyframes_and_heatmaps(tone_burst_video, tmp_path,
                                                             capsys):
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    code = main(["localize", str(tone_burst_video), "--checkpoint", str(checkpoint),
                 "--out", str(out), "--fps", "4", "--colormap", "magma", "--opacity", "0.6",
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (out / "overlay.mp4").is_file() and (out / "contact_sheet.png").is_file()
    assert len(list((out / "keyframes").glob("*.png"))) == math.ceil(56 / 8)
    saved = np.load(out / "heatmaps.npz")
    assert saved["heatmaps"].shape == (56, 4, 7)
    np.testing.assert_allclose(saved["times_s"], np.arange(56) / 4)


def test_localize_command_draws_a_tagged_models_heat_gated_or_not(tone_burst_video, tmp_path,
                                                                   capsys):
    torch.manual_seed(0)
    checkpoint = avsep.save_checkpoint(
        tmp_path / "tagged.pt",
        avsep.create_model("avsep_unittest", visual_class_loss=0.1, audio_tagging=0.1),
        config={"data": {"image_size": 64}})
    maps = {}
    for name, flags in (("gated", []), ("ungated", ["--ungated"]),
                        ("local", ["--gate-locality", "1"])):
        out = tmp_path / name
        code = main(["localize", str(tone_burst_video), "--checkpoint", str(checkpoint),
                     "--out", str(out), "--fps", "2", "--quiet", *flags])
        assert code == 0, capsys.readouterr().err
        maps[name] = np.load(out / "heatmaps.npz")["heatmaps"]
    # The gate is a probability per location and frame, so it only takes heat away.
    assert maps["gated"].shape == maps["ungated"].shape
    assert (maps["gated"] <= maps["ungated"] * (1 + 1e-5) + 1e-12).all()
    assert maps["gated"].sum() < 0.9 * maps["ungated"].sum()
    # The locality reaches the model (the gate's own arithmetic: tests/test_models.py).
    assert (maps["local"] <= maps["ungated"] * (1 + 1e-5) + 1e-12).all()
    assert not np.allclose(maps["local"], maps["gated"])


def test_localize_command_errors_are_clear(tmp_path, capsys):
    silent = write_video(tmp_path / "silent.mp4", red_square_frames(25), 25.0, None)
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    args = ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(["localize", str(silent), *args]) == 2
    assert "silent.mp4: no audio stream" in capsys.readouterr().err
    assert main(["localize", str(tmp_path / "missing.mp4"), *args]) == 2
    assert "missing.mp4: file not found" in capsys.readouterr().err
    assert main(["localize", str(silent), *args, "--colormap", "nope"]) == 2
    assert "unknown colour map 'nope'" in capsys.readouterr().err
    assert main(["localize", str(silent), *args, "--ungated"]) == 2
    assert "--ungated: " in capsys.readouterr().err
    assert main(["localize", str(silent), *args, "--gate-locality", "0"]) == 2
    assert "tiny.pt has no audio tagger" in capsys.readouterr().err
    assert main(["localize", str(silent), *args, "--gate-locality", "2"]) == 2
    assert "--gate-locality must be in [0, 1], got 2.0" in capsys.readouterr().err
    mhunet = _tiny_checkpoint(tmp_path / "mhunet.pt", "mhunet_unittest")
    video = write_video(tmp_path / "v.mp4", red_square_frames(50), 25.0,
                        tone(2.0, 440.0, 44100))
    assert main(["localize", str(video), "--checkpoint", str(mhunet), "--out",
                 str(tmp_path / "o"), "--quiet"]) == 2
    assert "cannot localize" in capsys.readouterr().err


def test_players_sounding_follows_the_stems_and_captions_the_contact_sheet(tmp_path):
    from avsep.evaluation.localization import players_sounding

    folder = _urmp_piece(tmp_path)  # player 1 sounds 0-6 s, player 2 3-10 s
    times = np.array([1.0, 4.5, 8.0])
    assert players_sounding(folder, times) == [["1:vn"], ["1:vn", "2:fl"], ["2:fl"]]
    probe = prepare_model(ColourProbe([(300.0, 700.0), (1500.0, 3000.0), None]), "cpu", SMALL)
    video = folder / "Vid_01_Probe_vn_fl.mp4"
    loc = localize_video(video, probe, fps=2.0, progress=False)
    seen = []

    def captions(at):
        seen.append(at.tolist())
        return [" ".join(p) for p in players_sounding(folder, at)]

    files = render_localization(loc, video, tmp_path / "out", keyframe_every_s=4.0,
                                progress=False, captions=captions)
    assert seen == [[0.0, 4.0, 8.0]] and len(files.keyframes) == 3
    with pytest.raises(ValueError, match="captions gave 1 texts for 3 key frames"):
        render_localization(loc, video, tmp_path / "bad", keyframe_every_s=4.0,
                            progress=False, captions=lambda at: ["only one"])


class BandSeparatingProbe(ColourProbe):
    """A `ColourProbe` that also separates like one: the sound of a region's crop is the
    mixture band-passed to the colour bands of the crop's mean colour (exactly, by FFT)."""

    def separate(self, mix, condition):
        rgb = condition.float().mean(dim=(3, 4, 5)) / 255.0  # (B, N, 3)
        freqs = torch.fft.rfftfreq(mix.shape[1], 1.0 / RATE)
        bands = torch.stack([((freqs >= lo) & (freqs < hi)).float()
                             for lo, hi in self.bands])  # (3, F)
        gain = torch.einsum("bnc,cf->bnf", rgb, bands)
        return torch.fft.irfft(torch.fft.rfft(mix)[:, None] * gain, n=mix.shape[1])

    def __init__(self, bands):
        super().__init__(bands)
        self.bands = bands


def test_player_maps_light_each_player_while_it_plays(tmp_path):
    from avsep.inference import localize_players

    folder = _urmp_piece(tmp_path)
    probe = prepare_model(BandSeparatingProbe([(300.0, 700.0), (1500.0, 3000.0), (0.0, 0.0)]),
                          "cpu", SMALL)
    result = localize_players(folder / "Vid_01_Probe_vn_fl.mp4", probe, fps=2.0,
                              progress=False)
    assert result.region_source == "urmp name" and result.names() == ["1 vn", "2 fl"]
    assert result.scores.shape == (20, 2, 4, 7) and result.heat.heatmaps.shape == (20, 4, 7)
    # Map columns 0-2 lie in the left player's half, 3-6 in the right's.
    for t, k in ((1.0, 0), (8.0, 1)):  # only the red (left) player at 1 s, the green at 8 s
        maps = result.scores[round(t * 2)]
        column = np.unravel_index(np.argmax(maps[k]), maps[k].shape)[1]
        assert (column <= 2) == (k == 0)
        assert maps[1 - k].max() <= 1e-3 * maps[k].max()  # the silent player: no heat
    # Both play at 4.5 s: each map peaks on its own side.
    both = result.scores[9]
    assert np.argmax(both[0].max(axis=0)) <= 2 < np.argmax(both[1].max(axis=0))
    # The per-player maps that accuracy scores from the model's estimates say the same.
    scored = score_piece(folder, probe, fps=8.0, reference="estimates")
    assert scored.hits == scored.evaluated and scored.accuracy == 1.0
    with pytest.raises(ValueError, match="reference must be"):
        score_piece(folder, probe, reference="oracle")


def test_overlay_players_colours_each_pixel_by_its_strongest_player():
    from avsep.inference.render import PLAYER_COLOURS, overlay_players

    frame = np.full((4, 6, 3), 100, np.uint8)
    scores = np.zeros((2, 4, 6))
    scores[0, 0, 0] = 1.0          # player 1 alone, full strength
    scores[:, 1, 1] = (0.2, 0.5)   # player 2 stronger, half strength
    scores[:, 2, 2] = (-1.0, -0.5)  # no player's sound: the frame as it is
    image = overlay_players(frame, scores, opacity=0.8)
    np.testing.assert_allclose(image[0, 0], np.rint(100 * 0.2 + PLAYER_COLOURS[0] * 0.8),
                               atol=1)
    np.testing.assert_allclose(image[1, 1], np.rint(100 * 0.6 + PLAYER_COLOURS[1] * 0.4),
                               atol=1)
    assert (image[2, 2] == 100).all() and (image[3, 5] == 100).all()
    with pytest.raises(ValueError, match="do not match frame"):
        overlay_players(frame, scores[:, :3], opacity=0.5)


def test_localize_command_draws_players(tmp_path, capsys):
    folder = _urmp_piece(tmp_path, seconds=6.0)
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    video = folder / "Vid_01_Probe_vn_fl.mp4"
    code = main(["localize", str(video), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--fps", "2", "--players", "2", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 players (players: 1 vn, 2 fl)" in captured.out
    for name in ("players.mp4", "players_contact_sheet.png", "overlay.mp4", "players.npz"):
        assert (out / name).is_file(), name
    saved = np.load(out / "players.npz")
    assert saved["scores"].shape == (12, 2, 4, 7) and saved["heatmaps"].shape == (12, 4, 7)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(["localize", str(video), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--regions", "0,0,500,96", "--quiet", "--overwrite"]) == 2
    assert "extends beyond the 160x96 frame" in capsys.readouterr().err
    # A failed run leaves the earlier outputs as they were and nothing of its own.
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
