"""Mix-and-separate on the device: batch-level mixing and frame normalisation modules."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MixSources(nn.Module):
    """Makes synthetic mixtures from single-source clips, as the training recipes do.

    `normalization="sop"` (Sound of Pixels): in training, each source is scaled by a gain
    drawn from U[low, high); sources are clipped to [-1, 1], divided by N and summed.
    `normalization="peak"` (MHU-Net): each source is scaled to a peak of 1 (silent sources
    stay silent), divided by N and summed. The returned sources are the scaled ones, so that
    `mix == sources.sum(1)` holds exactly and ground-truth masks refer to what was mixed.
    """

    def __init__(
        self,
        normalization: Literal["sop", "peak"] = "sop",
        gain_range: tuple[float, float] = (0.5, 1.5),
    ):
        super().__init__()
        if normalization not in ("sop", "peak"):
            raise ValueError(f"normalization must be 'sop' or 'peak', got {normalization!r}")
        self.normalization = normalization
        self.gain_range = gain_range

    def forward(
        self, sources: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix.

        Args:
            sources: (B, N, T) waveforms.
            generator: random gains in training mode (SoP only).

        Returns:
            mix (B, T) and the scaled sources (B, N, T) that sum to it.
        """
        if sources.dim() != 3:
            raise ValueError(f"sources must be (B, N, T), got shape {tuple(sources.shape)}")
        n = sources.shape[1]
        if self.normalization == "sop":
            if self.training:
                low, high = self.gain_range
                gains = torch.rand(
                    sources.shape[:2] + (1,), generator=generator, device=sources.device
                )
                sources = sources * (low + (high - low) * gains)
            sources = sources.clamp(-1.0, 1.0)
        else:
            peak = sources.abs().amax(dim=-1, keepdim=True)
            sources = sources / torch.where(peak > 0, peak, torch.ones_like(peak))
        sources = sources / n
        return sources.sum(dim=1), sources


def off_screen_clips(labels: torch.Tensor) -> torch.Tensor:
    """Which clips of the next mixture in the batch are off screen for each mixture.

    Mixture b is paired with the clips of mixture (b + 1) mod B. A pair counts when the
    clip's class is known and differs from every class of mixture b, all of which must be
    known (a clip of the same instrument may well sound like part of the mixture).

    Args:
        labels: (B, N) class indices, -1 unknown.

    Returns:
        (B, N) bool: entry (b, n) stands for clip n of mixture (b + 1) mod B with b.
    """
    other = labels.roll(-1, dims=0)
    shared = (other.unsqueeze(2) == labels.unsqueeze(1)).any(dim=2)  # (B, N)
    all_known = (labels >= 0).all(dim=1, keepdim=True)
    return (other >= 0) & all_known & ~shared


class OffScreenSound(nn.Module):
    """Sound that no shown source accounts for, to add to training mixtures.

    Mix-and-separate mixes only the shown clips, so a model never hears sound that none of
    its pictures makes, and nothing teaches its masks to leave such sound out. For each
    mixture, with probability `clip_rate`, one heard clip of the next mixture in the batch
    whose instrument the mixture does not show (`off_screen_clips`), at the level it was
    mixed at there; and with probability `noise_rate`, white noise whose RMS is the mean
    RMS of the mixture's sources times a gain drawn from U[0.5, 1.5) (SoP's gain range).
    """

    def __init__(self, clip_rate: float = 0.0, noise_rate: float = 0.0):
        super().__init__()
        for name, rate in (("off_screen_audio", clip_rate), ("off_screen_noise", noise_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {rate}")
        self.clip_rate, self.noise_rate = clip_rate, noise_rate

    @property
    def enabled(self) -> bool:
        return self.clip_rate > 0 or self.noise_rate > 0

    def forward(self, sources: torch.Tensor, labels: torch.Tensor | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The off-screen sound of each mixture.

        Args:
            sources: (B, N, T) the mixed (scaled) sources of each mixture; silent ones are 0.
            labels: (B, N) class indices (-1 unknown); needed when `clip_rate` > 0.
            generator: the draws (on the sources' device).

        Returns:
            (B, T), zero for mixtures that drew nothing.
        """
        b, n, t = sources.shape
        device = sources.device
        off_screen = sources.new_zeros(b, t)
        if self.clip_rate > 0:
            if labels is None or labels.shape != (b, n):
                raise ValueError(
                    f"data.off_screen_audio needs the clips' class indices (batch, sources) = "
                    f"{(b, n)}, to pick off-screen clips of other instruments; got "
                    f"{None if labels is None else tuple(labels.shape)}")
            heard = sources.roll(-1, dims=0)  # (B, N, T): mixture b + 1's clips
            candidates = off_screen_clips(labels.to(device)) & (heard.abs().amax(dim=2) > 0)
            score = torch.rand(b, n, generator=generator, device=device)
            pick = torch.where(candidates, score, -1.0).argmax(dim=1)  # (B,)
            drawn = torch.rand(b, generator=generator, device=device) < self.clip_rate
            use = drawn & candidates.any(dim=1)
            chosen = heard[torch.arange(b, device=device), pick]  # (B, T)
            off_screen = off_screen + chosen * use.unsqueeze(1).to(chosen.dtype)
        if self.noise_rate > 0:
            level = sources.square().mean(dim=2).sqrt().mean(dim=1)  # (B,) mean source RMS
            gain = 0.5 + torch.rand(b, generator=generator, device=device)
            drawn = torch.rand(b, generator=generator, device=device) < self.noise_rate
            noise = torch.randn(b, t, generator=generator, device=device, dtype=sources.dtype)
            off_screen = off_screen + noise * (level * gain * drawn).unsqueeze(1)
        return off_screen


class FrameNormalize(nn.Module):
    """uint8 RGB frames (..., 3, T, H, W) -> float, scaled to [0, 1] and ImageNet-normalised."""

    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor

    def __init__(self, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() < 4 or frames.shape[-4] != 3:
            raise ValueError(f"frames must be (..., 3, T, H, W), got shape {tuple(frames.shape)}")
        return (frames.float() / 255.0 - self.mean) / self.std
