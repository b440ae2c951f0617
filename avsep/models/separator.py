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
differ only there. The STFT settings are constructor arguments, stored in `model_kwargs` and
so in checkpoints.

`forward` is the training pass so that DDP / torch.compile wrap it; the spectrogram front end
and the loss run in float32 even under autocast (only the nets use the autocast dtype).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypedDict

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
from avsep.classes import SOLOS_CLASSES
from avsep.geometry import SAMPLE_RATE
from avsep.losses import MaskLoss
from avsep.masks import ground_truth_masks
from avsep.mixing import FrameNormalize, off_screen_clips
from avsep.models.spectrogram_unets import IntermediateBlockUNet, SpectrogramChannelsUNet
from avsep.models.synthesizer import Synthesizer
from avsep.models.tagger import AudioTagger, heard_targets
from avsep.models.unet import AudioUNet
from avsep.models.vision import DilatedResNetVision

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


class Separator(nn.Module):
    """Common base of all separators: the audio front and back end around the nets.

    Args:
        n_fft: STFT size (1022 in Sound of Pixels: 512 bins).
        hop_length: STFT hop in samples (256).
        sample_rate: audio rate the model works at (11025 Hz).

    Attributes:
        condition_kind: "frames" (per-source video frames) or "classes" (class indices).
        model_name: the registry name that builds the model (`avsep.create_model`).
        model_kwargs: the full constructor kwargs; `create_model(model_name, **model_kwargs)`
            rebuilds the same architecture (checkpoints store both).
        find_unused_parameters: True when a step may leave parameters without gradients
            (MHU-Net runs only the requested decoders): pass it to DistributedDataParallel.
    """

    condition_kind: ClassVar[str]
    find_unused_parameters: ClassVar[bool] = False
    # True when the training pass also takes the clips' class indices as `labels` (B, N)
    # (an auxiliary objective; `MixAndSeparate` passes them only to such models).
    uses_labels: bool = False
    # True when the training pass can take `off_screen` (B, T): a part of the mixture that
    # belongs to no shown source (`data.off_screen_audio`), which the objective must know
    # when the targets are relative to the sources rather than to the mixture.
    accepts_off_screen: ClassVar[bool] = False
    # True when the training pass draws random numbers of its own (the tagger's noise): it
    # then takes `generator`, the step's seeded generator on the model's device, so that a
    # resumed run draws what an uninterrupted one does.
    draws_noise: bool = False
    model_name: str
    model_kwargs: dict[str, Any]

    def __init__(self, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH,
                 sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        if n_fft < 2 or n_fft % 2 or not 0 < hop_length <= n_fft:
            raise ValueError(f"need an even n_fft >= 2 and 0 < hop_length <= n_fft, got "
                             f"n_fft={n_fft}, hop_length={hop_length}")
        self.n_fft, self.hop_length, self.sample_rate = n_fft, hop_length, sample_rate
        self.stft = STFT(n_fft, hop_length)
        self.istft = ISTFT(n_fft, hop_length)
        self.warp = LogFreqWarp(self.num_freq_bins, NUM_WARPED_BINS)
        self.unwarp = LogFreqUnwarp(NUM_WARPED_BINS, self.num_freq_bins)
        self.log_magnitude = LogMagnitude()
        self.normalize_frames = FrameNormalize()

    @property
    def num_freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    def stft_kwargs(self) -> dict[str, int]:
        """The STFT settings as constructor kwargs (for `model_kwargs`)."""
        return {"n_fft": self.n_fft, "hop_length": self.hop_length,
                "sample_rate": self.sample_rate}

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
    def forward(self, mix: torch.Tensor, sources: torch.Tensor, condition: torch.Tensor, *,
                off_screen: torch.Tensor | None = None) -> Objective:
        """The training pass: mixtures (B, T) whose sources are (B, N, T) -> `Objective`.

        T must give a frame count that is a multiple of `frame_multiple` (training clips of
        65535 samples do); use `separate` for any length. `off_screen` (B, T), for models
        that `accepts_off_screen`: the part of `mix` that is none of the shown sources
        (mix = sources.sum(1) + off_screen); None: mix = sources.sum(1), as the original.
        """
        _check_waveforms(mix, 2, "mix (batch, samples)")
        _check_waveforms(sources, 3, "sources (batch, sources, samples)")
        extra = self._off_screen_kwargs(mix, off_screen)
        with _full_precision(mix):
            spec = self.spectrogram(mix)
        outputs = self.net_outputs(spec, condition)
        with _full_precision(mix):
            loss = self.loss(outputs.float(), spec, sources, condition, **extra)
        return Objective(loss=loss, outputs=outputs, spec=spec)

    def _off_screen_kwargs(self, mix: torch.Tensor, off_screen: torch.Tensor | None
                           ) -> dict[str, torch.Tensor]:
        """{"off_screen": off_screen} for `loss`, {} without it; an error for a model that
        does not `accepts_off_screen` or for a shape that is not the mixture's (B, T)."""
        if off_screen is None:
            return {}
        if not self.accepts_off_screen:
            raise ValueError(f"{type(self).__name__} cannot train with off-screen sound "
                             "(data.off_screen_audio / off_screen_noise): its objective "
                             "has no target for it")
        if off_screen.shape != mix.shape:
            raise ValueError(f"expected off_screen of the mixture's shape "
                             f"{tuple(mix.shape)}, got {tuple(off_screen.shape)}")
        return {"off_screen": off_screen}

    @torch.no_grad()
    def separate(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Separate mixtures (B, T) into (B, N, T) waveforms.

        Inputs whose frame count does not suit the nets are zero-padded for them and the
        output is cropped to T. Output is not clipped. Runs without gradients; call `.eval()`
        first.
        """
        _check_waveforms(mix, 2, "mix (batch, samples)")
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
        _check_waveforms(waveforms, 3, "waveforms (batch, sources, samples)")
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


def _check_waveforms(x: torch.Tensor, rank: int, layout: str) -> None:
    if x.dim() != rank:
        raise ValueError(f"expected {layout}, got shape {tuple(x.shape)}")


def _full_precision(like: torch.Tensor) -> torch.autocast:
    """A context that turns autocast off (the STFT front end and the loss stay float32)."""
    return torch.autocast(like.device.type, enabled=False)


class MaskSeparator(Separator):
    """A separator whose nets predict one mask per source on the warped spectrogram.

    Subclasses implement `mask_logits` and `mask_activation`, and set:

    Attributes:
        mask_type: "binary" or "ratio", the masks the model is trained to predict.
        complementary: ground-truth masks are complementary (Solos style); for softmax
            models the predicted masks also sum to one over sources.
        loss_name: "bce", "l1" or "mse" (see `avsep.losses.MaskLoss`).
        weighted_loss: whether training weights bins with `avsep.audio.loss_weight`.

    Objective: ground-truth masks from the sources' warped magnitudes against the mixture's
    (`avsep.masks.ground_truth_masks`), the mask loss on the logits. Reconstruction: masks
    unwarped to the linear axis, thresholded for binary models, times the mixture STFT
    (mixture phase).
    """

    def __init__(self, mask_type: str, complementary: bool, loss_name: str,
                 weighted_loss: bool, **stft: int) -> None:
        super().__init__(**stft)
        if mask_type not in ("binary", "ratio"):
            raise ValueError(f"unknown mask_type {mask_type!r} (known: 'binary', 'ratio')")
        self.mask_type: Literal["binary", "ratio"] = (
            "binary" if mask_type == "binary" else "ratio")
        self.complementary = complementary
        self.loss_name = loss_name
        self.weighted_loss = weighted_loss

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

    accepts_off_screen = True

    def loss(self, outputs: torch.Tensor, spec: Spectrogram, sources: torch.Tensor,
             condition: torch.Tensor, off_screen: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            heard = sources if off_screen is None else torch.cat(
                [sources, off_screen.unsqueeze(1)], dim=1)
            # The off-screen sound is one more source without a picture: complementary masks
            # then share each bin with it too, and its own mask is dropped.
            heard_mags = self.warped_magnitudes(heard)  # (B, N[+1], Fw, Tf)
            self._keep_source_magnitudes(heard_mags[:, :sources.shape[1]])
            target = ground_truth_masks(heard_mags, spec["warped_mag"],
                                        self.mask_type, self.complementary
                                        )[:, :sources.shape[1]]
            weight = loss_weight(spec["warped_mag"]) if self.weighted_loss else None
        loss: torch.Tensor = MaskLoss.for_model(self)(outputs, target, weight)
        return loss

    def _keep_source_magnitudes(self, magnitudes: torch.Tensor) -> None:
        """A hook for subclasses whose other objectives reuse the sources' warped
        magnitudes (B, N, Fw, Tf), computed once per training pass by `loss`."""

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


def audio_backbone_net(name: str, depth: int, ngf: int, num_channels: int,
                       separable: bool, skips: bool = True) -> nn.Module:
    """The audio network of a Sound of Pixels model: (B, 1, Fw, Tf) -> (B, K, Fw, Tf)."""
    if not skips and name != "unet":
        raise ValueError(f"skips=False is an option of the 'unet' backbone, not {name!r}")
    if name == "unet":
        return AudioUNet(depth=depth, ngf=ngf, out_channels=num_channels, separable=separable,
                         skips=skips)
    if name == "spectrogram_channels":
        return SpectrogramChannelsUNet(1, num_channels, depth, ngf, separable=separable)
    if name == "tfc_tdf":
        return IntermediateBlockUNet(1, num_channels, NUM_WARPED_BINS, "tfc_tdf", depth,
                                     channels=ngf, separable=separable)
    raise ValueError(f"unknown audio_backbone {name!r} (known: 'unet', "
                     "'spectrogram_channels', 'tfc_tdf')")


class SoundOfPixels(MaskSeparator):
    """The Sound of Pixels: dilated ResNet-18 + audio U-Net + synthesizer.

    Args:
        num_channels: K, shared by the vision net, the U-Net output and the synthesizer.
        ngf: U-Net channels of the first level.
        depth: U-Net levels (7 = the original "unet7").
        vision_arch: "resnet18" or "tiny" (test-only).
        vision_width: channel multiplier of the dilated ResNet-18 (1.0: the original). The
            vision net is most of a small model's training step (demo preset on 2 CPU cores:
            1.07 s of the vision net's forward and backward against 0.28 s for the U-Net's),
            so a narrower one buys more steps of a budget; from scratch only.
        pretrained: initialise the ResNet from ImageNet weights (torchvision's cache or
            download; an error when they cannot be had, see `load_imagenet_state`).
        weights_path: explicit ImageNet ResNet-18 file (else $AVSEP_RESNET18_WEIGHTS, then
            torchvision's cache).
        mask_type: "binary" (BCE) or "ratio" (L1).
        complementary: train on complementary ground-truth masks (as Solos did for SoP).
        output_activation: mask activation, "sigmoid" (the original's default, also for
            ratio masks) or "relu" (unbounded ratio masks; ratio masks only).
        weighted_loss: weight the loss per bin with log1p(|mix|) (the released model did).
        visual_activation: "sigmoid" (the original), "relu" or "none", applied to the
            visual features (see `DilatedResNetVision`).
        visual_norm: "none" (the original) or "batch", a BatchNorm of the visual vectors
            (see `DilatedResNetVision`); helps training from scratch.
        audio_backbone: "unet" (the original U-Net), or one of the seeds' networks,
            "spectrogram_channels" or "tfc_tdf" (magnitude input): its K output channels
            are the audio components the synthesizer combines.
        separable: depthwise-separable convolutions in the audio network (False: the
            original).
        skips: the U-Net's skip connections (True: the original); False makes it a plain
            auto-encoder (the U-Net thesis' comparison; `unet` backbone only).
        side_by_side: the share of training batches (0: the original) whose N sources'
            frames are shown side by side in one picture, each source's visual vector pooled
            over its own panel (`DilatedResNetVision.side_by_side`). Evaluation and
            separation always see each source's frames alone, as the original. It trains the
            per-location features on pictures of several players, which is how localization
            reads them (see docs/localization.md for the measurements).
        visual_pooling: how the visual features are pooled over locations into one vector
            per source: "max" (the original's default `img_pool`) or "mean" (its
            "avgpool"). The synthesizer is linear in the visual vector, so with "mean" (and
            visual_activation "none") a source's mask logits are exactly the mean of the
            logits every location of its picture gives: each location's own mask, which
            localization reads, is trained as a part of the separation. With "max" each
            feature's maximum can come from another location, so no single location's vector
            need mean anything (measured: flat heatmaps, docs/localization.md).
        visual_class_loss: weight of an auxiliary cross-entropy of the clips' instrument
            classes, read linearly from each source's pooled visual vector (0: none, the
            original, which is self-supervised). Needs the class indices of the training
            clips, which Solos has (its videos are found by instrument).
        num_classes: classes of that read-out (13, the Solos classes).
        off_screen_loss: weight of a loss on off-screen pairs (0: none, the original). In
            training, each mixture is also paired with the pooled visual vectors of the next
            mixture's clips in the batch whose instrument class it does not contain; the
            target of such a pair is an empty mask (the player shown makes none of the
            sound). Mix-and-separate alone never asks for the sound of a player who is not
            heard, and its heatmaps light up as much for noise or another piece's audio as
            for the true audio (measured: docs/localization.md). Unlike `data.silent_sources`
            it costs no extra clip: the vectors are the batch's own. Needs the class indices
            of the training clips, as `visual_class_loss`.
        off_screen_locations: where the off-screen pairs' empty-mask target applies. 0: the
            clip's pooled vector. n > 0: n locations of the clip's visual map, drawn at random
            each step (all of them when the map has fewer), each against an empty mask. With
            the pooled vector the background's locations are free: only their mean with the
            player's must be silent, and the maps still light the players for noise or
            another piece's audio (measured, docs/localization.md). Locations ask every part
            of a picture whose player is not heard, background included, to stay dark. Each
            location costs what the pooled vector does (a synthesizer pass and a mask loss
            over the pair's bins): at 4 the demo trained 33 mixtures/s against 44. Measured
            at 4 with weight 0.1: 2.7 dB worse on the validation duets and the heat off the
            players for every audio (docs/localization.md); no preset uses it.
        audio_tagging: weight of the loss of a frame-wise instrument tagger of the mixture
            (`avsep.models.tagger`; 0, the original: none). With it each location's mask in
            the heatmaps (`location_masks`, `pixelwise_masks`) is scaled by the probability
            that the instrument the location shows (`class_head`, so it needs
            `visual_class_loss` > 0) is heard in that frame (`location_gate`). The tagger
            reads the log-magnitude with its own layers, so it does not change what the
            separation nets learn; separation itself is never gated.
        audio_gate_locality: how much of that gate is each location's own, in [0, 1]
            (`location_gate`): 0 dims the whole map by whether any shown instrument is
            heard, 1 dims each location by whether its own is. Measured on the validation
            URMP pieces (docs/localization.md): above 0 the class head's doubts about a
            player cost peak accuracy (0.006-0.054 at 0.5); at 0 the map keeps its layout
            and only dims for sound that no shown instrument makes.
        n_fft, hop_length, sample_rate: STFT settings (see `Separator`).

    Condition: frames (B, N, 3, T_frames, H, W), uint8 RGB (normalised inside with the
    ImageNet statistics), T_frames = 3 and 224 x 224 by default (any size works; the visual
    map is ceil(H/16) x ceil(W/16)).

    Submodules: `vision`, `audio_net`, `synthesizer` (and `class_head`, `tagger` with
    their options).
    """

    condition_kind: ClassVar[str] = "frames"
    model_name = "sop"

    def __init__(
        self,
        num_channels: int = 32,
        ngf: int = 64,
        depth: int = 7,
        vision_arch: str = "resnet18",
        vision_width: float = 1.0,
        pretrained: bool = False,
        weights_path: str | None = None,
        mask_type: Literal["binary", "ratio"] = "binary",
        complementary: bool = False,
        output_activation: Literal["sigmoid", "relu"] = "sigmoid",
        weighted_loss: bool = True,
        visual_activation: Literal["sigmoid", "relu", "none"] = "sigmoid",
        visual_norm: Literal["none", "batch"] = "none",
        audio_backbone: Literal["unet", "spectrogram_channels", "tfc_tdf"] = "unet",
        separable: bool = False,
        skips: bool = True,
        side_by_side: float = 0.0,
        visual_pooling: Literal["max", "mean"] = "max",
        visual_class_loss: float = 0.0,
        num_classes: int = len(SOLOS_CLASSES),
        off_screen_loss: float = 0.0,
        off_screen_locations: int = 0,
        audio_tagging: float = 0.0,
        audio_gate_locality: float = 0.0,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__(
            mask_type=mask_type, complementary=complementary,
            loss_name="bce" if mask_type == "binary" else "l1", weighted_loss=weighted_loss,
            n_fft=n_fft, hop_length=hop_length, sample_rate=sample_rate,
        )
        if output_activation not in ("sigmoid", "relu"):
            raise ValueError(
                f"unknown output_activation {output_activation!r} (known: 'sigmoid', 'relu')"
            )
        if mask_type == "binary" and output_activation != "sigmoid":
            raise ValueError("binary masks need output_activation='sigmoid'")
        if not 0.0 <= side_by_side <= 1.0:
            raise ValueError(f"side_by_side is a share of training batches in [0, 1], got "
                             f"{side_by_side}")
        if not 2 <= depth <= 8:
            raise ValueError(f"depth must be in [2, 8] for {NUM_WARPED_BINS} bins, got {depth}")
        if visual_class_loss < 0 or num_classes < 1:
            raise ValueError(f"need visual_class_loss >= 0 and num_classes >= 1, got "
                             f"{visual_class_loss} and {num_classes}")
        if off_screen_loss < 0:
            raise ValueError(f"need off_screen_loss >= 0, got {off_screen_loss}")
        if off_screen_locations < 0:
            raise ValueError(f"need off_screen_locations >= 0, got {off_screen_locations}")
        if off_screen_locations > 0 and off_screen_loss == 0:
            raise ValueError("off_screen_locations > 0 places the off-screen target: it needs "
                             "off_screen_loss > 0 (without it the setting would do nothing)")
        if audio_tagging < 0:
            raise ValueError(f"need audio_tagging >= 0, got {audio_tagging}")
        if not 0.0 <= audio_gate_locality <= 1.0:
            raise ValueError(f"audio_gate_locality must be in [0, 1], got {audio_gate_locality}")
        if audio_tagging > 0 and not visual_class_loss:
            raise ValueError("audio_tagging > 0 gates each location by the class its visual "
                             "vector shows: it needs the class head of visual_class_loss > 0")
        if off_screen_locations > 0 and side_by_side > 0:
            raise ValueError("off_screen_locations > 0 needs each clip's own visual map: it "
                             "does not combine with side_by_side > 0")
        self.model_kwargs = {
            "num_channels": num_channels, "ngf": ngf, "depth": depth,
            "vision_arch": vision_arch, "vision_width": vision_width, "pretrained": pretrained, "weights_path": weights_path,
            "mask_type": mask_type, "complementary": complementary,
            "output_activation": output_activation, "weighted_loss": weighted_loss,
            "visual_activation": visual_activation, "visual_norm": visual_norm,
            "audio_backbone": audio_backbone, "separable": separable, "skips": skips,
            "side_by_side": side_by_side, "visual_pooling": visual_pooling,
            "visual_class_loss": visual_class_loss, "num_classes": num_classes,
            "off_screen_loss": off_screen_loss, "off_screen_locations": off_screen_locations,
            "audio_tagging": audio_tagging, "audio_gate_locality": audio_gate_locality,
            **self.stft_kwargs(),
        }
        self.output_activation = output_activation
        self.side_by_side = side_by_side
        self.vision = DilatedResNetVision(num_channels, vision_arch, pretrained, weights_path,
                                          visual_activation, visual_norm, visual_pooling,
                                          vision_width)
        self.audio_net = audio_backbone_net(audio_backbone, depth, ngf, num_channels, separable,
                                            skips)
        if audio_backbone != "unet":  # the original U-Net normalises its input itself
            self.audio_input_norm = nn.BatchNorm2d(1)
        self.synthesizer = Synthesizer(num_channels)
        self.visual_class_loss = visual_class_loss
        self.off_screen_loss = off_screen_loss
        self.off_screen_locations = off_screen_locations
        # A linear read-out of the instrument class from a source's pooled visual vector,
        # trained only through the auxiliary loss (see `forward`).
        self.class_head = nn.Linear(num_channels, num_classes) if visual_class_loss else None
        # A frame-wise instrument tagger of the mixture (`avsep.models.tagger`), trained by
        # its own loss; with it the location masks (the heatmaps) are gated by whether the
        # location's instrument is heard. `gate_locations = False` shows them ungated.
        self.audio_tagging = audio_tagging
        self.tagger = AudioTagger(num_classes) if audio_tagging else None
        self.gate_locations = True
        self.gate_locality = audio_gate_locality
        # The tagger's white-noise negatives draw from the step's generator (`draws_noise`)
        # or, called without one, from their own; never from the global one (panels),
        # which then draws as it would without the tagger.
        self._noise_rng = torch.Generator().manual_seed(0)
        # What a training pass keeps for the auxiliary objectives: "pooled" visual vectors
        # (B, N, K), "spatial" maps (B, N, K, h, w) with off_screen_locations, "audio"
        # components (B, K, Fw, Tf) and, with the tagger, "source_warped_mag" (B, N, Fw, Tf),
        # read by `forward`.
        self._training_parts: dict[str, torch.Tensor] = {}

    @property
    def uses_labels(self) -> bool:  # type: ignore[override]
        return (self.class_head is not None or self.off_screen_loss > 0
                or self.tagger is not None)

    @property
    def draws_noise(self) -> bool:  # type: ignore[override]
        return self.tagger is not None

    def forward(self, mix: torch.Tensor, sources: torch.Tensor, condition: torch.Tensor,
                labels: torch.Tensor | None = None, *, off_screen: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Objective:
        """The training pass (`Separator.forward`), plus the auxiliary objectives of a model
        that `uses_labels`, which need `labels` (B, N) class indices (-1: unknown):

        - `visual_class_loss` times the cross-entropy of `class_head` on each source's pooled
          visual vector (clips of unknown class left out). Mix-and-separate alone can be
          solved by telling the training videos apart rather than the instruments
          (measured: see docs/localization.md); the labels ask for the instrument.
        - `off_screen_loss` times the mask loss of the off-screen pairs against empty masks
          (`off_screen_pairs`).
        - `audio_tagging` times the tagger's loss (`_tagging_loss`), whose noise comes from
          `generator` (on the mixture's device; None: the model's own CPU generator).
        """
        self._training_parts = {}
        objective = super().forward(mix, sources, condition, off_screen=off_screen)
        parts, self._training_parts = self._training_parts, {}
        pooled = parts.get("pooled")
        if pooled is None:  # no auxiliary objective, or not training
            return objective
        if labels is None or labels.shape != pooled.shape[:2]:
            raise ValueError(
                f"SoundOfPixels with visual_class_loss or off_screen_loss > 0: the training "
                f"pass needs labels (batch, sources) = {tuple(pooled.shape[:2])} of class "
                f"indices, got {None if labels is None else tuple(labels.shape)}")
        loss = objective.loss
        if self.class_head is not None:
            loss = loss + self.visual_class_loss * self._class_loss(pooled, labels)
        if self.off_screen_loss > 0:
            assert objective.spec is not None  # a spectrogram model
            with _full_precision(mix):
                visual = parts["spatial"] if self.off_screen_locations else pooled
                loss = loss + self.off_screen_loss * self._off_screen_term(
                    visual, parts["audio"], objective.spec, labels)
        if self.tagger is not None:
            assert objective.spec is not None
            with _full_precision(mix):
                loss = loss + self.audio_tagging * self._tagging_loss(
                    mix, parts["source_warped_mag"], objective.spec, labels, generator)
        return Objective(loss=loss, outputs=objective.outputs, spec=objective.spec)

    def _tagging_loss(self, mix: torch.Tensor, source_mags: torch.Tensor, spec: Spectrogram,
                      labels: torch.Tensor, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
        """BCE of the tagger's frame-wise logits against the classes heard in each mixture
        (`heard_targets` on the warped spectrograms), plus a quarter batch of white noise
        (at the RMS of a mixture times U[0.5, 1.5)) in which no class is heard, drawn from
        `generator` (None: the model's own CPU generator).

        mix (B, T), source_mags (B, N, Fw, Tf) the sources' warped magnitudes,
        labels (B, N) -> ().
        """
        assert self.tagger is not None
        source_power = source_mags.square().sum(dim=2)  # (B, N, Tf)
        mix_power = spec["warped_mag"].square().sum(dim=2)[:, 0]  # (B, Tf)
        targets, known = heard_targets(source_power, mix_power, labels,
                                       self.tagger.head.out_channels)
        b = mix.shape[0]
        count = max(1, b // 4)
        rng = self._noise_rng if generator is None else generator
        rms = mix.square().mean(dim=1).sqrt().to(rng.device)  # (B,)
        which = torch.randint(0, b, (count,), generator=rng, device=rng.device)
        gain = 0.5 + torch.rand(count, generator=rng, device=rng.device)
        noise = torch.randn(count, mix.shape[1], generator=rng, device=rng.device)
        noise = (noise * (rms[which] * gain).unsqueeze(1)).to(mix.device)
        log_mag = torch.cat([spec["log_mag"][known], self.spectrogram(noise)["log_mag"]])
        targets = torch.cat([targets[known], targets.new_zeros(count, *targets.shape[1:])])
        logits = self.tagger(log_mag.detach()).float()
        return F.binary_cross_entropy_with_logits(logits, targets)

    def _class_loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The cross-entropy of `class_head` over the clips of known class (0 without any)."""
        assert self.class_head is not None
        logits: torch.Tensor = self.class_head(pooled.float())  # (B, N, C)
        if bool((labels >= logits.shape[-1]).any()):
            raise ValueError(
                f"SoundOfPixels: a class index {int(labels.max())} is out of the class head's "
                f"{logits.shape[-1]} classes: set model.kwargs.num_classes to the dataset's "
                "class count (13 for Solos, 21 for MUSIC-21)")
        known = labels >= 0
        if not known.any():
            return logits.new_zeros(())
        return F.cross_entropy(logits[known], labels[known].long())

    def _keep_source_magnitudes(self, magnitudes: torch.Tensor) -> None:
        if self.training and self.tagger is not None:
            self._training_parts["source_warped_mag"] = magnitudes  # read by `forward`

    @staticmethod
    def off_screen_pairs(labels: torch.Tensor) -> torch.Tensor:
        """`avsep.mixing.off_screen_clips`: which clips of the next mixture in the batch are
        off screen for each mixture, (B, N) labels -> (B, N) bool."""
        return off_screen_clips(labels)

    def _off_screen_term(self, visual: torch.Tensor, audio: torch.Tensor, spec: Spectrogram,
                         labels: torch.Tensor) -> torch.Tensor:
        """The mask loss of the off-screen pairs against empty masks (0 without pairs).

        visual: pooled vectors (B, N, K), or with `off_screen_locations` the clips' maps
        (B, N, K, h, w), of which that many locations per pair are drawn (the global
        generator, as `side_by_side`); audio (B, K, Fw, Tf), labels (B, N) -> ().
        """
        pairs = self.off_screen_pairs(labels)
        if not pairs.any():
            return visual.new_zeros((), dtype=torch.float32)
        mixture_of_pair = pairs.nonzero()[:, 0]
        shown = visual.roll(-1, dims=0)[pairs]  # (M, K) or (M, K, h, w)
        if shown.dim() == 2:
            vectors = shown.unsqueeze(1)  # (M, 1, K)
        else:
            locations = shown.flatten(2).transpose(1, 2)  # (M, h*w, K)
            count = min(self.off_screen_locations, locations.shape[1])
            drawn = torch.rand(locations.shape[:2]).argsort(dim=1)[:, :count]  # (M, count)
            vectors = locations.gather(
                1, drawn.to(locations.device).unsqueeze(2).expand(-1, -1, locations.shape[2]))
        logits = self.synthesizer(vectors, audio[mixture_of_pair]).float()  # (M, L, Fw, Tf)
        weight = None
        if self.weighted_loss:
            weight = loss_weight(spec["warped_mag"])[mixture_of_pair]  # (M, 1, Fw, Tf)
        loss: torch.Tensor = MaskLoss.for_model(self)(logits, torch.zeros_like(logits), weight)
        return loss

    @property
    def frame_multiple(self) -> int:
        depth: int = self.audio_net.depth  # type: ignore[assignment]  # every backbone has one
        multiple: int = 2**depth
        return multiple

    @property
    def sigmoid_masks(self) -> bool:
        return self.output_activation == "sigmoid"

    def audio_components(self, log_mag: torch.Tensor) -> torch.Tensor:
        """(B, 1, Fw, Tf) -> (B, K, Fw, Tf), the audio network's components."""
        if isinstance(self.audio_net, AudioUNet):
            components: torch.Tensor = self.audio_net(log_mag)
        else:
            components = self.audio_net(self.audio_input_norm(log_mag))
        return components

    def check_condition(self, condition: torch.Tensor, batch: int) -> None:
        if condition.dim() != 6 or condition.shape[0] != batch or condition.shape[2] != 3:
            raise ValueError(
                f"SoundOfPixels: expected frames (batch={batch}, sources, 3, time, height, "
                f"width), got shape {tuple(condition.shape)}"
            )
        if condition.dtype != torch.uint8:
            raise ValueError(
                f"SoundOfPixels: frames must be uint8 RGB (0..255; the model normalises them), "
                f"got {condition.dtype}"
            )

    def mask_activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.sigmoid_masks else F.relu(logits)

    def visual_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Pooled visual vectors per source: uint8 (B, N, 3, T, H, W) -> (B, N, K)."""
        b, n = frames.shape[:2]
        images = self.normalize_frames(frames.reshape(b * n, *frames.shape[2:]))
        if self._show_side_by_side(n):
            # Panels in a random order, so that no position stands for a source slot (the
            # silent clips of `data.silent_sources` come last in a batch).
            order = torch.randperm(n).to(frames.device)
            panels = images.reshape(b, n, *images.shape[1:])[:, order]
            pooled = self.vision.side_by_side(panels)[:, torch.argsort(order)]
        else:
            features = self.vision(images)
            pooled = features.pooled.reshape(b, n, -1)
            if self.training and self.off_screen_loss > 0 and self.off_screen_locations:
                self._training_parts["spatial"] = features.spatial.reshape(
                    b, n, *features.spatial.shape[1:])  # read by `forward`
        if self.training and self.uses_labels:
            self._training_parts["pooled"] = pooled  # read by `forward`
        return pooled

    def _show_side_by_side(self, num_sources: int) -> bool:
        """Whether this training batch shows its sources side by side (`side_by_side`)."""
        if not self.training or num_sources < 2 or self.side_by_side <= 0.0:
            return False
        # The global generator: its state is in checkpoints, so a resumed run draws the same.
        return self.side_by_side >= 1.0 or bool(torch.rand(()) < self.side_by_side)

    def mask_logits(self, spec: torch.Tensor | Spectrogram, condition: torch.Tensor
                    ) -> torch.Tensor:
        log_mag = self._log_mag_of(spec)
        self.check_condition(condition, log_mag.shape[0])
        audio = self.audio_components(log_mag)  # (B, K, Fw, Tf); no sound activation (original)
        if self.training and self.off_screen_loss > 0:
            self._training_parts["audio"] = audio  # read by `forward`
        logits: torch.Tensor = self.synthesizer(self.visual_features(condition), audio)
        return logits

    # ------------------------------------------------------------------- localization
    def _check_clip(self, mix: torch.Tensor, frames: torch.Tensor) -> None:
        if mix.dim() != 2:
            raise ValueError(f"expected mix (batch, samples), got shape {tuple(mix.shape)}")
        if (frames.dim() != 5 or frames.shape[0] != mix.shape[0] or frames.shape[1] != 3
                or frames.dtype != torch.uint8):
            raise ValueError(
                f"expected uint8 frames (batch={mix.shape[0]}, 3, time, height, width) of one "
                f"clip per mixture, got {frames.dtype} of shape {tuple(frames.shape)}"
            )

    def _pixel_inputs(self, mix: torch.Tensor, frames: torch.Tensor
                      ) -> tuple[Spectrogram, torch.Tensor, torch.Tensor, int]:
        self._check_clip(mix, frames)
        length = mix.shape[1]
        spec = self.spectrogram(F.pad(mix, (0, self.valid_num_samples(length) - length)))
        audio = self.audio_components(spec["log_mag"])
        spatial = self.vision(self.normalize_frames(frames)).spatial  # (B, K, h, w)
        return spec, audio, spatial, self.num_stft_frames(length)

    @torch.no_grad()
    def pixelwise_masks(self, mix: torch.Tensor, frames: torch.Tensor,
                        threshold: bool = False) -> torch.Tensor:
        """One linear-frequency mask per visual location.

        Args:
            mix: (B, T) mixtures.
            frames: (B, 3, T_frames, H, W) the clip's uint8 frames (no source axis).
            threshold: binarise masks at 0.5 as for reconstruction (binary models only).

        Returns:
            (B, h, w, F, Tf) masks, Tf = 1 + T // 256. Memory grows with h * w * F * Tf
            (100 MB per item at 14 x 14 x 512 x 256): use `pixel_energies` for heatmaps.
        """
        spec, audio, spatial, frames_out = self._pixel_inputs(mix, frames)
        masks = self.mask_activation(self.synthesizer.pixelwise(spatial, audio).float())
        b, k, h, w = spatial.shape
        gate = self.location_gate(spec, spatial.reshape(b, k, h * w).transpose(1, 2))
        if gate is not None:  # (B, h*w, Tf) -> (B, h, w, 1, Tf)
            masks = masks * gate.reshape(b, h, w, 1, -1)
        linear: torch.Tensor = self.unwarp(masks)[..., :frames_out]
        if threshold and self.mask_type == "binary":
            linear = (linear > MASK_THRESHOLD).to(linear.dtype)
        return linear

    def location_masks(self, mix: torch.Tensor, frames: torch.Tensor, chunk_size: int = 32
                       ) -> tuple[torch.Tensor, tuple[int, int], Iterator[torch.Tensor]]:
        """The mixture's power and the soft masks of the vision map's locations, a chunk of
        locations at a time so that memory stays bounded (what the heatmaps are made of).

        Args:
            mix: (B, T); frames: uint8 (B, 3, T_frames, H, W) whole frames of the clip.

        Returns:
            power (B, F, Tf) = |mix|^2; the map size (h, w); an iterator over masks
            (B, chunk, F, Tf) of locations in row-major order.
        """
        spec, audio, spatial, frames_out = self._pixel_inputs(mix, frames)
        b, k, h, w = spatial.shape
        locations = spatial.reshape(b, k, h * w).transpose(1, 2)  # (B, h*w, K)
        gate = self.location_gate(spec, locations)

        def chunks() -> Iterator[torch.Tensor]:
            for start in range(0, h * w, chunk_size):
                part = slice(start, start + chunk_size)
                masks = self.mask_activation(self.synthesizer(locations[:, part], audio).float())
                if gate is not None:
                    masks = masks * gate[:, part].unsqueeze(2)
                yield self.unwarp(masks)[..., :frames_out]

        return spec["mag"][..., :frames_out].float().square(), (h, w), chunks()

    def location_gate(self, spec: Spectrogram, locations: torch.Tensor) -> torch.Tensor | None:
        """How likely each location's instrument is heard, frame by frame, or None (no
        tagger, or `gate_locations` off).

        A location's own gate is g_l = sum over classes c of P(c | its visual vector) (softmax
        of the class head) times P(c heard) (sigmoid of the tagger); the picture's is their
        maximum g = max_l g_l (is any shown instrument heard). The gate is
        g * (g_l / g) ** `gate_locality`: 0 scales the whole map by the picture's gate, 1 uses
        each location's own.

        Args:
            spec: the mixtures' `spectrogram` (B, ...); locations: (B, L, K) visual vectors.

        Returns:
            (B, L, Tf) in [0, 1] on the warped frames of `spec`.
        """
        if self.tagger is None or self.class_head is None or not self.gate_locations:
            return None
        heard = torch.sigmoid(self.tagger(spec["log_mag"]).float())  # (B, C, Tf)
        shown = torch.softmax(self.class_head(locations).float(), dim=-1)  # (B, L, C)
        gate = torch.einsum("blc,bct->blt", shown, heard)
        picture = gate.amax(dim=1, keepdim=True)  # (B, 1, Tf)
        return picture * (gate / picture.clamp_min(1e-12)) ** self.gate_locality

    @torch.no_grad()
    def pixel_energies(self, mix: torch.Tensor, frames: torch.Tensor, per_frame: bool = False,
                       chunk_size: int = 32) -> torch.Tensor:
        """Energy of the sound separated at each visual location: the localization heatmap.

        Energy = sum over bins of (mask * |mix|)^2 with soft masks (`location_masks`; with a
        tagger, gated by `location_gate`).

        Args:
            mix: (B, T); frames: uint8 (B, 3, T_frames, H, W).
            per_frame: keep the STFT-frame axis (energy over time per location).

        Returns:
            (B, h, w), or (B, h, w, Tf) with `per_frame`.
        """
        power, (h, w), chunks = self.location_masks(mix, frames, chunk_size)
        energy = torch.cat([(masks.square() * power.unsqueeze(1)).sum(dim=2) for masks in chunks],
                           dim=1).reshape(mix.shape[0], h, w, power.shape[-1])
        return energy if per_frame else energy.sum(dim=-1)

    @torch.no_grad()
    def pixel_scores(self, mix: torch.Tensor, frames: torch.Tensor, sources: torch.Tensor,
                     chunk_size: int = 32) -> torch.Tensor:
        """Per-location evidence for each of N sounds: which location's sound is source n's.

        At each location, the energy of the sound separated there, (mask * |mix|)^2, summed
        over frequency with a weight per bin of R_n - (1 - R_n) = 2 R_n - 1, where
        R_n = |S_n|^2 / sum_j |S_j|^2 is source n's share of the bin: +1 where n dominates,
        -1 where the others do, 0 where no source has energy. The sources are reference
        stems (scoring, `avsep.inference.accuracy`) or the model's own estimates for
        regions of the picture (per-player heatmaps, `avsep.inference.players`).

        Args:
            mix: (B, T); frames: uint8 (B, 3, T_frames, H, W) whole frames of the clip;
            sources: (B, N, T) waveforms at the model's rate, aligned with `mix`.

        Returns:
            (B, N, h, w, Tf) float32.
        """
        if sources.dim() != 3 or sources.shape[0] != mix.shape[0] \
                or sources.shape[2] != mix.shape[1]:
            raise ValueError(f"expected sources (batch={mix.shape[0]}, sources, "
                             f"samples={mix.shape[1]}), got shape {tuple(sources.shape)}")
        power, (h, w), chunks = self.location_masks(mix, frames, chunk_size)
        b, n, length = sources.shape
        tf = power.shape[-1]
        source_power = self.spectrogram(sources.reshape(b * n, length))["mag"][..., :tf]
        source_power = source_power.float().square().reshape(b, n, -1, tf)  # (B, N, F, Tf)
        total = source_power.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, source_power / total.clamp_min(1e-30), 0.5)
        weights = 2.0 * share - 1.0  # (B, N, F, Tf)
        scores = [torch.einsum("bcft,bnft->bnct", masks.square() * power.unsqueeze(1), weights)
                  for masks in chunks]
        return torch.cat(scores, dim=2).reshape(b, n, h, w, tf)
