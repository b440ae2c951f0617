"""The Sound of Pixels (Zhao et al. 2018): dilated ResNet-18 + audio U-Net + synthesizer.

Each source's frames give a K-vector (the vision net, pooled over locations), the mixture's
log-magnitude gives K audio components (the U-Net), and the synthesizer mixes the components
with the vector into that source's mask logits. Heatmaps read the same synthesizer at each
location of the vision map (`avsep.models.localization`).

Two optional auxiliary objectives need the clips' instrument classes (`labels`): a class
cross-entropy read linearly from each source's pooled vector (`visual_class_loss`), and a
frame-wise tagger of the mixture (`audio_tagging`), whose only use is to dim the heatmaps
for sound no shown instrument makes. Both read what the training pass computes and returns
(`SopParts`, `MaskTargets`); separation never depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from avsep.audio import NUM_WARPED_BINS
from avsep.classes import SOLOS_CLASSES
from avsep.models.separator import (
    MaskConfig,
    MaskSeparator,
    MaskTargets,
    Objective,
    SeparatorConfig,
    Spectrogram,
    full_precision,
)
from avsep.models.synthesizer import Synthesizer
from avsep.models.tagger import AudioTagger, heard_targets
from avsep.models.unet import AudioUNet
from avsep.models.vision import DilatedResNetVision


@dataclass(frozen=True)
class SoundOfPixelsConfig(MaskConfig):
    """The Sound of Pixels' settings (defaults: the original's).

    num_channels: K, shared by the vision net, the U-Net output and the synthesizer.
    ngf: U-Net channels of the first level.
    depth: U-Net levels (7 = the original "unet7").
    vision_arch: "resnet18" or "tiny" (test-only).
    vision_width: channel multiplier of the dilated ResNet-18 (1.0: the original); a narrower
        net buys more steps of a time budget; from scratch only.
    pretrained: initialise the ResNet from ImageNet weights ($AVSEP_RESNET18_WEIGHTS, else
        torchvision's cache; an error when they cannot be had, see
        `avsep.models.vision.load_imagenet_state`).
    mask_type, complementary, weighted_loss: see `MaskConfig` (binary masks with BCE, ratio
        masks with L1; masks are sigmoid(logits) either way, as the original).
    visual_activation: "sigmoid" (the original), "relu" or "none", on the visual features.
    visual_norm: "none" (the original) or "batch", a BatchNorm of the visual vectors.
    separable: depthwise-separable convolutions in the U-Net (False: the original).
    skips: the U-Net's skip connections (True: the original); False makes it a plain
        auto-encoder (the U-Net thesis' comparison).
    visual_pooling: "max" (the original's default) or "mean" (its "avgpool") over locations.
        The synthesizer is linear in the visual vector, so with "mean" (and activation
        "none") a source's mask logits are the mean of every location's logits: each
        location's own mask, which localization reads, is trained by separation.
    visual_class_loss: weight of the instrument cross-entropy read from each source's pooled
        vector (0: none, the original). Mix-and-separate alone can be solved by telling the
        training videos apart rather than the instruments; the labels ask for the instrument.
    num_classes: classes of that read-out and of the tagger (13 for Solos, 21 for MUSIC-21).
    audio_tagging: weight of the tagger's loss (0: no tagger, the original). With a tagger
        the heatmaps dim each location by the probability that its instrument is heard
        (`avsep.models.localization`); needs `visual_class_loss` > 0 (the class head).
    audio_gate_locality: how much of that dimming is each location's own, in [0, 1]: 0 dims
        the whole map by whether any shown instrument is heard, 1 each location by whether
        its own is.

    Measurements behind the non-original settings: docs/ablation.md and docs/results/.
    """

    num_channels: int = 32
    ngf: int = 64
    depth: int = 7
    vision_arch: Literal["resnet18", "tiny"] = "resnet18"
    vision_width: float = 1.0
    pretrained: bool = False
    visual_activation: Literal["sigmoid", "relu", "none"] = "sigmoid"
    visual_norm: Literal["none", "batch"] = "none"
    separable: bool = False
    skips: bool = True
    visual_pooling: Literal["max", "mean"] = "max"
    visual_class_loss: float = 0.0
    num_classes: int = len(SOLOS_CLASSES)
    audio_tagging: float = 0.0
    audio_gate_locality: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.depth <= 8:
            raise ValueError(f"depth must be in [2, 8] for {NUM_WARPED_BINS} bins, "
                             f"got {self.depth}")
        if self.visual_class_loss < 0 or self.num_classes < 1:
            raise ValueError(f"need visual_class_loss >= 0 and num_classes >= 1, got "
                             f"{self.visual_class_loss} and {self.num_classes}")
        if self.audio_tagging < 0:
            raise ValueError(f"need audio_tagging >= 0, got {self.audio_tagging}")
        if not 0.0 <= self.audio_gate_locality <= 1.0:
            raise ValueError(f"audio_gate_locality must be in [0, 1], "
                             f"got {self.audio_gate_locality}")
        if self.audio_tagging > 0 and not self.visual_class_loss:
            raise ValueError("audio_tagging > 0 gates each location by the class its visual "
                             "vector shows: it needs the class head of visual_class_loss > 0")


class SopParts(NamedTuple):
    """What the nets compute for B mixtures of N shown sources.

    audio: (B, K, Fw, Tf) the U-Net's components.
    pooled: (B, N, K) each source's pooled visual vector.
    logits: (B, N, Fw, Tf) the synthesizer's mask logits.
    """

    audio: torch.Tensor
    pooled: torch.Tensor
    logits: torch.Tensor


class SoundOfPixels(MaskSeparator):
    """The Sound of Pixels, built from a `SoundOfPixelsConfig`.

    Condition: frames (B, N, 3, T_frames, H, W), uint8 RGB (normalised inside with the
    ImageNet statistics), T_frames = 3 and 224 x 224 in the original (any size works; the
    visual map is ceil(H/16) x ceil(W/16)).

    Submodules: `vision`, `audio_net`, `synthesizer`, and `class_head`, `tagger` with their
    options. `initialise=False` skips the ImageNet initialisation the config may ask for
    (the weights come from a checkpoint instead).
    """

    config_class: ClassVar[type[SeparatorConfig]] = SoundOfPixelsConfig
    config: SoundOfPixelsConfig
    condition_kind: ClassVar[str] = "frames"
    model_name = "sop"

    def __init__(self, config: SoundOfPixelsConfig | None = None, name: str | None = None,
                 initialise: bool = True) -> None:
        config = config or SoundOfPixelsConfig()
        super().__init__(config, name, initialise)
        self.loss_name = "bce" if config.mask_type == "binary" else "l1"
        self.vision = DilatedResNetVision(
            config.num_channels, config.vision_arch, config.pretrained and initialise,
            None, config.visual_activation, config.visual_norm, config.visual_pooling,
            config.vision_width)
        self.audio_net = AudioUNet(depth=config.depth, ngf=config.ngf,
                                   out_channels=config.num_channels,
                                   separable=config.separable, skips=config.skips)
        self.synthesizer = Synthesizer(config.num_channels)
        # A linear read-out of the instrument class from a source's pooled visual vector,
        # trained only through the auxiliary loss.
        self.class_head = (nn.Linear(config.num_channels, config.num_classes)
                           if config.visual_class_loss else None)
        self.tagger = AudioTagger(config.num_classes) if config.audio_tagging else None
        # The tagger's white-noise negatives draw from the step's generator or, called
        # without one, from this one; never from the global generator.
        self._noise_rng = torch.Generator().manual_seed(0)

    @property
    def uses_labels(self) -> bool:
        return self.class_head is not None

    @property
    def draws_noise(self) -> bool:
        return self.tagger is not None

    @property
    def frame_multiple(self) -> int:
        multiple: int = 2**self.config.depth
        return multiple

    @property
    def sigmoid_masks(self) -> bool:
        return True

    def mask_activation(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

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

    # ------------------------------------------------------------------------ the nets
    def audio_components(self, log_mag: torch.Tensor) -> torch.Tensor:
        """(B, 1, Fw, Tf) -> (B, K, Fw, Tf), the U-Net's components (no activation, as the
        original)."""
        components: torch.Tensor = self.audio_net(log_mag)
        return components

    def visual_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Pooled visual vectors per source: uint8 (B, N, 3, T, H, W) -> (B, N, K)."""
        b, n = frames.shape[:2]
        images = self.normalize_frames(frames.reshape(b * n, *frames.shape[2:]))
        pooled: torch.Tensor = self.vision(images).pooled
        return pooled.reshape(b, n, -1)

    def parts(self, spec: torch.Tensor | Spectrogram, condition: torch.Tensor) -> SopParts:
        """The nets' outputs for mixtures `spec` and frames `condition` (`SopParts`)."""
        log_mag = self._log_mag_of(spec)
        self.check_condition(condition, log_mag.shape[0])
        audio = self.audio_components(log_mag)
        pooled = self.visual_features(condition)
        logits: torch.Tensor = self.synthesizer(pooled, audio)
        return SopParts(audio=audio, pooled=pooled, logits=logits)

    def mask_logits(self, spec: torch.Tensor | Spectrogram, condition: torch.Tensor
                    ) -> torch.Tensor:
        return self.parts(spec, condition).logits

    # ------------------------------------------------------------------ the objective
    def forward(self, mix: torch.Tensor, sources: torch.Tensor, condition: torch.Tensor,
                labels: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None) -> Objective:
        """The training pass (`Separator.forward`), plus the auxiliary objectives of a model
        that `uses_labels`, which need `labels` (B, N) class indices (-1: unknown):
        `visual_class_loss` times the class cross-entropy of the pooled vectors, and
        `audio_tagging` times the tagger's loss, whose noise comes from `generator` (on the
        mixture's device; None: the model's own CPU generator).
        """
        spec = self.training_spectrogram(mix, sources)
        parts = self.parts(spec, condition)
        with full_precision(mix):
            targets = self.mask_targets(spec, sources)
            loss = self.mask_loss(parts.logits.float(), targets)
        if not (self.training and self.uses_labels):
            return Objective(loss=loss, outputs=parts.logits, spec=spec)
        if labels is None or labels.shape != parts.pooled.shape[:2]:
            raise ValueError(
                f"SoundOfPixels with visual_class_loss > 0: the training pass needs labels "
                f"(batch, sources) = {tuple(parts.pooled.shape[:2])} of class indices, got "
                f"{None if labels is None else tuple(labels.shape)}")
        loss = loss + self.config.visual_class_loss * self.class_loss(parts.pooled, labels)
        if self.tagger is not None:
            with full_precision(mix):
                loss = loss + self.config.audio_tagging * self.tagging_loss(
                    mix, targets, spec, labels, generator)
        return Objective(loss=loss, outputs=parts.logits, spec=spec)

    def class_loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The cross-entropy () of `class_head` on pooled vectors (B, N, K) against labels
        (B, N), over the clips of known class (0 without any)."""
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

    def tagging_loss(self, mix: torch.Tensor, targets: MaskTargets, spec: Spectrogram,
                     labels: torch.Tensor, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """BCE of the tagger's frame-wise logits against the classes heard in each mixture
        (`heard_targets` on the warped spectrograms), plus a quarter batch of white noise
        (at the RMS of a mixture times U[0.5, 1.5)) in which no class is heard, drawn from
        `generator` (None: the model's own CPU generator).

        mix (B, T), targets.source_mags (B, N, Fw, Tf), labels (B, N) -> ().
        """
        assert self.tagger is not None
        source_power = targets.source_mags.square().sum(dim=2)  # (B, N, Tf)
        mix_power = spec["warped_mag"].square().sum(dim=2)[:, 0]  # (B, Tf)
        heard, known = heard_targets(source_power, mix_power, labels,
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
        heard = torch.cat([heard[known], heard.new_zeros(count, *heard.shape[1:])])
        logits = self.tagger(log_mag.detach()).float()
        return F.binary_cross_entropy_with_logits(logits, heard)
