"""The temporal visual path (`avsep.models.motion`) and same-instrument mixtures.

Shapes, the frame alignment with the audio (a shift of the motion by k frames shifts the
features by k; each STFT frame reads the video frame nearest in time, from the clip's own
timing), that an untrained motion path leaves the one-frame model unchanged, heatmaps with
it, the config checks, and mixtures of one class when asked for.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avsep.audio import HOP_LENGTH
from avsep.config import ConfigError
from avsep.data.solos import MixtureGrouper
from avsep.geometry import FRAME_RATE, SAMPLE_RATE, ClipSpec, clip_frame_indices
from avsep.models.localization import Localizer
from avsep.models.motion import MotionNet, video_to_stft
from avsep.models.sop import SoundOfPixels, SoundOfPixelsConfig
from avsep.presets import resolve_preset
from avsep.run_config import RunConfig, load_run_config
from data_prep.synth.presets import urmp_settings
from data_prep.synth.urmp import choose_instruments, player_counts

SMALL = {"num_channels": 8, "ngf": 4, "depth": 4, "vision_arch": "tiny",
         "visual_activation": "none", "visual_pooling": "mean"}


def _moving_frames(t: int, size: tuple[int, int] = (64, 48), k: int = 0,
                   seed: int = 0) -> torch.Tensor:
    """uint8 (1, 3, T, H, W): a still random picture with a bright square that jumps at a
    few frames, the jumps `k` frames later than for k = 0."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 200, (3, *size), generator=g, dtype=torch.uint8)
    frames = base.unsqueeze(1).repeat(1, t, 1, 1).clone()
    place = 0
    for i in range(t):
        if (i - k) in (3, 7, 8, 12):
            place = (place + 17) % (size[1] - 12)
        frames[:, i, 10:22, place:place + 12] = 255
    return frames.unsqueeze(0)


def _trained_like(net: MotionNet, seed: int = 1) -> MotionNet:
    """The net with random weights in its last layer too (it starts at zero)."""
    g = torch.Generator().manual_seed(seed)
    for p in net.temporal[-1].parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.5
    return net.eval()


def test_motion_net_shapes_match_the_vision_grid():
    net = MotionNet(out_channels=5, width=2).eval()
    out = net(torch.randint(0, 255, (2, 3, 7, 96, 130), dtype=torch.uint8))
    assert out.shape == (2, 5, 7, 6, math.ceil(130 / 16))
    assert out.abs().max() == 0  # zero-initialised last layer
    with pytest.raises(ValueError, match="frames"):
        net(torch.zeros(2, 7, 96, 130))
    with pytest.raises(ValueError, match="odd"):
        MotionNet(4, kernel=4)


@pytest.mark.parametrize("k", [1, 3])
def test_motion_shifted_by_k_frames_gives_features_shifted_by_k(k):
    torch.manual_seed(0)
    net = _trained_like(MotionNet(out_channels=4, width=2, kernel=3))
    t = 20
    with torch.no_grad():
        plain = net(_moving_frames(t))
        later = net(_moving_frames(t, k=k))
    assert plain.abs().max() > 0
    # frames far enough from both ends for the temporal context (kernel 3 + the difference)
    inner = slice(3, t - k - 3)
    shifted = slice(3 + k, t - 3)
    torch.testing.assert_close(later[:, :, shifted], plain[:, :, inner])
    assert not torch.allclose(later[:, :, inner], plain[:, :, inner])


def test_video_to_stft_weights_by_hand():
    weights = video_to_stft(5, 9, centre=4.0, stft_frames_per_video_frame=2.0)
    assert weights.shape == (9, 5)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(9))
    assert weights[4, 2] == 1.0  # the centre frame at the centre STFT frame
    assert weights[6, 3] == 1.0  # one video frame later = two STFT frames later
    torch.testing.assert_close(weights[5, 2:4], torch.tensor([0.5, 0.5]))
    assert weights[0, 0] == 1.0 and weights[8, 4] == 1.0  # held at the ends
    with pytest.raises(ValueError):
        video_to_stft(5, 9, 4.0, 0.0)


def test_each_stft_frame_reads_the_video_frame_nearest_in_time():
    """The clip's timing, from `clip_frame_indices` and the STFT (centred frames, hop 256):
    STFT frame j is at sample start + j * hop; frame index i at i / fps seconds. The window's
    centre is put on a video frame (one second is 8 frames), so no rounding intervenes."""
    spec = ClipSpec(clip_samples=32767, num_frames=24, frame_stride=1)
    start = 6 * SAMPLE_RATE - spec.clip_samples // 2
    indices = clip_frame_indices(start + spec.clip_samples // 2, 10_000, spec)
    assert indices[spec.num_frames // 2] == 6 * FRAME_RATE
    tf = 1 + spec.clip_samples // HOP_LENGTH
    weights = video_to_stft(spec.num_frames, tf, (tf - 1) / 2,
                            SAMPLE_RATE / (FRAME_RATE * HOP_LENGTH))
    frame_seconds = torch.tensor(indices, dtype=torch.float64) / FRAME_RATE
    checked = 0
    for j in range(tf):
        at = (start + j * HOP_LENGTH) / SAMPLE_RATE
        distance = (frame_seconds - at).abs()
        first, second = distance.sort().values[:2]
        if second - first > 0.03:  # not a near tie (the centre is placed within half a hop)
            assert int(weights[j].argmax()) == int(distance.argmin()), j
            checked += 1
    assert checked > tf // 2


def _pair(**motion) -> tuple[SoundOfPixels, SoundOfPixels]:
    torch.manual_seed(0)
    with_motion = SoundOfPixels(SoundOfPixelsConfig(**SMALL, **motion)).eval()
    plain = SoundOfPixels(SoundOfPixelsConfig(**SMALL)).eval()
    state = {k: v for k, v in with_motion.state_dict().items() if not k.startswith("motion.")}
    plain.load_state_dict(state)
    return with_motion, plain


def test_an_untrained_motion_path_leaves_the_one_frame_model():
    with_motion, plain = _pair(motion_width=2)
    mix = torch.randn(2, 8191)
    frames = torch.randint(0, 255, (2, 2, 3, 9, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        spec = with_motion.spectrogram(mix)
        both = with_motion.parts(spec, frames)
        one = plain.parts(spec, frames[:, :, :, 4:5])  # the centre frame
    assert both.motion is not None and both.motion.shape == (2, 2, 8, spec["log_mag"].shape[-1])
    torch.testing.assert_close(both.logits, one.logits)
    _trained_like(with_motion.motion)
    with torch.no_grad():
        moved = with_motion.parts(spec, frames)
    assert not torch.allclose(moved.logits, one.logits)
    with pytest.raises(ValueError, match="consecutive video frames"):
        with_motion.parts(spec, frames[:, :, :, :1])


def test_heatmaps_with_a_motion_path_follow_it():
    with_motion, plain = _pair(motion_width=2)
    mix = torch.randn(1, 8191)
    frames = torch.randint(0, 255, (1, 3, 9, 32, 48), dtype=torch.uint8)
    with torch.no_grad():
        same = Localizer(with_motion).pixel_energies(mix, frames)
        reference = Localizer(plain).pixel_energies(mix, frames[:, :, 4:5])
    assert same.shape == (1, 2, 3)
    torch.testing.assert_close(same, reference)
    _trained_like(with_motion.motion)
    with torch.no_grad():
        moved = Localizer(with_motion).pixel_energies(mix, frames, per_frame=True)
    assert moved.shape[:3] == (1, 2, 3)
    assert not torch.allclose(moved.sum(dim=-1), reference)


def test_run_config_asks_for_consecutive_frames_at_the_clip_rate():
    demo = resolve_preset("demo")
    motion = ["model.kwargs.motion_width=8", "data.clip.num_frames=24"]
    with pytest.raises(ConfigError, match="frame_stride=1"):
        load_run_config(demo, motion)
    config = load_run_config(demo, [*motion, "data.clip.frame_stride=1"])
    assert isinstance(config, RunConfig) and config.data.clip.num_frames == 24
    with pytest.raises(ConfigError, match="motion_fps"):
        load_run_config(demo, [*motion, "data.clip.frame_stride=1", "model.kwargs.motion_fps=4"])
    with pytest.raises(ConfigError, match="same_class_share"):
        load_run_config(demo, ["data.same_class_share=1.5"])


def test_same_class_mixtures_are_drawn_when_asked_for():
    clips = [{"video_id": f"v{i}", "class_index": i % 4} for i in range(400)]
    for share, low, high in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.5, 0.3, 0.7)):
        groups = list(MixtureGrouper(2, same_class_share=share, seed=3)(clips))
        assert len(groups) >= 150
        for group in groups:
            assert len({c["video_id"] for c in group}) == 2
        same = sum(len({c["class_index"] for c in g}) == 1 for g in groups) / len(groups)
        assert low <= same <= high, (share, same)
    again = list(MixtureGrouper(2, same_class_share=0.5, seed=3)(clips))
    assert again == list(MixtureGrouper(2, same_class_share=0.5, seed=3)(clips))
    with pytest.raises(ValueError, match="same_class_share"):
        MixtureGrouper(2, same_class_share=-0.1)


def test_urmp_standin_plans_a_duet_per_same_instrument_class():
    settings = urmp_settings("bench", pieces=7, same_instrument=("Violin", "Cello", "Flute"))
    rng = np.random.default_rng(0)
    counts = player_counts(settings, rng)
    assert counts[:4] == [2, 2, 2, 2] and counts[4] == settings.max_players
    for number, name in zip((2, 3, 4), settings.same_instrument):
        assert choose_instruments(number, 2, rng, settings.same_instrument) == [name, name]
    picked = choose_instruments(5, 3, rng, settings.same_instrument)
    assert len(set(picked)) == 3
    # the default keeps the one violin duet of earlier stand-ins
    assert choose_instruments(2, 2, rng) == ["Violin", "Violin"]
    assert len(set(choose_instruments(3, 2, rng))) == 2
    with pytest.raises(ValueError, match="unknown instrument"):
        urmp_settings("bench", same_instrument=("Kazoo",))


def test_synth_names_an_unknown_same_instrument_class(tmp_path, capsys):
    from avsep.cli import main as cli_main

    code = cli_main(["synth", "urmp", "--out", str(tmp_path / "u"), "--same-instrument",
                     "Violin", "Kazoo"])
    assert code == 2
    assert "unknown instrument(s) Kazoo" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_a_motion_path_can_start_from_a_one_frame_checkpoint(tmp_path):
    from avsep.checkpoint import CheckpointError, save_checkpoint
    from avsep.training.checkpoints import load_initial_weights

    torch.manual_seed(0)
    one_frame = SoundOfPixels(SoundOfPixelsConfig(**SMALL))
    save_checkpoint(tmp_path / "one.pt", one_frame, step=0, config={})
    with_motion = SoundOfPixels(SoundOfPixelsConfig(**SMALL, motion_width=2))
    fresh = {k: v.clone() for k, v in with_motion.state_dict().items() if k.startswith("motion.")}
    load_initial_weights(str(tmp_path / "one.pt"), with_motion, None, torch.device("cpu"))
    for name, value in one_frame.state_dict().items():
        assert torch.equal(with_motion.state_dict()[name], value), name
    for name, value in fresh.items():  # the new path keeps its initialisation
        assert torch.equal(with_motion.state_dict()[name], value), name
    # anything else that does not fit is still refused, and a one-frame model does not take
    # a motion checkpoint
    save_checkpoint(tmp_path / "motion.pt", with_motion, step=0, config={})
    for path, model in ((tmp_path / "one.pt", SoundOfPixels(SoundOfPixelsConfig(
            **{**SMALL, "ngf": 8}, motion_width=2))),
            (tmp_path / "motion.pt", SoundOfPixels(SoundOfPixelsConfig(**SMALL)))):
        with pytest.raises(CheckpointError, match="does not fit"):
            load_initial_weights(str(path), model, None, torch.device("cpu"))


def test_onset_loss_against_a_hand_computed_flux():
    model = SoundOfPixels(SoundOfPixelsConfig(**SMALL, motion_width=2, motion_onset_loss=1.0))
    g = torch.Generator().manual_seed(0)
    mags = torch.rand(2, 2, 5, 12, generator=g)
    mags[1, 1] = 0.3  # a still source: no flux, left out
    level = np.log1p(mags.numpy())
    flux = np.concatenate([np.zeros((2, 2, 1)),
                           np.clip(np.diff(level, axis=-1), 0, None).sum(axis=2)], axis=-1)
    with np.errstate(invalid="ignore"):  # the still source: 0 / 0, left out
        standard = (flux - flux.mean(-1, keepdims=True)) / flux.std(-1, keepdims=True)
    head = model.onset_head
    assert head is not None
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, 0] = 1.0
        head.bias.zero_()
    motion = torch.zeros(2, 2, SMALL["num_channels"], 12)
    # a motion term that says nothing of the onsets costs 1
    assert model.onset_loss(motion, mags).item() == pytest.approx(1.0, abs=1e-5)
    # one that carries them exactly costs nothing
    motion[:, :, 0] = torch.from_numpy(np.nan_to_num(standard)).float()
    assert model.onset_loss(motion, mags).item() == pytest.approx(0.0, abs=1e-5)
    # and half of them, a quarter
    motion[:, :, 0] *= 0.5
    assert model.onset_loss(motion, mags).item() == pytest.approx(0.25, abs=1e-4)
    with pytest.raises(ValueError, match="needs motion_width"):
        SoundOfPixelsConfig(**SMALL, motion_onset_loss=0.1)
