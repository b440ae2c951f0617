"""Audio transforms as `nn.Module`s on batched tensors: STFT, ISTFT, log-frequency warp.

All modules keep their constants (window, sampling grids) in buffers, so `.to(device)` moves
them with the model and they work the same on CPU and GPU. Shapes use these letters:

- `B` batch, `T` samples, `F` = n_fft // 2 + 1 = 512 linear frequency bins,
- `Tf` STFT frames = 1 + T // hop (65535 samples -> 256 frames),
- `Fw` = 256 log-frequency (warped) bins.

The settings follow The Sound of Pixels: 11025 Hz audio, n_fft 1022, hop 256, periodic Hann
window, centred frames with reflect padding (librosa's defaults, which the original used).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

N_FFT = 1022
HOP_LENGTH = 256
NUM_FREQ_BINS = N_FFT // 2 + 1  # 512
NUM_WARPED_BINS = 256
LOG_EPS = 1e-10

# The original's log-frequency grid: y_out in [-1, 1] reads y_in = (BASE ** ((y_out + 1) / 2)
# - (BASE + 1) / 2) / ((BASE - 1) / 2), i.e. (21 ** ((y + 1) / 2) - 11) / 10.
_WARP_BASE = 21.0


def num_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Number of STFT frames of a centred STFT of `num_samples` samples."""
    return 1 + num_samples // hop_length


def _check_rank(x: torch.Tensor, rank: int, what: str, layout: str) -> None:
    if x.dim() != rank:
        raise ValueError(f"{what}: expected a {rank}-D tensor {layout}, got shape {tuple(x.shape)}")


class STFT(nn.Module):
    """Complex short-time Fourier transform.

    Args:
        n_fft: FFT size (window length); 1022 gives 512 bins.
        hop_length: hop between frames in samples.

    Shapes:
        forward(waveform (B, T)) -> complex (B, n_fft // 2 + 1, 1 + T // hop_length)
    """

    window: torch.Tensor  # a buffer (register_buffer), not a submodule

    def __init__(self, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        # Periodic Hann, as scipy/librosa use for spectral analysis.
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        _check_rank(waveform, 2, "STFT input", "(batch, samples)")
        if waveform.shape[-1] <= self.n_fft // 2:
            raise ValueError(
                f"STFT input: need more than {self.n_fft // 2} samples for reflect padding, "
                f"got {waveform.shape[-1]}"
            )
        # The FFT runs in float32 (float64 for a double model) even under autocast:
        # half-precision FFTs are inaccurate.
        dtype = torch.float64 if self.window.dtype == torch.float64 else torch.float32
        return torch.stft(
            waveform.to(dtype), n_fft=self.n_fft, hop_length=self.hop_length,
            window=self.window.to(dtype), center=True, pad_mode="reflect", return_complex=True,
        )


class ISTFT(nn.Module):
    """Inverse of `STFT` (least-squares overlap-add with the same window).

    Shapes:
        forward(spec complex (B, F, Tf), length) -> (B, length)
    """

    window: torch.Tensor  # a buffer (register_buffer), not a submodule

    def __init__(self, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        _check_rank(spec, 3, "ISTFT input", "(batch, freq, frames)")
        if not spec.is_complex():
            raise ValueError(f"ISTFT input: expected a complex tensor, got dtype {spec.dtype}")
        expected_bins = self.n_fft // 2 + 1
        if spec.shape[1] != expected_bins:
            raise ValueError(
                f"ISTFT input: expected {expected_bins} frequency bins, got shape {tuple(spec.shape)}"
            )
        return torch.istft(
            spec, n_fft=self.n_fft, hop_length=self.hop_length,
            window=self.window.to(spec.real.dtype), center=True, length=length,
        )


def warp_frequency_coordinates(num_out: int = NUM_WARPED_BINS) -> torch.Tensor:
    """Normalised source rows read by the log-frequency warp, shape (num_out,).

    Output row i (y = linspace(-1, 1)[i]) samples the linear spectrogram at the normalised
    coordinate (21 ** ((y + 1) / 2) - 11) / 10, which runs from -1 (0 Hz) to 1 (Nyquist) and
    spends more output rows on low frequencies.
    """
    y = torch.linspace(-1.0, 1.0, num_out, dtype=torch.float64)
    coords = (_WARP_BASE ** ((y + 1) / 2) - (_WARP_BASE + 1) / 2) / ((_WARP_BASE - 1) / 2)
    return coords.float()


def unwarp_frequency_coordinates(num_out: int = NUM_FREQ_BINS) -> torch.Tensor:
    """Normalised warped rows read by the inverse warp, shape (num_out,).

    The exact inverse of `warp_frequency_coordinates`: log(10 y + 11) / log(21) * 2 - 1.
    """
    y = torch.linspace(-1.0, 1.0, num_out, dtype=torch.float64)
    coords = torch.log(y * (_WARP_BASE - 1) / 2 + (_WARP_BASE + 1) / 2) / math.log(_WARP_BASE)
    return (coords * 2 - 1).float()


class _FrequencyResampler(nn.Module):
    """Resamples the frequency axis with `grid_sample` (bilinear, align_corners=True).

    align_corners=True is what `grid_sample` did when the original was written; with it the
    time coordinates linspace(-1, 1, Tf) land exactly on frames, so time is not resampled.
    """

    freq_coords: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, freq_coords: torch.Tensor, num_in: int) -> None:
        super().__init__()
        self.num_in = num_in
        self.num_out = freq_coords.numel()
        self.register_buffer("freq_coords", freq_coords, persistent=False)

    def grid(self, frames: int, batch: int = 1) -> torch.Tensor:
        """The sampling grid (batch, num_out, frames, 2) with (x = time, y = frequency)."""
        x = torch.linspace(-1.0, 1.0, frames, device=self.freq_coords.device)
        grid_y, grid_x = torch.meshgrid(self.freq_coords, x, indexing="ij")
        return torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0).expand(batch, -1, -1, -1)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.dim() < 3 or spec.shape[-2] != self.num_in:
            raise ValueError(
                f"{type(self).__name__}: expected (..., {self.num_in}, frames), "
                f"got shape {tuple(spec.shape)}"
            )
        lead, frames = spec.shape[:-2], spec.shape[-1]
        flat = spec.reshape(-1, 1, self.num_in, frames)
        grid = self.grid(frames, flat.shape[0]).to(flat.dtype)
        out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return out.reshape(*lead, self.num_out, frames)


class LogFreqWarp(_FrequencyResampler):
    """Linear -> log-frequency axis, 512 -> 256 bins (the original's warp grid).

    Shapes:
        forward((..., 512, Tf)) -> (..., 256, Tf); any leading dims, e.g. (B, 1, 512, Tf).
    """

    def __init__(self, num_in: int = NUM_FREQ_BINS, num_out: int = NUM_WARPED_BINS) -> None:
        super().__init__(warp_frequency_coordinates(num_out), num_in)


class LogFreqUnwarp(_FrequencyResampler):
    """Log-frequency -> linear axis, 256 -> 512 bins (the original's inverse grid).

    Shapes:
        forward((..., 256, Tf)) -> (..., 512, Tf)
    """

    def __init__(self, num_in: int = NUM_WARPED_BINS, num_out: int = NUM_FREQ_BINS) -> None:
        super().__init__(unwarp_frequency_coordinates(num_out), num_in)


class LogMagnitude(nn.Module):
    """log(|x| + 1e-10) of a magnitude (or complex) spectrogram; any shape."""

    def __init__(self, eps: float = LOG_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return torch.log(spec.abs() + self.eps)


def loss_weight(mix_magnitude: torch.Tensor) -> torch.Tensor:
    """Per-bin loss weight clamp(log1p(|mix|), 1e-3, 10), same shape as the input.

    Loud bins count more; silent bins still count a little. Computed on the warped mixture
    magnitude (B, 1, 256, Tf) in training.
    """
    return torch.clamp(torch.log1p(mix_magnitude.abs()), 1e-3, 10.0)
