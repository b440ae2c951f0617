"""Oracle baselines: ideal binary and ideal ratio masks computed from the true stems.

They show how far mask-based separation with the mixture phase can go on each segment, at
the separator's own STFT settings: ideal binary mask (IBM), the loudest source wins each
time-frequency bin; ideal ratio mask (IRM), M_k = |S_k| / sum_j |S_j|. Each mask multiplies
the mixture's complex STFT (mixture phase) and is inverted with the same ISTFT.
"""

from __future__ import annotations

import torch
from torch import nn

from avsep.audio import HOP_LENGTH, ISTFT, N_FFT, STFT
from avsep.masks import complementary_binary_masks, complementary_ratio_masks
from avsep.models.separator import Separator


class IdealMaskSeparator(nn.Module):
    """Separates mixtures with ideal masks built from the reference stems.

    Args:
        n_fft: FFT size of the STFT (1022 in Sound of Pixels).
        hop_length: hop between STFT frames (256).

    Shapes:
        forward(mix (B, T), stems (B, P, T)) -> {"ibm": (B, P, T), "irm": (B, P, T)}
    """

    def __init__(self, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> None:
        super().__init__()
        self.stft = STFT(n_fft, hop_length)
        self.istft = ISTFT(n_fft, hop_length)

    @classmethod
    def like(cls, separator: Separator) -> IdealMaskSeparator:
        """Oracles at `separator`'s STFT settings (its `stft` module), on its device."""
        oracle = cls(separator.stft.n_fft, separator.stft.hop_length)
        parameter = next(iter(separator.parameters()), None)
        return oracle.to(parameter.device) if parameter is not None else oracle

    @torch.no_grad()
    def forward(self, mix: torch.Tensor, stems: torch.Tensor) -> dict[str, torch.Tensor]:
        if mix.dim() != 2 or stems.dim() != 3 or stems.shape[0] != mix.shape[0] \
                or stems.shape[2] != mix.shape[1]:
            raise ValueError(
                f"IdealMaskSeparator: expected mix (B, T) and stems (B, P, T), got "
                f"{tuple(mix.shape)} and {tuple(stems.shape)}"
            )
        batch, players, length = stems.shape
        mix_spec = self.stft(mix).unsqueeze(1)  # (B, 1, F, Tf)
        stem_mag = self.stft(stems.reshape(batch * players, length)).abs()
        stem_mag = stem_mag.reshape(batch, players, *stem_mag.shape[1:])  # (B, P, F, Tf)
        masks = {
            "ibm": complementary_binary_masks(stem_mag),
            "irm": complementary_ratio_masks(stem_mag),
        }
        out = {}
        for name, mask in masks.items():
            estimate = (mask * mix_spec).reshape(batch * players, *mix_spec.shape[2:])
            out[name] = self.istft(estimate, length).reshape(batch, players, length)
        return out
