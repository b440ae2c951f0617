"""The SoP audio U-Net: log-magnitude spectrogram -> K audio channels of the same size.

Structure (the original `Unet` with `num_downs = depth`), written iteratively:

- input BatchNorm2d(1);
- encoder level i = 0 .. depth-1: Conv2d(k4, s2, p1, no bias) from c_{i-1} to c_i channels,
  c_i = ngf * min(2^i, 8) (64, 128, 256, 512, 512, 512, 512 at the defaults). Level 0 is the
  bare conv; levels >= 1 apply LeakyReLU(0.2) first and BatchNorm after the conv, except the
  innermost level, which has no BatchNorm;
- decoder level i (innermost first): ReLU -> bilinear x2 upsample (align_corners=True) ->
  3x3 conv to c_{i-1} channels -> BatchNorm; its output is concatenated with the skip of
  level i. The outermost decoder conv has a bias, no BatchNorm, and gives K channels.

The skip connection of level i carries LeakyReLU(x), as in the original, whose in-place
LeakyReLU overwrites the tensor that `torch.cat([x, model(x)])` then concatenates; the
decoder's ReLU that follows makes this the same as skipping x itself.

Init as the original: conv weights N(0, 0.001), BatchNorm weight N(1, 0.02), bias 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avsep.models.blocks import conv2d


def unet_channels(depth: int, ngf: int) -> list[int]:
    """Encoder output channels c_0 .. c_{depth-1}."""
    return [ngf * min(2**i, 8) for i in range(depth)]


class DownBlock(nn.Module):
    """Strided 4x4 conv (halves H and W), optionally followed by BatchNorm."""

    def __init__(self, c_in: int, c_out: int, norm: bool, separable: bool = False) -> None:
        super().__init__()
        self.conv = conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False, separable=separable)
        self.norm = nn.BatchNorm2d(c_out) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.norm(x) if self.norm is not None else x


class UpBlock(nn.Module):
    """ReLU -> bilinear x2 upsample -> 3x3 conv -> optional BatchNorm."""

    def __init__(self, c_in: int, c_out: int, norm: bool, bias: bool,
                 separable: bool = False) -> None:
        super().__init__()
        self.conv = conv2d(c_in, c_out, 3, padding=1, bias=bias, separable=separable)
        self.norm = nn.BatchNorm2d(c_out) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(F.relu(x), scale_factor=2, mode="bilinear", align_corners=True)
        x = self.conv(x)
        return self.norm(x) if self.norm is not None else x


def init_sop_weights(module: nn.Module) -> None:
    """The original's init: conv weights N(0, 0.001); BatchNorm weight N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.001)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class AudioUNet(nn.Module):
    """SoP U-Net.

    Args:
        depth: number of down (and up) levels; the input's H and W must be multiples of
            2**depth (256 x 256 -> 2 x 2 at depth 7).
        ngf: channels of the first level.
        out_channels: K, the number of output audio channels.
        separable: depthwise-separable convolutions (see `avsep.models.blocks`); False is
            the original.
        skips: True (the original) concatenates each encoder level into the decoder; False
            gives the plain convolutional auto-encoder of the same depth (each decoder reads
            only the level below), the U-Net thesis' comparison.

    Shapes:
        forward(log_mag (B, 1, H, W)) -> (B, K, H, W), no output activation.
    """

    def __init__(self, depth: int = 7, ngf: int = 64, out_channels: int = 32,
                 separable: bool = False, skips: bool = True) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"AudioUNet: depth must be at least 2, got {depth}")
        self.depth, self.skips = depth, skips
        channels = unet_channels(depth, ngf)
        inputs = [1] + channels[:-1]
        self.input_norm = nn.BatchNorm2d(1)
        self.down = nn.ModuleList(
            DownBlock(inputs[i], channels[i], norm=0 < i < depth - 1, separable=separable)
            for i in range(depth)
        )
        # Decoder i reads the innermost features (level depth-1) or the concatenation of
        # level i's skip and decoder i+1's output (2 * c_i channels).
        up: list[UpBlock] = []
        for i in range(depth):
            c_in = channels[i] if i == depth - 1 or not skips else 2 * channels[i]
            if i == 0:
                up.append(UpBlock(c_in, out_channels, norm=False, bias=True,
                                  separable=separable))
            else:
                up.append(UpBlock(c_in, channels[i - 1], norm=True, bias=False,
                                  separable=separable))
        self.up = nn.ModuleList(up)
        init_sop_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = 2**self.depth
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(
                f"AudioUNet: expected (batch, 1, H, W) with H and W multiples of {multiple}, "
                f"got shape {tuple(x.shape)}"
            )
        h = self.down[0](self.input_norm(x))
        skips = []
        for block in self.down[1:]:
            h = F.leaky_relu(h, 0.2)
            skips.append(h)
            h = block(h)
        for i in range(self.depth - 1, 0, -1):
            h = self.up[i](h)
            if self.skips:
                h = torch.cat([skips[i - 1], h], dim=1)
        out: torch.Tensor = self.up[0](h)
        return out
