"""MHU-Net: a U-Net with one shared encoder and one decoder per instrument class.

Following Slizovskaia et al. (the model Solos reports as MHU-Net): the encoder has `depth`
strided 4x4 convs (16, 32, 64, 128, 256, 512 channels at the defaults), each followed by
BatchNorm and LeakyReLU(0.2) except the last; each class's decoder upsamples (bilinear x2),
concatenates the encoder features of the same resolution (the network input at the top) and
applies a 3x3 conv, BatchNorm, ReLU and dropout; its last conv gives one logit map. Masks
are complementary ratio masks: a softmax over the sources to extract, trained with MSE.

Departures from the reference code, all for a model conditioned on the classes present:
the decoders of the requested classes only are run (the reference runs all 13 and takes a
softmax over all of them), the softmax runs over the N requested sources, the last decoder
conv outputs a logit (no BatchNorm/ReLU before the softmax), and the input is the same
log-magnitude + BatchNorm as SoP (instead of dB rescaled to [0, 1] per example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from avsep.classes import SOLOS_CLASSES
from avsep.models.blocks import conv2d
from avsep.models.separator import MaskConfig, MaskSeparator, SeparatorConfig, Spectrogram

EMPTY_SLOT = -1
# Logit of an empty slot: its softmax share is ~0 (finite, so losses never see inf - inf).
EMPTY_LOGIT = -1e4


def mhunet_channels(depth: int, ngf: int) -> list[int]:
    """Encoder output channels c_0 .. c_{depth-1}: doubling from ngf, capped at 512."""
    return [min(ngf * 2**i, 512) for i in range(depth)]


class Encoder(nn.Module):
    """(B, 1, H, W) -> features at H/2 .. H/2^depth, c_0 .. c_{depth-1} channels."""

    def __init__(self, channels: list[int], separable: bool = False) -> None:
        super().__init__()
        inputs = [1] + channels[:-1]
        last = len(channels) - 1
        self.levels = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(inputs, channels)):
            conv = conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False, separable=separable)
            if i == last:
                self.levels.append(nn.Sequential(conv))
            else:
                self.levels.append(
                    nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True))
                )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class Decoder(nn.Module):
    """One class's decoder: encoder features (and input) -> one logit map (B, 1, H, W)."""

    def __init__(self, channels: list[int], dropout: float, separable: bool = False) -> None:
        super().__init__()
        skip_channels = [1] + channels[:-1]  # the input (1 channel), then c_0 .. c_{d-2}
        self.levels = nn.ModuleList()
        for i in range(len(channels)):
            c_in = skip_channels[i] + channels[i]
            if i == 0:
                self.levels.append(conv2d(c_in, 1, 3, padding=1, separable=separable))
                continue
            block: list[nn.Module] = [
                conv2d(c_in, skip_channels[i], 3, padding=1, bias=False, separable=separable),
                nn.BatchNorm2d(skip_channels[i]),
                nn.ReLU(inplace=True),
            ]
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            self.levels.append(nn.Sequential(*block))

    def forward(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        skips = [x] + features[:-1]
        h = features[-1]
        for i in range(len(self.levels) - 1, -1, -1):
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=True)
            h = self.levels[i](torch.cat([skips[i], h], dim=1))
        return h


class MultiHeadUNet(nn.Module):
    """Shared encoder + `num_classes` decoders.

    Shapes:
        forward(log_mag (B, 1, H, W), classes (B, N) long) -> logits (B, N, H, W);
        H and W multiples of 2**depth. Slots with class -1 are empty (logit -1e4).
    """

    def __init__(self, num_classes: int = 13, depth: int = 6, ngf: int = 16,
                 dropout: float = 0.2, separable: bool = False) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"MultiHeadUNet: depth must be at least 2, got {depth}")
        self.depth = depth
        self.num_classes = num_classes
        channels = mhunet_channels(depth, ngf)
        self.input_norm = nn.BatchNorm2d(1)
        self.encoder = Encoder(channels, separable)
        self.decoders = nn.ModuleList(Decoder(channels, dropout, separable)
                                      for _ in range(num_classes))

    def forward(self, log_mag: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(log_mag)
        features = self.encoder(x)
        b, n = classes.shape
        logits = torch.full((b, n, *x.shape[2:]), EMPTY_LOGIT, device=x.device,
                            dtype=x.dtype)
        # Each requested class's decoder runs once on the items that ask for it; a class
        # requested twice in one item (two violins) gets the same mask in both slots.
        for c in torch.unique(classes).tolist():
            if c == EMPTY_SLOT:
                continue
            hit = classes == c  # (B, N)
            rows = hit.any(dim=1)
            out = self.decoders[c](x[rows], [f[rows] for f in features])  # (R, 1, H, W)
            row_of_item = torch.cumsum(rows.long(), 0) - 1
            items, slots = hit.nonzero(as_tuple=True)
            logits[items, slots] = out[row_of_item[items], 0].to(logits.dtype)
        return logits


@dataclass(frozen=True)
class MHUNetConfig(MaskConfig):
    """MHU-Net's settings (defaults: the Solos experiments').

    num_classes: decoders, one per class in `avsep.classes.SOLOS_CLASSES` order.
    depth: encoder levels (6 as in the Solos experiments).
    ngf: channels of the first encoder level.
    dropout: dropout in the decoders (the reference uses 0.2).
    mask_type: "ratio" (default) or "binary".
    complementary: masks are a softmax over the requested sources (sum to one) and the
        ground truth is complementary; if False masks are per-source sigmoids.
    weighted_loss: weight the MSE per bin (the reference does not).
    separable: depthwise-separable convolutions (False: the reference).
    """

    num_classes: int = len(SOLOS_CLASSES)
    depth: int = 6
    ngf: int = 16
    dropout: float = 0.2
    mask_type: Literal["binary", "ratio"] = "ratio"
    complementary: bool = True
    weighted_loss: bool = False
    separable: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.depth <= 8:
            raise ValueError(f"depth must be in [2, 8] for 256 bins, got {self.depth}")


class MHUNetSeparator(MaskSeparator):
    """Class-conditioned separator with one decoder per instrument class, built from an
    `MHUNetConfig`.

    Condition: class indices (B, N) long, -1 for an empty slot (a mixture with fewer than
    N sources).
    """

    config_class: ClassVar[type[SeparatorConfig]] = MHUNetConfig
    config: MHUNetConfig
    condition_kind: ClassVar[str] = "classes"
    # Decoders of classes absent from a batch get no gradient.
    find_unused_parameters: ClassVar[bool] = True
    model_name = "mhunet"
    class_names: tuple[str, ...] = SOLOS_CLASSES
    loss_name = "mse"

    def __init__(self, config: MHUNetConfig | None = None, name: str | None = None,
                 initialise: bool = True) -> None:
        config = config or MHUNetConfig()
        super().__init__(config, name, initialise)
        self.audio_net = MultiHeadUNet(config.num_classes, config.depth, config.ngf,
                                       config.dropout, config.separable)

    @property
    def frame_multiple(self) -> int:
        multiple: int = 2**self.audio_net.depth
        return multiple

    @property
    def sigmoid_masks(self) -> bool:
        return not self.complementary

    def check_condition(self, condition: torch.Tensor, batch: int) -> None:
        if condition.dim() != 2 or condition.shape[0] != batch:
            raise ValueError(
                f"MHUNetSeparator: expected class indices (batch={batch}, sources), "
                f"got shape {tuple(condition.shape)}"
            )
        if condition.is_floating_point() or condition.is_complex():
            raise ValueError(
                f"MHUNetSeparator: class indices must be integers, got {condition.dtype}"
            )
        if condition.numel() and (condition.min() < EMPTY_SLOT
                                  or condition.max() >= self.audio_net.num_classes):
            raise ValueError(
                f"MHUNetSeparator: class indices must be in [0, {self.audio_net.num_classes}) "
                f"or -1 (empty), got {condition.tolist()}"
            )

    def mask_activation(self, logits: torch.Tensor) -> torch.Tensor:
        if self.complementary:
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def mask_logits(self, spec: torch.Tensor | Spectrogram, condition: torch.Tensor
                    ) -> torch.Tensor:
        log_mag = self._log_mag_of(spec)
        self.check_condition(condition, log_mag.shape[0])
        logits: torch.Tensor = self.audio_net(log_mag, condition)
        return logits
