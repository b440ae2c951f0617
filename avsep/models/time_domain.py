"""Time-domain separators: Conv-TasNet, Wave-U-Net and HTMD-Net (the seed `htmd-net-slides`).

- `ConvTasNet`: a learned encoder (1-D conv, kernel L, stride L/2) into N channels, a
  separator of dilated 1-D conv blocks (bottleneck B, hidden H, kernel 3, dilations
  1, 2, ..., 2^(X-1), `stacks` repeats; BatchNorm and LeakyReLU as HTMD-Net's masking network)
  that gives one mask per output in the latent space, and a learned transposed-conv decoder.
- `WaveUNet`: `depth` down blocks (1-D conv kernel 15 + LeakyReLU, then decimation by 2),
  a bottleneck conv (and optionally an LSTM over time, as HTMD-Net's denoising network),
  `depth` up blocks (linear x2 upsampling, concatenation with the skip, conv kernel 5 +
  LeakyReLU), and a 1x1 conv to the outputs. Convolutions are zero-padded ("same"), not the
  original's context-cropping valid convolutions, so input and output have the same length.
- `HTMDNet`: the masking network gives an initial estimate per output; the denoising network
  refines it from [initial estimates, mixture]; deep supervision puts a loss on both.

All three are class-conditioned separators like MHU-Net: the nets produce one waveform per
instrument class and the requested classes (B, N) are picked from them (-1: an empty slot,
which gets silence). Shapes: mixtures (B, T), sources and estimates (B, N, T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from avsep.classes import SOLOS_CLASSES
from avsep.models.separator import (
    EMPTY_SLOT,
    Objective,
    Separator,
    SeparatorConfig,
    Spectrogram,
    check_class_condition,
    pick_classes,
)

LossName = Literal["mse", "mae"]


class DilatedConvBlock(nn.Module):
    """Conv-TasNet's 1-D conv block: 1x1 conv B -> H, LeakyReLU, BatchNorm, depthwise
    dilated conv (kernel 3), LeakyReLU, BatchNorm, 1x1 conv H -> B, added residually.

    Shapes: (batch, B, frames) -> (batch, B, frames).
    """

    def __init__(self, bottleneck: int, hidden: int, dilation: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(bottleneck, hidden, 1), nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden),
            nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation, groups=hidden),
            nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden),
            nn.Conv1d(hidden, bottleneck, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.net(x)
        return out


class ConvTasNet(nn.Module):
    """Learned encoder -> dilated conv separator -> masks -> learned decoder.

    Args:
        in_channels: input waveforms (1: the mixture).
        num_outputs: waveforms out (one per class).
        filters: N, encoder channels; kernel: L, encoder window (stride L / 2).
        bottleneck: B; hidden: H; layers: X blocks per stack; stacks: R.

    Shapes: (batch, in_channels, T) -> (batch, num_outputs, T), T a multiple of L / 2.
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, filters: int = 256,
                 kernel: int = 16, bottleneck: int = 128, hidden: int = 256, layers: int = 9,
                 stacks: int = 1) -> None:
        super().__init__()
        if kernel % 2:
            raise ValueError(f"ConvTasNet: kernel must be even, got {kernel}")
        self.num_outputs, self.filters, self.stride = num_outputs, filters, kernel // 2
        self.encoder = nn.Conv1d(in_channels, filters, kernel, stride=self.stride,
                                 padding=self.stride, bias=False)
        self.separator = nn.Sequential(
            nn.BatchNorm1d(filters), nn.Conv1d(filters, bottleneck, 1),
            *[DilatedConvBlock(bottleneck, hidden, 2**x) for _ in range(stacks)
              for x in range(layers)],
            nn.LeakyReLU(0.2), nn.Conv1d(bottleneck, num_outputs * filters, 1),
        )
        self.decoder = nn.ConvTranspose1d(filters, 1, kernel, stride=self.stride,
                                          padding=self.stride, bias=False)

    @property
    def length_multiple(self) -> int:
        return self.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        latent = F.relu(self.encoder(x))  # (batch, N, frames)
        masks = torch.sigmoid(self.separator(latent))
        b, _, frames = latent.shape
        masked = masks.reshape(b, self.num_outputs, self.filters, frames) * latent[:, None]
        out: torch.Tensor = self.decoder(masked.reshape(b * self.num_outputs, self.filters, frames))
        return out.reshape(b, self.num_outputs, -1)[..., :length]


class WaveUNet(nn.Module):
    """Wave-U-Net with "same" convolutions and an optional LSTM in the bottleneck.

    Args:
        in_channels / num_outputs: waveforms in and out.
        depth: down / up blocks (12 in Wave-U-Net and HTMD-Net).
        filters: channels added per level (24 in Wave-U-Net, 12 in HTMD-Net's denoiser).
        lstm: a bidirectional LSTM over time in the bottleneck (HTMD-Net).

    Shapes: (batch, in_channels, T) -> (batch, num_outputs, T), T a multiple of 2**depth.
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, depth: int = 12,
                 filters: int = 24, lstm: bool = False) -> None:
        super().__init__()
        self.depth = depth
        widths = [filters * (i + 1) for i in range(depth + 1)]
        self.down = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else widths[i - 1], widths[i], 15, padding=7)
            for i in range(depth))
        self.bottom = nn.Conv1d(widths[depth - 1], widths[depth], 15, padding=7)
        self.lstm = (nn.LSTM(widths[depth], widths[depth] // 2, batch_first=True,
                             bidirectional=True) if lstm else None)
        bottom_out = 2 * (widths[depth] // 2) if lstm else widths[depth]
        self.up = nn.ModuleList(
            nn.Conv1d((bottom_out if i == depth - 1 else widths[i + 1]) + widths[i],
                      widths[i], 5, padding=2)
            for i in range(depth))
        self.out = nn.Conv1d(widths[0] + in_channels, num_outputs, 1)

    @property
    def length_multiple(self) -> int:
        multiple: int = 2**self.depth
        return multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.length_multiple:
            raise ValueError(f"WaveUNet: length {x.shape[-1]} is not a multiple of "
                             f"{self.length_multiple}")
        skips, h = [], x
        for conv in self.down:
            h = F.leaky_relu(conv(h), 0.2)
            skips.append(h)
            h = h[..., ::2]  # decimation, as the original
        h = F.leaky_relu(self.bottom(h), 0.2)
        if self.lstm is not None:
            h = self.lstm(h.transpose(1, 2))[0].transpose(1, 2)
        for i in reversed(range(self.depth)):
            h = F.interpolate(h, scale_factor=2, mode="linear", align_corners=False)
            h = F.leaky_relu(self.up[i](torch.cat([h, skips[i]], dim=1)), 0.2)
        out: torch.Tensor = self.out(torch.cat([h, x], dim=1))
        return out


def _waveform_loss(name: LossName, estimate: torch.Tensor, target: torch.Tensor,
                   keep: torch.Tensor) -> torch.Tensor:
    """Mean squared or absolute error over the requested slots (`keep` (B, N) bool)."""
    error = (estimate.float() - target.float())
    error = error.square() if name == "mse" else error.abs()
    per_slot = error.mean(dim=-1)  # (B, N)
    return (per_slot * keep).sum() / keep.sum().clamp_min(1)


@dataclass(frozen=True)
class TimeDomainConfig(SeparatorConfig):
    """A time-domain separator's settings (defaults: HTMD-Net's).

    arch: "htmd" (HTMD-Net), "convtasnet" or "waveunet".
    num_classes: outputs, one per class in `avsep.classes.SOLOS_CLASSES` order.
    filters, kernel, bottleneck, hidden, layers, stacks: the Conv-TasNet part (masking
        network; HTMD-Net: one stack of 9 layers).
    unet_depth, unet_filters, lstm: the Wave-U-Net part (denoising network; HTMD-Net: 12
        levels, half of Wave-U-Net's 24 filters, an LSTM in the bottleneck).
    loss_masking, loss_denoising: "mse" or "mae" for each output (HTMD-Net's L_a, L_d).
    weight_masking, weight_denoising: (beta, alpha), the deep-supervision weights;
        weight_masking = 0 trains HTMD-Net without deep supervision. Conv-TasNet and
        Wave-U-Net alone use `loss_denoising` on their only output.
    The STFT settings only serve the ideal-mask baselines of the evaluation; the nets run on
    waveforms.
    """

    arch: Literal["htmd", "convtasnet", "waveunet"] = "htmd"
    num_classes: int = len(SOLOS_CLASSES)
    filters: int = 512
    kernel: int = 16
    bottleneck: int = 128
    hidden: int = 512
    layers: int = 9
    stacks: int = 1
    unet_depth: int = 12
    unet_filters: int = 12
    lstm: bool = True
    loss_masking: LossName = "mse"
    loss_denoising: LossName = "mse"
    weight_masking: float = 0.5
    weight_denoising: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.arch not in ("htmd", "convtasnet", "waveunet"):
            raise ValueError(f"unknown arch {self.arch!r} (known: 'htmd', 'convtasnet', "
                             "'waveunet')")
        for loss in (self.loss_masking, self.loss_denoising):
            if loss not in ("mse", "mae"):
                raise ValueError(f"unknown waveform loss {loss!r} (known: 'mse', 'mae')")


class TimeDomainSeparator(Separator):
    """Class-conditioned time-domain separator, built from a `TimeDomainConfig`.

    Condition: class indices (B, N) long, -1 for an empty slot.
    """

    config_class: ClassVar[type[SeparatorConfig]] = TimeDomainConfig
    config: TimeDomainConfig
    condition_kind: ClassVar[str] = "classes"
    model_name = "htmd_net"
    class_names: tuple[str, ...] = SOLOS_CLASSES

    def __init__(self, config: TimeDomainConfig | None = None, name: str | None = None,
                 initialise: bool = True) -> None:
        config = config or TimeDomainConfig()
        super().__init__(config, name, initialise)
        arch, num_classes, c = config.arch, config.num_classes, config
        self.arch, self.num_classes = arch, num_classes
        self.losses = (c.loss_masking, c.loss_denoising)
        self.weights = (c.weight_masking, c.weight_denoising)
        self.masker = (ConvTasNet(1, num_classes, c.filters, c.kernel, c.bottleneck, c.hidden,
                                  c.layers, c.stacks) if arch != "waveunet" else None)
        denoiser_in = num_classes + 1 if arch == "htmd" else 1
        self.denoiser = (WaveUNet(denoiser_in, num_classes, c.unet_depth, c.unet_filters,
                                  c.lstm) if arch != "convtasnet" else None)

    @property
    def frame_multiple(self) -> int:
        return 1

    @property
    def length_multiple(self) -> int:
        parts = [p.length_multiple for p in (self.masker, self.denoiser) if p is not None]
        return math.lcm(*parts)

    def valid_num_samples(self, num_samples: int) -> int:
        m = self.length_multiple
        return math.ceil(num_samples / m) * m

    def check_condition(self, condition: torch.Tensor, batch: int) -> None:
        check_class_condition(condition, batch, self.num_classes, type(self).__name__)

    def class_waveforms(self, mix: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(initial, final) per-class waveforms (B, C, T) of mixtures (B, T), T a multiple of
        `length_multiple`; `initial` is the masking network's (None for Wave-U-Net alone)."""
        x = mix[:, None]
        initial = self.masker(x) if self.masker is not None else None
        if self.denoiser is None:
            assert initial is not None  # Conv-TasNet alone: its output is the final one
            return None, initial
        denoiser_input = torch.cat([initial, x], dim=1) if initial is not None else x
        return initial, self.denoiser(denoiser_input)

    @staticmethod
    def pick(per_class: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The requested classes' waveforms (B, N, T) from (B, C, T); empty slots silent."""
        return pick_classes(per_class, condition)

    def _padded(self, waves: torch.Tensor) -> torch.Tensor:
        length = waves.shape[-1]
        return F.pad(waves, (0, self.valid_num_samples(length) - length))

    def forward(self, mix: torch.Tensor, sources: torch.Tensor, condition: torch.Tensor
                ) -> Objective:
        """Training pass: the loss of each supervised output on the requested slots."""
        if mix.dim() != 2 or sources.dim() != 3:
            raise ValueError(f"expected mix (batch, samples) and sources (batch, sources, "
                             f"samples), got {tuple(mix.shape)} and {tuple(sources.shape)}")
        self.check_condition(condition, mix.shape[0])
        length = mix.shape[1]
        initial, final = self.class_waveforms(self._padded(mix))
        keep = condition != EMPTY_SLOT
        estimate = self.pick(final, condition)[..., :length]
        loss = self.weights[1] * _waveform_loss(self.losses[1], estimate, sources, keep)
        if initial is not None and self.arch == "htmd" and self.weights[0] > 0:
            first = self.pick(initial, condition)[..., :length]
            loss = loss + self.weights[0] * _waveform_loss(self.losses[0], first, sources, keep)
        return Objective(loss=loss, outputs=estimate, spec=None)

    @torch.no_grad()
    def separate(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if mix.dim() != 2:
            raise ValueError(f"separate: expected mix (batch, samples), got shape "
                             f"{tuple(mix.shape)}")
        self.check_condition(condition, mix.shape[0])
        _, final = self.class_waveforms(self._padded(mix))
        return self.pick(final, condition)[..., :mix.shape[1]]

    def reconstruct(self, outputs: torch.Tensor, spec: Spectrogram | None, length: int
                    ) -> torch.Tensor:
        return outputs[..., :length].float()
