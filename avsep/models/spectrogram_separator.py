"""The seeds' spectrogram networks (`avsep.models.spectrogram_unets`) as separators.

`SpectrogramSeparator` puts either network behind the model boundary, conditioned on classes
like MHU-Net: the net gives one output per instrument class and the requested classes are
picked. Input "magnitude" (log warped magnitude, 256 bins) or "complex" (the linear STFT's
real and imaginary parts; the bins are cut to a multiple of 2**depth: all 512 at the
default n_fft 1022); output "direct" (the
sources' magnitudes or complex spectra) or "mask" (a sigmoid magnitude mask, or a complex
mask multiplied with the mixture STFT). Loss: L1 on magnitudes (warped axis) or on real and
imaginary parts, each source weighted by its class's balancing weight (the seed's M6: the
inverse of the class's mean waveform 2-norm, measured as a running mean over the training
batches and kept in the state dict) or equally (M5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from avsep.audio import NUM_WARPED_BINS
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
from avsep.models.spectrogram_unets import (
    BlockName,
    IntermediateBlockUNet,
    SpectrogramChannelsUNet,
)


@dataclass(frozen=True)
class SpectrogramConfig(SeparatorConfig):
    """A seed spectrogram network's settings.

    arch: "spectrogram_channels" or "intermediate" (see the module docstring).
    input: "magnitude" or "complex" (complex-as-channels).
    output: "direct" or "mask".
    balance: "m6" (class balancing weights) or "m5" (equal weights).
    num_classes: outputs, one per class in `avsep.classes.SOLOS_CLASSES` order.
    depth, ngf, dropout: Spectrogram-Channels U-Net sizes (depth: levels of either net).
    block, channels, layers, growth, bottleneck: intermediate-block U-Net sizes.
    separable: depthwise-separable convolutions.
    """

    arch: Literal["spectrogram_channels", "intermediate"] = "spectrogram_channels"
    input: Literal["magnitude", "complex"] = "magnitude"
    output: Literal["direct", "mask"] = "direct"
    balance: Literal["m6", "m5"] = "m6"
    num_classes: int = len(SOLOS_CLASSES)
    depth: int = 4
    ngf: int = 16
    dropout: float = 0.4
    block: BlockName = "tfc_tdf"
    channels: int = 24
    layers: int = 3
    growth: int = 16
    bottleneck: int = 4
    separable: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, value, known in (("arch", self.arch, ("spectrogram_channels", "intermediate")),
                                   ("input", self.input, ("magnitude", "complex")),
                                   ("output", self.output, ("direct", "mask")),
                                   ("balance", self.balance, ("m6", "m5"))):
            if value not in known:
                raise ValueError(f"unknown {name} {value!r} (known: {', '.join(known)})")


class SpectrogramSeparator(Separator):
    """A class-conditioned separator around a seed spectrogram network, built from a
    `SpectrogramConfig`.

    Condition: class indices (B, N) long, -1 for an empty slot.
    """

    config_class: ClassVar[type[SeparatorConfig]] = SpectrogramConfig
    config: SpectrogramConfig
    condition_kind: ClassVar[str] = "classes"
    model_name = "spectrogram_channels"
    class_names: tuple[str, ...] = SOLOS_CLASSES
    class_norm_sum: torch.Tensor  # (C,) float64 buffers: running sums for M6's weights
    class_count: torch.Tensor

    def __init__(self, config: SpectrogramConfig | None = None, name: str | None = None,
                 initialise: bool = True) -> None:
        config = config or SpectrogramConfig()
        super().__init__(config, name, initialise)
        input, output, balance = config.input, config.output, config.balance
        num_classes, depth, separable = config.num_classes, config.depth, config.separable
        self.input, self.output, self.balance = input, output, balance
        self.num_classes = num_classes
        parts = 2 if input == "complex" else 1
        # Complex input drops the Nyquist bin so that the bins halve evenly (512 of 513 at
        # n_fft 1024; all 512 at the default 1022 are kept: n_fft // 2 + 1 = 512).
        self.num_bins = NUM_WARPED_BINS if input == "magnitude" else self._even_bins(depth)
        self.input_norm = nn.BatchNorm2d(parts)
        if config.arch == "spectrogram_channels":
            self.net: nn.Module = SpectrogramChannelsUNet(parts, parts * num_classes, depth,
                                                          config.ngf, config.dropout, separable)
        else:
            self.net = IntermediateBlockUNet(parts, parts * num_classes, self.num_bins,
                                             config.block, depth, config.channels,
                                             config.layers, config.growth, config.bottleneck,
                                             separable)
        self.register_buffer("class_norm_sum", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("class_count", torch.zeros(num_classes, dtype=torch.float64))

    def _even_bins(self, depth: int) -> int:
        step: int = 2**depth
        return self.num_freq_bins // step * step

    @property
    def frame_multiple(self) -> int:
        return self.net.multiple  # type: ignore[return-value]

    def check_condition(self, condition: torch.Tensor, batch: int) -> None:
        check_class_condition(condition, batch, self.num_classes, type(self).__name__)

    # ----------------------------------------------------------------------- the nets
    def _features(self, spec: Spectrogram) -> torch.Tensor:
        if self.input == "magnitude":
            return spec["log_mag"]
        z = spec["complex"][:, : self.num_bins]
        return torch.stack([z.real, z.imag], dim=1)  # (B, 2, F', Tf)

    def net_outputs(self, spec: Spectrogram, condition: torch.Tensor) -> torch.Tensor:
        """(B, N, P, F', Tf): P = 1 (magnitude) or 2 (real, imaginary) per requested source."""
        self.check_condition(condition, spec["complex"].shape[0])
        x = self._features(spec)
        if x.shape[-1] % self.frame_multiple:
            raise ValueError(f"{type(self).__name__}: {x.shape[-1]} frames is not a multiple "
                             f"of {self.frame_multiple}")
        out = self.net(self.input_norm(x))  # (B, P * C, F', Tf)
        b, _, f, t = out.shape
        per_class = out.reshape(b, self.num_classes, -1, f, t)
        return pick_classes(per_class, condition)

    # ------------------------------------------------------------------- the objective
    def _source_targets(self, sources: torch.Tensor) -> torch.Tensor:
        """What the outputs estimate, (B, N, P, F', Tf), for sources (B, N, T)."""
        if self.input == "magnitude":
            return self.warped_magnitudes(sources).unsqueeze(2)
        b, n, t = sources.shape
        z = self.stft(sources.reshape(b * n, t))[:, : self.num_bins]
        return torch.stack([z.real, z.imag], dim=1).reshape(b, n, 2, *z.shape[1:])

    def _estimates(self, outputs: torch.Tensor, spec: Spectrogram) -> torch.Tensor:
        """Outputs -> estimates in the target's layout (B, N, P, F', Tf)."""
        if self.output == "direct":
            return outputs
        mix = self._features_of_mixture(spec)  # (B, 1, P, F', Tf)
        if self.input == "magnitude":
            return torch.sigmoid(outputs) * mix
        real = outputs[:, :, 0] * mix[:, :, 0] - outputs[:, :, 1] * mix[:, :, 1]
        imag = outputs[:, :, 0] * mix[:, :, 1] + outputs[:, :, 1] * mix[:, :, 0]
        return torch.stack([real, imag], dim=2)

    def _features_of_mixture(self, spec: Spectrogram) -> torch.Tensor:
        if self.input == "magnitude":
            return spec["warped_mag"].unsqueeze(1)  # (B, 1, 1, Fw, Tf)
        z = spec["complex"][:, : self.num_bins]
        return torch.stack([z.real, z.imag], dim=1).unsqueeze(1)

    def class_weights(self) -> torch.Tensor:
        """(C,) loss weights: 1 each (M5), or the inverse of each class's mean waveform
        2-norm normalised to mean 1 over the classes seen so far (M6; unseen classes 1)."""
        weights = torch.ones(self.num_classes, dtype=torch.float64,
                             device=self.class_count.device)
        seen = self.class_count > 0
        if self.balance == "m5" or not seen.any():
            return weights.float()
        inverse = self.class_count[seen] / self.class_norm_sum[seen].clamp_min(1e-12)
        weights[seen] = inverse / inverse.mean()
        return weights.float()

    @torch.no_grad()
    def _update_class_norms(self, sources: torch.Tensor, condition: torch.Tensor) -> None:
        keep = condition != EMPTY_SLOT
        norms = sources.double().norm(dim=-1)[keep]  # (K,)
        classes = condition[keep]
        self.class_norm_sum.index_add_(0, classes, norms)
        self.class_count.index_add_(0, classes, torch.ones_like(norms))

    def forward(self, mix: torch.Tensor, sources: torch.Tensor, condition: torch.Tensor
                ) -> Objective:
        if self.training and self.balance == "m6":
            self.check_condition(condition, mix.shape[0])
            self._update_class_norms(sources, condition)
        return super().forward(mix, sources, condition)

    def loss(self, outputs: torch.Tensor, spec: Spectrogram, sources: torch.Tensor,
             condition: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self._source_targets(sources)
        error = (self._estimates(outputs, spec) - target).abs().mean(dim=(2, 3, 4))  # (B, N)
        weights = self.class_weights()[condition.clamp_min(0)]
        weights = weights * (condition != EMPTY_SLOT)
        return (error * weights).sum() / (condition != EMPTY_SLOT).sum().clamp_min(1)

    def estimate_spectra(self, outputs: torch.Tensor, spec: Spectrogram) -> torch.Tensor:
        estimates = self._estimates(outputs, spec)
        if self.input == "magnitude":
            magnitude: torch.Tensor = self.unwarp(estimates[:, :, 0].clamp_min(0))  # (B, N, F, Tf)
            phase = torch.polar(torch.ones_like(spec["mag"]), spec["complex"].angle())
            return magnitude * phase.unsqueeze(1)
        z = torch.complex(estimates[:, :, 0], estimates[:, :, 1])  # (B, N, F', Tf)
        missing = self.num_freq_bins - z.shape[2]
        return F.pad(z, (0, 0, 0, missing)) if missing else z
