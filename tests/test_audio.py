"""STFT/ISTFT, log-frequency warp and loss weights against independent numpy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avsep.audio import (
    ISTFT,
    STFT,
    LogFreqUnwarp,
    LogFreqWarp,
    LogMagnitude,
    loss_weight,
    num_frames,
    unwarp_frequency_coordinates,
)


def _signal(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / 11025
    tone = torch.sin(2 * math.pi * 440 * t) * 0.5
    return tone + 0.1 * torch.randn(batch, length, generator=g)


@pytest.mark.parametrize("batch", [1, 3])
def test_stft_shape_for_a_clip(batch):
    spec = STFT()(_signal(batch, 65535))
    assert spec.is_complex()
    assert spec.shape == (batch, 512, 256)
    assert num_frames(65535) == 256


def test_stft_matches_a_numpy_frame_by_frame_transform():
    x = _signal(1, 5000)[0].double()
    spec = STFT()(x[None].float())[0].numpy()
    padded = np.pad(x.numpy(), 511, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1022) / 1022)  # periodic Hann
    for frame in (0, 7, spec.shape[1] - 1):
        expected = np.fft.rfft(padded[frame * 256:frame * 256 + 1022] * window)
        np.testing.assert_allclose(spec[:, frame], expected, rtol=1e-4, atol=1e-3)


def test_stft_istft_round_trip():
    x = _signal(3, 65535)
    y = ISTFT()(STFT()(x), length=x.shape[1])
    assert y.shape == x.shape
    rel_error = (y - x).norm() / x.norm()
    assert rel_error < 1e-5


def test_double_precision_round_trip():
    x = _signal(2, 4000).double()
    y = ISTFT().double()(STFT().double()(x), length=x.shape[1])
    assert y.dtype == torch.float64
    assert (y - x).norm() / x.norm() < 1e-12


def test_stft_rejects_wrong_rank_with_shapes_in_message():
    with pytest.raises(ValueError, match=r"\(batch, samples\).*\(2, 3, 1000\)"):
        STFT()(torch.zeros(2, 3, 1000))


def test_warp_grid_follows_the_original_formula():
    warp = LogFreqWarp()
    grid = warp.grid(frames=5, batch=2)
    assert grid.shape == (2, 256, 5, 2)
    y = np.linspace(-1, 1, 256)
    np.testing.assert_allclose(grid[0, :, 0, 1].numpy(), (21 ** ((y + 1) / 2) - 11) / 10,
                               atol=1e-6)
    np.testing.assert_allclose(grid[1, 10, :, 0].numpy(), np.linspace(-1, 1, 5), atol=1e-7)


def test_unwarp_grid_inverts_the_warp_formula():
    y_linear = np.linspace(-1, 1, 512)
    u = unwarp_frequency_coordinates(512).double().numpy()
    # Feeding the unwarp coordinate into the warp formula gives the linear coordinate back.
    np.testing.assert_allclose((21 ** ((u + 1) / 2) - 11) / 10, y_linear, atol=1e-6)


def test_warp_samples_the_spectrum_like_linear_interpolation():
    spec = torch.rand(2, 1, 512, 7, dtype=torch.float64).float()
    warped = LogFreqWarp()(spec)
    assert warped.shape == (2, 1, 256, 7)
    y = np.linspace(-1, 1, 256)
    rows = ((21 ** ((y + 1) / 2) - 11) / 10 + 1) / 2 * 511  # align_corners=True unnormalise
    expected = np.interp(rows, np.arange(512), spec[1, 0, :, 3].numpy())
    # float32 grid coordinates place rows within ~3e-5 of a bin.
    np.testing.assert_allclose(warped[1, 0, :, 3].numpy(), expected, atol=1e-4)
    # Time is not resampled: each output frame only reads its own input frame.
    assert torch.allclose(warped[0, 0, 0], spec[0, 0, 0], atol=1e-6)


def test_warp_then_unwarp_recovers_a_smooth_spectrum():
    f = torch.arange(512, dtype=torch.float32)[:, None]
    smooth = torch.exp(-f / 150) + 0.3 * torch.cos(2 * math.pi * f / 256) + 0.5
    spec = smooth.expand(512, 4)[None, None]
    back = LogFreqUnwarp()(LogFreqWarp()(spec))
    assert back.shape == spec.shape
    # The warp keeps fewer rows at high frequencies (up to ~6 bins per row), so a spectrum
    # varying over >= 100 bins comes back within 1% of its peak.
    assert (back - spec).abs().max() / spec.abs().max() < 0.01


def test_warp_rejects_wrong_bin_count():
    with pytest.raises(ValueError, match=r"512, frames\).*\(1, 1, 256, 8\)"):
        LogFreqWarp()(torch.zeros(1, 1, 256, 8))


def test_log_magnitude_and_loss_weight_by_hand():
    x = torch.tensor([0.0, 1.0, -2.0, 3 + 4j])
    np.testing.assert_allclose(
        LogMagnitude()(x).numpy(), np.log(np.array([0.0, 1.0, 2.0, 5.0]) + 1e-10),
        rtol=1e-6, atol=1e-7
    )
    mag = torch.tensor([0.0, math.e - 1, 1e6])
    np.testing.assert_allclose(loss_weight(mag).numpy(), [1e-3, 1.0, 10.0], rtol=1e-6)


def test_constants_are_buffers_that_follow_the_module():
    for module, name in ((STFT(), "window"), (ISTFT(), "window"),
                         (LogFreqWarp(), "freq_coords"), (LogFreqUnwarp(), "freq_coords")):
        assert name in dict(module.named_buffers())
        assert module.double().get_buffer(name).dtype == torch.float64
