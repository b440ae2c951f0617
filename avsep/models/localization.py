"""Where each sound comes from: the Sound of Pixels' per-location separation.

Every location of the vision map has its own K-vector; the synthesizer turns it, with the
mixture's audio components, into that location's mask. The energy a location's mask lets
through is the heatmap (`Localizer.pixel_energies`); weighted by which source dominates each
bin it is the evidence for each source (`Localizer.pixel_scores`). With an audio tagger the
masks are dimmed by whether the instrument a location shows is heard (`Gate`).

A `Localizer` reads a trained `SoundOfPixels` and never changes it; its settings are its
arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avsep.models.separator import MASK_THRESHOLD, Spectrogram
from avsep.models.sop import SoundOfPixels


@dataclass(frozen=True)
class Gate:
    """How the tagger dims the location masks of a model that has one.

    enabled: False shows the masks ungated.
    locality: in [0, 1]; None takes the model's `audio_gate_locality`. A location's own
        gate is g_l = sum over classes c of P(c | its visual vector) (softmax of the class
        head) times P(c heard) (sigmoid of the tagger); the picture's is g = max_l g_l (is
        any shown instrument heard). The gate is g * (g_l / g) ** locality: 0 scales the
        whole map by the picture's gate, 1 uses each location's own.
    """

    enabled: bool = True
    locality: float | None = None

    def __post_init__(self) -> None:
        if self.locality is not None and not 0.0 <= self.locality <= 1.0:
            raise ValueError(f"the gate's locality must be in [0, 1], got {self.locality}")


class Localizer:
    """Per-location masks, energies and scores of a `SoundOfPixels` model.

    Shapes: mix (B, T) mixtures; frames uint8 (B, 3, T_frames, H, W), the whole frames of
    one clip per mixture (no source axis); (h, w) the vision map; F linear bins; Tf STFT
    frames of T.
    """

    def __init__(self, model: SoundOfPixels, gate: Gate | None = None) -> None:
        if not isinstance(model, SoundOfPixels):
            raise TypeError(f"localization needs a Sound of Pixels model (per-location "
                            f"visual features), got {type(model).__name__}")
        self.model = model
        self.gate = gate or Gate()
        self.locality = (model.config.audio_gate_locality if self.gate.locality is None
                         else self.gate.locality)

    @property
    def gated(self) -> bool:
        """Whether the masks are dimmed by the tagger (the model has one and the gate is on)."""
        return (self.gate.enabled and self.model.tagger is not None
                and self.model.class_head is not None)

    def _inputs(self, mix: torch.Tensor, frames: torch.Tensor
                ) -> tuple[Spectrogram, torch.Tensor, torch.Tensor, int]:
        """The padded mixture's spectrogram, audio components (B, K, Fw, Tf'), the vision
        map (B, K, h, w) and the frame count Tf of the unpadded mixture."""
        _check_clip(mix, frames)
        model = self.model
        length = mix.shape[1]
        spec = model.spectrogram(F.pad(mix, (0, model.valid_num_samples(length) - length)))
        audio = model.audio_components(spec["log_mag"])
        spatial = model.vision(model.normalize_frames(frames)).spatial  # (B, K, h, w)
        return spec, audio, spatial, model.num_stft_frames(length)

    def location_gate(self, spec: Spectrogram, locations: torch.Tensor) -> torch.Tensor | None:
        """How likely each location's instrument is heard, frame by frame (`Gate`), or None
        when the masks are not gated.

        spec: the mixtures' spectrogram; locations: (B, L, K) visual vectors ->
        (B, L, Tf) in [0, 1] on the warped frames of `spec`.
        """
        if not self.gated:
            return None
        model = self.model
        assert model.tagger is not None and model.class_head is not None
        heard = torch.sigmoid(model.tagger(spec["log_mag"]).float())  # (B, C, Tf)
        shown = torch.softmax(model.class_head(locations).float(), dim=-1)  # (B, L, C)
        gate = torch.einsum("blc,bct->blt", shown, heard)
        picture = gate.amax(dim=1, keepdim=True)  # (B, 1, Tf)
        return picture * (gate / picture.clamp_min(1e-12)) ** self.locality

    @torch.no_grad()
    def pixelwise_masks(self, mix: torch.Tensor, frames: torch.Tensor,
                        threshold: bool = False) -> torch.Tensor:
        """One linear-frequency mask per visual location: (B, h, w, F, Tf).

        `threshold` binarises at 0.5 as reconstruction does (binary models only). Memory
        grows with h * w * F * Tf: use `pixel_energies` for heatmaps.
        """
        model = self.model
        spec, audio, spatial, frames_out = self._inputs(mix, frames)
        masks = model.mask_activation(model.synthesizer.pixelwise(spatial, audio).float())
        b, k, h, w = spatial.shape
        gate = self.location_gate(spec, spatial.reshape(b, k, h * w).transpose(1, 2))
        if gate is not None:  # (B, h*w, Tf) -> (B, h, w, 1, Tf)
            masks = masks * gate.reshape(b, h, w, 1, -1)
        linear: torch.Tensor = model.unwarp(masks)[..., :frames_out]
        if threshold and model.mask_type == "binary":
            linear = (linear > MASK_THRESHOLD).to(linear.dtype)
        return linear

    def location_masks(self, mix: torch.Tensor, frames: torch.Tensor, chunk_size: int = 32
                       ) -> tuple[torch.Tensor, tuple[int, int], Iterator[torch.Tensor]]:
        """The mixture's power (B, F, Tf) = |mix|^2, the map size (h, w), and an iterator over
        the soft masks (B, chunk, F, Tf) of the locations in row-major order, a chunk at a
        time so that memory stays bounded (what the heatmaps are made of)."""
        model = self.model
        spec, audio, spatial, frames_out = self._inputs(mix, frames)
        b, k, h, w = spatial.shape
        locations = spatial.reshape(b, k, h * w).transpose(1, 2)  # (B, h*w, K)
        gate = self.location_gate(spec, locations)

        def chunks() -> Iterator[torch.Tensor]:
            for start in range(0, h * w, chunk_size):
                part = slice(start, start + chunk_size)
                masks = model.mask_activation(model.synthesizer(locations[:, part], audio).float())
                if gate is not None:
                    masks = masks * gate[:, part].unsqueeze(2)
                yield model.unwarp(masks)[..., :frames_out]

        return spec["mag"][..., :frames_out].float().square(), (h, w), chunks()

    @torch.no_grad()
    def pixel_energies(self, mix: torch.Tensor, frames: torch.Tensor, per_frame: bool = False,
                       chunk_size: int = 32) -> torch.Tensor:
        """Energy of the sound separated at each visual location, the localization heatmap:
        sum over bins of (mask * |mix|)^2 with the soft (gated) masks of `location_masks`.

        Returns (B, h, w), or (B, h, w, Tf) with `per_frame`.
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
        -1 where the others do, 0 where no source has energy. The sources (B, N, T), at the
        model's rate and aligned with `mix`, are reference stems (scoring) or the model's own
        estimates for regions of the picture (per-player heatmaps).

        Returns (B, N, h, w, Tf) float32.
        """
        if sources.dim() != 3 or sources.shape[0] != mix.shape[0] \
                or sources.shape[2] != mix.shape[1]:
            raise ValueError(f"expected sources (batch={mix.shape[0]}, sources, "
                             f"samples={mix.shape[1]}), got shape {tuple(sources.shape)}")
        power, (h, w), chunks = self.location_masks(mix, frames, chunk_size)
        b, n, length = sources.shape
        tf = power.shape[-1]
        source_power = self.model.spectrogram(sources.reshape(b * n, length))["mag"][..., :tf]
        source_power = source_power.float().square().reshape(b, n, -1, tf)  # (B, N, F, Tf)
        total = source_power.sum(dim=1, keepdim=True)
        share = torch.where(total > 0, source_power / total.clamp_min(1e-30), 0.5)
        weights = 2.0 * share - 1.0  # (B, N, F, Tf)
        scores = [torch.einsum("bcft,bnft->bnct", masks.square() * power.unsqueeze(1), weights)
                  for masks in chunks]
        return torch.cat(scores, dim=2).reshape(b, n, h, w, tf)


def _check_clip(mix: torch.Tensor, frames: torch.Tensor) -> None:
    if mix.dim() != 2:
        raise ValueError(f"expected mix (batch, samples), got shape {tuple(mix.shape)}")
    if (frames.dim() != 5 or frames.shape[0] != mix.shape[0] or frames.shape[1] != 3
            or frames.dtype != torch.uint8):
        raise ValueError(
            f"expected uint8 frames (batch={mix.shape[0]}, 3, time, height, width) of one "
            f"clip per mixture, got {frames.dtype} of shape {tuple(frames.shape)}"
        )
