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


class FrameNormalize(nn.Module):
    """uint8 RGB frames (..., 3, T, H, W) -> float, scaled to [0, 1] and ImageNet-normalised."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() < 4 or frames.shape[-4] != 3:
            raise ValueError(f"frames must be (..., 3, T, H, W), got shape {tuple(frames.shape)}")
        return (frames.float() / 255.0 - self.mean) / self.std
