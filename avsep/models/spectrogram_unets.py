"""The seeds' spectrogram networks as audio backbones (no separator logic here).

- `SpectrogramChannelsUNet` (seed `spectrogram-channels-unet`): encoder levels of 3x3 conv +
  BatchNorm + ReLU followed by 2x2 max-pooling; decoder levels of a 5x5 stride-2 transposed
  conv + BatchNorm + ReLU + dropout 0.4, then a 3x3 transposed conv + BatchNorm + ReLU on the
  concatenation with the encoder's skip; a final 1x1 conv + ReLU gives one non-negative map
  per output channel (one spectrogram per source, "direct" output).
- `IntermediateBlockUNet` (seed `unet-intermediate-blocks-slides`): a U-Net whose levels are
  intermediate blocks: TFC (densely connected 3x3 convs), TDF (fully connected layers along
  frequency, applied to every frame), TDC (densely connected convs along frequency only) or
  TFC-TDF (TFC, then a TDF added residually); strided convs down, transposed convs up,
  concatenated skips. On complex-as-channels input (real and imaginary parts as 2 channels)
  or on a magnitude.

Every network maps (B, C_in, F, T) -> (B, C_out, F, T), F and T multiples of 2**depth, and
takes `separable=True` for depthwise-separable convolutions.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avsep.models.blocks import conv2d, conv_transpose2d


def _conv_bn_relu(c_in: int, c_out: int, kernel: int | tuple[int, int],
                  padding: int | tuple[int, int], separable: bool) -> nn.Sequential:
    return nn.Sequential(conv2d(c_in, c_out, kernel, padding=padding, bias=False,
                                separable=separable),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class SpectrogramChannelsUNet(nn.Module):
    """Spectrogram-Channels U-Net: (B, in_channels, F, T) -> (B, out_channels, F, T) >= 0.

    Args:
        depth: pooling levels; channels ngf * 2**i at level i (capped at 8 * ngf).
        dropout: after each decoder upsampling (0.4 in the paper).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 4,
                 ngf: int = 16, dropout: float = 0.4, separable: bool = False) -> None:
        super().__init__()
        self.depth = depth
        widths = [ngf * min(2**i, 8) for i in range(depth + 1)]
        self.encoder = nn.ModuleList(
            _conv_bn_relu(in_channels if i == 0 else widths[i - 1], widths[i], 3, 1, separable)
            for i in range(depth))
        self.bottom = _conv_bn_relu(widths[depth - 1], widths[depth], 3, 1, separable)
        self.up = nn.ModuleList(
            nn.Sequential(conv_transpose2d(widths[i + 1], widths[i], 5, stride=2, padding=2,
                                           output_padding=1, bias=False, separable=separable),
                          nn.BatchNorm2d(widths[i]), nn.ReLU(), nn.Dropout(dropout))
            for i in range(depth))
        self.merge = nn.ModuleList(
            nn.Sequential(conv_transpose2d(2 * widths[i], widths[i], 3, padding=1, bias=False,
                                           separable=separable),
                          nn.BatchNorm2d(widths[i]), nn.ReLU())
            for i in range(depth))
        self.out = nn.Conv2d(widths[0], out_channels, 1)

    @property
    def multiple(self) -> int:
        multiple: int = 2**self.depth
        return multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for i in reversed(range(self.depth)):
            x = self.merge[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        return F.relu(self.out(x))


class TFC(nn.Module):
    """Time-frequency convolutions: `layers` densely connected 3x3 conv + BN + ReLU, each
    adding `growth` channels; a 1x1 conv brings the result to `c_out`. (B, c_in, F, T) ->
    (B, c_out, F, T)."""

    def __init__(self, c_in: int, c_out: int, layers: int = 3, growth: int = 16,
                 separable: bool = False, kernel: tuple[int, int] = (3, 3)) -> None:
        super().__init__()
        padding = (kernel[0] // 2, kernel[1] // 2)
        self.layers = nn.ModuleList(
            _conv_bn_relu(c_in + i * growth, growth, kernel, padding, separable)
            for i in range(layers))
        self.out = nn.Conv2d(c_in + layers * growth, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        out: torch.Tensor = self.out(x)
        return out


class TDC(TFC):
    """Time-distributed convolutions: like TFC, with kernels along frequency only (3 x 1)."""

    def __init__(self, c_in: int, c_out: int, layers: int = 3, growth: int = 16,
                 separable: bool = False) -> None:
        super().__init__(c_in, c_out, layers, growth, separable, kernel=(3, 1))


class TDF(nn.Module):
    """Time-distributed fully connected layers: per channel and frame, F -> F / bn -> F
    (Linear + BN + ReLU each), applied to every frame. (B, C, F, T) -> (B, C, F, T)."""

    def __init__(self, channels: int, num_bins: int, bottleneck: int = 4) -> None:
        super().__init__()
        hidden = max(num_bins // bottleneck, 1)
        self.first = nn.Linear(num_bins, hidden, bias=False)
        self.second = nn.Linear(hidden, num_bins, bias=False)
        self.norm1, self.norm2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(2, 3)  # (B, C, T, F): Linear acts on the last axis
        h = F.relu(self.norm1(self.first(h).transpose(2, 3)).transpose(2, 3))
        return F.relu(self.norm2(self.second(h).transpose(2, 3)))


class TFCTDF(nn.Module):
    """TFC followed by a TDF added residually."""

    def __init__(self, c_in: int, c_out: int, num_bins: int, layers: int = 3,
                 growth: int = 16, bottleneck: int = 4, separable: bool = False) -> None:
        super().__init__()
        self.tfc = TFC(c_in, c_out, layers, growth, separable)
        self.tdf = TDF(c_out, num_bins, bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tfc(x)
        out: torch.Tensor = x + self.tdf(x)
        return out


BlockName = Literal["tfc", "tdf", "tdc", "tfc_tdf"]


def intermediate_block(name: BlockName, c_in: int, c_out: int, num_bins: int, layers: int,
                       growth: int, bottleneck: int, separable: bool) -> nn.Module:
    """One intermediate block by name; "tdf" alone is a 1x1 conv to c_out, then a TDF."""
    if name == "tfc":
        return TFC(c_in, c_out, layers, growth, separable)
    if name == "tdc":
        return TDC(c_in, c_out, layers, growth, separable)
    if name == "tfc_tdf":
        return TFCTDF(c_in, c_out, num_bins, layers, growth, bottleneck, separable)
    if name == "tdf":
        return nn.Sequential(nn.Conv2d(c_in, c_out, 1), TDF(c_out, num_bins, bottleneck))
    raise ValueError(f"unknown block {name!r} (known: 'tfc', 'tdf', 'tdc', 'tfc_tdf')")


class IntermediateBlockUNet(nn.Module):
    """A U-Net of intermediate blocks: (B, in_channels, F, T) -> (B, out_channels, F, T).

    Args:
        num_bins: F at the input (the TDF layers are sized by it; halved per level).
        block: "tfc", "tdf", "tdc" or "tfc_tdf".
        depth: down / up levels; channels: block output channels (constant, as the
            slides' models); layers, growth: dense-block size; bottleneck: TDF's factor.
    """

    def __init__(self, in_channels: int = 2, out_channels: int = 2, num_bins: int = 512,
                 block: BlockName = "tfc_tdf", depth: int = 3, channels: int = 24,
                 layers: int = 3, growth: int = 16, bottleneck: int = 4,
                 separable: bool = False) -> None:
        super().__init__()
        if num_bins % 2**depth:
            raise ValueError(f"num_bins {num_bins} is not a multiple of 2**depth = {2**depth}")
        self.depth = depth

        def make(c_in: int, bins: int) -> nn.Module:
            return intermediate_block(block, c_in, channels, bins, layers, growth,
                                      bottleneck, separable)

        self.first = nn.Sequential(nn.Conv2d(in_channels, channels, 1),
                                   nn.BatchNorm2d(channels), nn.ReLU())
        self.encoder = nn.ModuleList(make(channels, num_bins >> i) for i in range(depth))
        self.down = nn.ModuleList(
            nn.Sequential(conv2d(channels, channels, 2, stride=2, bias=False,
                                 separable=separable), nn.BatchNorm2d(channels), nn.ReLU())
            for _ in range(depth))
        self.bottom = make(channels, num_bins >> depth)
        self.up = nn.ModuleList(
            nn.Sequential(conv_transpose2d(channels, channels, 2, stride=2, bias=False,
                                           separable=separable),
                          nn.BatchNorm2d(channels), nn.ReLU())
            for _ in range(depth))
        self.decoder = nn.ModuleList(make(2 * channels, num_bins >> i) for i in range(depth))
        self.out = nn.Conv2d(channels, out_channels, 1)

    @property
    def multiple(self) -> int:
        multiple: int = 2**self.depth
        return multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        skips = []
        for level, down in zip(self.encoder, self.down):
            x = level(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        for i in reversed(range(self.depth)):
            x = self.decoder[i](torch.cat([self.up[i](x), skips[i]], dim=1))
        out: torch.Tensor = self.out(x)
        return out
