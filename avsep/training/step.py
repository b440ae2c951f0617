"""One mix-and-separate step on the device, shared by training and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from avsep.mixing import MixSources, OffScreenSound
from avsep.models.separator import Objective


@dataclass
class StepOutput:
    objective: Objective  # the model's loss, raw outputs and mixture spectrogram
    mix: torch.Tensor  # (B, T) the mixtures
    # (B, N, T) the scaled sources; they sum to `mix`, except for the off-screen sound a
    # training mixture may carry (`data.off_screen_audio` / `off_screen_noise`)
    sources: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        return self.objective.loss


class MixAndSeparate(nn.Module):
    """Batch -> mixtures -> the model's training pass (which owns targets and loss).

    `model` is the separator, possibly wrapped by DDP / torch.compile (its forward is the
    training pass); `separator` is the unwrapped one, which says what the condition is.
    """

    def __init__(self, separator: nn.Module, mixing: Literal["sop", "peak"] = "sop",
                 silent_sources: int = 0, off_screen_audio: float = 0.0,
                 off_screen_noise: float = 0.0):
        super().__init__()
        if silent_sources < 0:
            raise ValueError(f"silent_sources must be >= 0, got {silent_sources}")
        self.separator = separator
        self.mixer = MixSources(mixing)
        self.silent_sources = silent_sources
        self.off_screen = OffScreenSound(off_screen_audio, off_screen_noise)
        if off_screen_audio > 0 and getattr(separator, "tagger", None) is not None:
            raise ValueError("data.off_screen_audio adds clips of instruments no label names, "
                             "so the audio tagger (model.kwargs.audio_tagging) would learn "
                             "that they are not heard; use off_screen_noise, or no tagger")
        if self.off_screen.enabled and not getattr(separator, "accepts_off_screen", False):
            raise ValueError(f"data.off_screen_audio / off_screen_noise: "
                             f"{type(separator).__name__} cannot train with off-screen sound "
                             "(its objective has no target for it); set both to 0")

    def condition(self, batch: dict, device: torch.device) -> torch.Tensor:
        """The model's condition for a batch: uint8 frames or class indices."""
        key = "frames" if self.separator.condition_kind == "frames" else "class_index"
        return batch[key].to(device, non_blocking=True)

    def forward(self, model: nn.Module, batch: dict, device: torch.device,
                generator: torch.Generator | None = None, autocast_dtype=None) -> StepOutput:
        sources = batch["audio"].to(device, non_blocking=True)
        condition = self.condition(batch, device)
        silent = self.silent_sources if self.training else 0
        if silent and sources.shape[1] <= silent:
            raise ValueError(f"a batch of {sources.shape[1]} clips per mixture cannot have "
                             f"{silent} silent ones and at least one heard")
        if silent:
            # The last `silent` clips are shown but not heard: their reference is silence.
            heard = sources.shape[1] - silent
            mix, scaled = self.mixer(sources[:, :heard], generator=generator)
            sources = torch.cat([scaled, scaled.new_zeros(scaled.shape[0], silent,
                                                          scaled.shape[2])], dim=1)
        else:
            mix, sources = self.mixer(sources, generator=generator)
        extra = {}
        if self.training and self.off_screen.enabled:
            # Targets stay the shown sources; the mixture also carries sound none of them
            # makes, which the model's objective is told of.
            labels = batch.get("class_index")
            off_screen = self.off_screen(sources, None if labels is None else labels.to(device),
                                         generator)
            mix = mix + off_screen
            extra["off_screen"] = off_screen
        if getattr(self.separator, "uses_labels", False):
            if "class_index" not in batch:
                raise ValueError(f"{type(self.separator).__name__} trains on the clips' class "
                                 "indices, and the batch has no 'class_index'")
            extra["labels"] = batch["class_index"].to(device, non_blocking=True)
        if self.training and getattr(self.separator, "draws_noise", False):
            extra["generator"] = generator  # the step's: a resumed run draws the same
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            objective = model(mix, sources, condition, **extra)
        return StepOutput(objective=objective, mix=mix, sources=sources)
