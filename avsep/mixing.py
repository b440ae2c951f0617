"""Mix-and-separate on the device: making training mixtures from single-source clips."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


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
