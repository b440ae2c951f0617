"""The model boundary: a `Separator` owns STFT -> nets -> ISTFT and its own objective.

Training, validation, evaluation and inference call the same entry points:

    objective = model(mix, sources, condition)   # training pass: .loss, .outputs, .spec
    waves = model.reconstruct(objective.outputs, objective.spec, length)  # no second net run
    waves = model.separate(mix, condition)        # inference: (B, T) -> (B, N, T)

Shapes use `B` batch, `N` sources to extract, `T` samples, `F` = n_fft // 2 + 1 linear bins
(512 at the default 1022), `Fw` = 256 log-frequency ("warped") bins, `Tf` = 1 + T // hop STFT
frames. The condition is uint8 RGB frames (B, N, 3, T_frames, H, W) for
`condition_kind == "frames"` (the model normalises them itself) or class indices (B, N) for
`condition_kind == "classes"`.

A separator subclass implements `net_outputs` (the nets, from the mixture's `Spectrogram`),
`loss` (its objective against the sources) and `estimate_spectra` (complex spectra of the
sources from the nets' outputs), plus `check_condition` and `frame_multiple`. Mask models
(`MaskSeparator`), models that predict spectrograms directly and complex-as-channels models
differ only there. Each model is built from a frozen config dataclass (`SeparatorConfig` and
its subclasses), whose fields checkpoints store as `model_kwargs`.

`forward` is the training pass so that DDP / torch.compile wrap it; the spectrogram front end
and the loss run in float32 even under autocast (only the nets use the autocast dtype).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from avsep.audio import (
    HOP_LENGTH,
    ISTFT,
    N_FFT,
    NUM_WARPED_BINS,
    STFT,
    LogFreqUnwarp,
    LogFreqWarp,
    LogMagnitude,
    loss_weight,
    num_frames,
)
from avsep.geometry import SAMPLE_RATE
from avsep.losses import MaskLoss
from avsep.masks import ground_truth_masks
from avsep.models.vision import FrameNormalize

MASK_THRESHOLD = 0.5


class Spectrogram(TypedDict):
    """What `Separator.spectrogram` returns.

    complex: (B, F, Tf) complex STFT of the mixture.
    mag: (B, F, Tf) its magnitude.
    warped_mag: (B, 1, Fw, Tf) magnitude on the log-frequency axis (masks, loss weights).
    log_mag: (B, 1, Fw, Tf) log(warped_mag + 1e-10), the network input.
    """

    complex: torch.Tensor
    mag: torch.Tensor
    warped_mag: torch.Tensor
    log_mag: torch.Tensor


@dataclass
class Objective:
    """What a training pass returns.

    loss: () float32.
    outputs: the nets' raw output (model-specific; mask logits (B, N, Fw, Tf) for mask
        models), for `Separator.reconstruct`.
    spec: the mixture's `Spectrogram` (None for models that work on waveforms).
    """

    loss: torch.Tensor
    outputs: torch.Tensor
    spec: Spectrogram | None


@dataclass(frozen=True)
class SeparatorConfig:
    """What every separator is built from; each model's config adds its own fields.

    n_fft: STFT size (1022 in Sound of Pixels: 512 bins).
    hop_length: STFT hop in samples (256).
    sample_rate: the audio rate the model works at (`avsep.geometry.SAMPLE_RATE`); inference
        resamples to it and training checks the shards against it.
    """

    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.n_fft < 2 or self.n_fft % 2 or not 0 < self.hop_length <= self.n_fft:
            raise ValueError(f"need an even n_fft >= 2 and 0 < hop_length <= n_fft, got "
                             f"n_fft={self.n_fft}, hop_length={self.hop_length}")
        if self.sample_rate <= 0:
            raise ValueError(f"need a positive sample_rate, got {self.sample_rate}")


class Separator(nn.Module):
    """Common base of all separators: the audio front and back end around the nets.

    Built from `config` (an instance of the class's `config_class`); `model_name` is the
    registry name that built it (`avsep.create_model`), else the class's default.
    `initialise=False` skips initialisation from outside weights that a config may name
    (the Sound of Pixels' ImageNet ResNet): the caller loads weights itself.

    Attributes:
        config: the typed configuration; `create_model(model_name, **model_kwargs)` rebuilds
            the same architecture (checkpoints store both).
        condition_kind: "frames" (per-source video frames) or "classes" (class indices).
        find_unused_parameters: True when a step may leave parameters without gradients
            (MHU-Net runs only the requested decoders): pass it to DistributedDataParallel.
        uses_labels: the training pass also takes the clips' class indices `labels` (B, N)
            (an auxiliary objective; `MixAndSeparate` passes them only to such models).
        draws_noise: the training pass draws random numbers of its own; it then takes
            `generator`, the step's seeded generator on the model's device, so that a
            resumed run draws what an uninterrupted one does.
    """

    config_class: ClassVar[type[SeparatorConfig]] = SeparatorConfig
    condition_kind: ClassVar[str]
    find_unused_parameters: ClassVar[bool] = False
    model_name: str

    def __init__(self, config: SeparatorConfig, name: str | None = None,
                 initialise: bool = True) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} is built from a "
                            f"{self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        if name is not None:
            self.model_name = name
        self.n_fft, self.hop_length = config.n_fft, config.hop_length
        self.sample_rate = config.sample_rate
        self.stft = STFT(self.n_fft, self.hop_length)
        self.istft = ISTFT(self.n_fft, self.hop_length)
        self.warp = LogFreqWarp(self.num_freq_bins, NUM_WARPED_BINS)
        self.unwarp = LogFreqUnwarp(NUM_WARPED_BINS, self.num_freq_bins)
        self.log_magnitude = LogMagnitude()
        self.normalize_frames = FrameNormalize()

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """The configuration as constructor keywords (what checkpoints store)."""
        return dataclasses.asdict(self.config)

    @property
    def uses_labels(self) -> bool:
        return False

    @property
    def draws_noise(self) -> bool:
        return False

    @property
    def num_freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    # ----------------------------------------------------------------- subclass interface
    @property
    def frame_multiple(self) -> int:
        """The number of STFT frames Tf given to the nets must be a multiple of this."""
        raise NotImplementedError

    def check_condition(self, condition: torch.Tensor, batch: int) -> None:
        """Raise ValueError if `condition` does not fit a batch of `batch` mixtures."""
        raise NotImplementedError

    def net_outputs(self, spec: Spectrogram, condition: torch.Tensor) -> torch.Tensor:
        """The nets' raw output for mixtures `spec` (model-specific layout, (B, N, ...))."""
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, spec: Spectrogram, sources: torch.Tensor,
             condition: torch.Tensor) -> torch.Tensor:
        """The training objective () of `outputs` against the sources (B, N, T)."""
        raise NotImplementedError

    def estimate_spectra(self, outputs: torch.Tensor, spec: Spectrogram) -> torch.Tensor:
        """Complex STFTs of the separated sources (B, N, F, Tf) from the nets' outputs."""
        raise NotImplementedError

    # ------------------------------------------------------------------- entry points
    def forward(self, mix: torch.Tensor, sources: torch.Tensor, condition: torch.Tensor
                ) -> Objective:
        """The training pass: mixtures (B, T) whose sources are (B, N, T) -> `Objective`.

        T must give a frame count that is a multiple of `frame_multiple` (training clips of
        65535 samples do); use `separate` for any length.
        """
        spec = self.training_spectrogram(mix, sources)
        outputs = self.net_outputs(spec, condition)
        with full_precision(mix):
            loss = self.loss(outputs.float(), spec, sources, condition)
        return Objective(loss=loss, outputs=outputs, spec=spec)

    def training_spectrogram(self, mix: torch.Tensor, sources: torch.Tensor) -> Spectrogram:
        """The mixtures' spectrogram for a training pass, in float32 even under autocast,
        after checking mix (B, T) and sources (B, N, T)."""
        check_waveforms(mix, 2, "mix (batch, samples)")
        check_waveforms(sources, 3, "sources (batch, sources, samples)")
        with full_precision(mix):
            return self.spectrogram(mix)

    @torch.no_grad()
    def separate(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Separate mixtures (B, T) into (B, N, T) waveforms.

        Inputs whose frame count does not suit the nets are zero-padded for them and the
        output is cropped to T. Output is not clipped. Runs without gradients; call `.eval()`
        first.
        """
        check_waveforms(mix, 2, "mix (batch, samples)")
        self.check_condition(condition, mix.shape[0])
        length = mix.shape[1]
        padded = F.pad(mix, (0, self.valid_num_samples(length) - length))
        spec = self.spectrogram(padded)
        return self.reconstruct(self.net_outputs(spec, condition), spec, length)

    def reconstruct(self, outputs: torch.Tensor, spec: Spectrogram, length: int
                    ) -> torch.Tensor:
        """Waveforms (B, N, length) from the nets' outputs for mixtures `spec`."""
        estimates = self.estimate_spectra(outputs.float(), spec)  # (B, N, F, Tf)
        b, n = estimates.shape[:2]
        # The overlap-add is trimmed sample-exactly to `length`: the same samples as the
        # padded signal's inverse cropped afterwards.
        waves: torch.Tensor = self.istft(estimates.reshape(b * n, *estimates.shape[2:]), length)
        return waves.reshape(b, n, length)

    # ----------------------------------------------------------------------- shared parts
    def spectrogram(self, mix: torch.Tensor) -> Spectrogram:
        """STFT, magnitude, warped magnitude and log-magnitude of mixtures (B, T)."""
        spec = self.stft(mix)
        mag = spec.abs()
        warped = self.warp(mag.unsqueeze(1))
        return Spectrogram(
            complex=spec, mag=mag, warped_mag=warped, log_mag=self.log_magnitude(warped)
        )

    def warped_magnitudes(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Warped magnitudes of several waveforms per item: (B, N, T) -> (B, N, Fw, Tf)."""
        check_waveforms(waveforms, 3, "waveforms (batch, sources, samples)")
        b, n, t = waveforms.shape
        mag = self.stft(waveforms.reshape(b * n, t)).abs()
        warped: torch.Tensor = self.warp(mag)
        return warped.reshape(b, n, *warped.shape[1:])

    def valid_num_samples(self, num_samples: int) -> int:
        """The smallest length >= num_samples whose frame count suits the nets."""
        frames = num_frames(num_samples, self.hop_length)
        target = math.ceil(frames / self.frame_multiple) * self.frame_multiple
        return max(num_samples, (target - 1) * self.hop_length)

    def num_stft_frames(self, num_samples: int) -> int:
        """Tf for a signal of `num_samples` samples."""
        return num_frames(num_samples, self.hop_length)


EMPTY_SLOT = -1
"""A class-conditioned model's condition entry for an empty slot (fewer sources)."""


def check_class_condition(condition: torch.Tensor, batch: int, num_classes: int,
                          name: str) -> None:
    """Raise ValueError unless `condition` is class indices (batch, N) in [0, num_classes)
    or -1 (an empty slot)."""
    if condition.dim() != 2 or condition.shape[0] != batch:
        raise ValueError(f"{name}: expected class indices (batch={batch}, sources), got "
                         f"shape {tuple(condition.shape)}")
    if condition.is_floating_point() or condition.is_complex():
        raise ValueError(f"{name}: class indices must be integers, got {condition.dtype}")
    if condition.numel() and (condition.min() < EMPTY_SLOT or condition.max() >= num_classes):
        raise ValueError(f"{name}: class indices must be in [0, {num_classes}) or -1 "
                         f"(empty), got {condition.tolist()}")


def pick_classes(per_class: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """The requested classes' outputs: (B, C, ...) and indices (B, N) -> (B, N, ...);
    empty slots (-1) get zeros."""
    shape = per_class.shape
    flat = per_class.reshape(shape[0], shape[1], -1)
    index = condition.clamp_min(0)[..., None].expand(-1, -1, flat.shape[-1])
    picked = flat.gather(1, index) * (condition != EMPTY_SLOT)[..., None].to(flat.dtype)
    return picked.reshape(shape[0], condition.shape[1], *shape[2:])


def check_waveforms(x: torch.Tensor, rank: int, layout: str) -> None:
    if x.dim() != rank:
        raise ValueError(f"expected {layout}, got shape {tuple(x.shape)}")


def full_precision(like: torch.Tensor) -> torch.autocast:
    """A context that turns autocast off (the STFT front end and the loss stay float32)."""
    return torch.autocast(like.device.type, enabled=False)


@dataclass(frozen=True)
class MaskConfig(SeparatorConfig):
    """A mask separator's objective (subclasses choose their own defaults).

    mask_type: "binary" or "ratio", the masks the model is trained to predict.
    complementary: ground-truth masks are complementary (Solos style); for softmax models the
        predicted masks also sum to one over sources.
    weighted_loss: weight the loss per bin with log1p(|mix|) (`avsep.audio.loss_weight`).
    """

    mask_type: Literal["binary", "ratio"] = "binary"
    complementary: bool = False
    weighted_loss: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_type not in ("binary", "ratio"):
            raise ValueError(f"unknown mask_type {self.mask_type!r} (known: 'binary', 'ratio')")


class MaskTargets(NamedTuple):
    """What a mask separator's objective compares its logits with, for a batch of B mixtures
    of N sources.

    masks: (B, N, Fw, Tf) ground-truth masks.
    weight: (B, 1, Fw, Tf) per-bin loss weights, or None.
    source_mags: (B, N, Fw, Tf) the sources' warped magnitudes (auxiliary objectives reuse
        them).
    """

    masks: torch.Tensor
    weight: torch.Tensor | None
    source_mags: torch.Tensor


class MaskSeparator(Separator):
    """A separator whose nets predict one mask per source on the warped spectrogram.

    Subclasses implement `mask_logits`, `mask_activation` and `sigmoid_masks`, and set
    `loss_name`: "bce", "l1" or "mse" (see `avsep.losses.MaskLoss`). The config
    (`MaskConfig`) gives `mask_type`, `complementary` and `weighted_loss`.

    Objective: ground-truth masks from the sources' warped magnitudes against the mixture's
    (`avsep.masks.ground_truth_masks`), the mask loss on the logits. Reconstruction: masks
    unwarped to the linear axis, thresholded for binary models, times the mixture STFT
    (mixture phase).
    """

    config_class: ClassVar[type[SeparatorConfig]] = MaskConfig
    config: MaskConfig
    loss_name: str

    def __init__(self, config: MaskConfig, name: str | None = None,
                 initialise: bool = True) -> None:
        super().__init__(config, name, initialise)
        self.mask_type = config.mask_type
        self.complementary = config.complementary
        self.weighted_loss = config.weighted_loss

    @property
    def sigmoid_masks(self) -> bool:
        """True when masks are sigmoid(logits), so BCE-with-logits applies."""
        raise NotImplementedError

    def mask_logits(self, spec: torch.Tensor | Spectrogram, condition: torch.Tensor
                    ) -> torch.Tensor:
        """Mask logits in the warped domain.

        Args:
            spec: the log-magnitude (B, 1, Fw, Tf) or the dict from `spectrogram`.
            condition: (B, N, 3, T_frames, H, W) uint8 frames or (B, N) class indices.

        Returns:
            (B, N, Fw, Tf) logits; `mask_activation` turns them into masks.
        """
        raise NotImplementedError

    def mask_activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (B, N, Fw, Tf) -> masks of the same shape."""
        raise NotImplementedError

    def net_outputs(self, spec: Spectrogram, condition: torch.Tensor) -> torch.Tensor:
        return self.mask_logits(spec, condition)

    def loss(self, outputs: torch.Tensor, spec: Spectrogram, sources: torch.Tensor,
             condition: torch.Tensor) -> torch.Tensor:
        return self.mask_loss(outputs, self.mask_targets(spec, sources))

    @torch.no_grad()
    def mask_targets(self, spec: Spectrogram, sources: torch.Tensor) -> MaskTargets:
        """Ground-truth masks and loss weights of the sources (B, N, T) of mixtures `spec`."""
        source_mags = self.warped_magnitudes(sources)  # (B, N, Fw, Tf)
        masks = ground_truth_masks(source_mags, spec["warped_mag"], self.mask_type,
                                   self.complementary)
        weight = loss_weight(spec["warped_mag"]) if self.weighted_loss else None
        return MaskTargets(masks=masks, weight=weight, source_mags=source_mags)

    def mask_loss(self, logits: torch.Tensor, targets: MaskTargets) -> torch.Tensor:
        """The mask loss () of logits (B, N, Fw, Tf) against `targets`."""
        loss: torch.Tensor = MaskLoss.for_model(self)(logits, targets.masks, targets.weight)
        return loss

    def estimate_spectra(self, outputs: torch.Tensor, spec: Spectrogram) -> torch.Tensor:
        linear = self.reconstruction_masks(self.mask_activation(outputs))  # (B, N, F, Tf)
        return linear * spec["complex"].unsqueeze(1)

    def _log_mag_of(self, spec: torch.Tensor | Spectrogram) -> torch.Tensor:
        log_mag = spec["log_mag"] if isinstance(spec, dict) else spec
        m = self.frame_multiple
        if (log_mag.dim() != 4 or log_mag.shape[1] != 1 or log_mag.shape[2] != NUM_WARPED_BINS
                or log_mag.shape[3] % m):
            raise ValueError(
                f"{type(self).__name__}: expected a log-magnitude (batch, 1, {NUM_WARPED_BINS}, "
                f"frames) with frames a multiple of {m}, got shape {tuple(log_mag.shape)}"
            )
        return log_mag

    def reconstruction_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """Warped masks (..., Fw, Tf) -> linear masks (..., F, Tf) used to rebuild audio.

        Masks are unwarped first; binary masks are then thresholded at 0.5 (or, for masks
        that sum to one over sources, the most likely source of each bin wins).
        """
        linear: torch.Tensor = self.unwarp(masks)
        if self.mask_type != "binary":
            return linear
        if self.complementary and not self.sigmoid_masks:
            winner = linear.argmax(dim=1, keepdim=True)
            return torch.zeros_like(linear).scatter_(1, winner, 1.0)
        return (linear > MASK_THRESHOLD).to(linear.dtype)


