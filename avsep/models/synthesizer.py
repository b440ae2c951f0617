"""The SoP synthesizer: mask logit = sum_k alpha_k * i_k * s_k(f, t) + beta.

`i` is a visual K-vector (per source, or per image location), `s` the U-Net's K audio
channels. alpha starts at ones and beta at zero, as the original's `InnerProd`.
"""

from __future__ import annotations

import torch
from torch import nn


class Synthesizer(nn.Module):
    """K + 1 parameters: per-channel scale `alpha` (K,) and a scalar bias `beta` (1,).

    Shapes:
        forward(visual (B, N, K), audio (B, K, F, T)) -> logits (B, N, F, T)
        pixelwise(visual_map (B, K, h, w), audio (B, K, F, T)) -> logits (B, h, w, F, T)
    """

    def __init__(self, num_channels: int = 32) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(num_channels))
        self.beta = nn.Parameter(torch.zeros(1))

    def _check(self, visual_channels: int, audio: torch.Tensor) -> None:
        k = self.alpha.numel()
        if audio.dim() != 4 or audio.shape[1] != k or visual_channels != k:
            raise ValueError(
                f"Synthesizer: expected {k} visual and audio channels, got visual with "
                f"{visual_channels} and audio of shape {tuple(audio.shape)}"
            )

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        self._check(visual.shape[-1], audio)
        b, k, f, t = audio.shape
        weights = visual * self.alpha  # (B, N, K)
        logits = torch.bmm(weights, audio.reshape(b, k, f * t))
        return logits.reshape(b, visual.shape[1], f, t) + self.beta

    def pixelwise(self, visual_map: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        self._check(visual_map.shape[1], audio)
        b, k, h, w = visual_map.shape
        per_location = visual_map.reshape(b, k, h * w).transpose(1, 2)  # (B, h*w, K)
        logits = self.forward(per_location, audio)  # (B, h*w, F, T)
        return logits.reshape(b, h, w, *audio.shape[2:])
