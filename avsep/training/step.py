"""One mix-and-separate step on the device, shared by training and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from avsep.mixing import MixSources
from avsep.models.separator import Objective, Separator


@dataclass
class StepOutput:
    objective: Objective  # the model's loss, raw outputs and mixture spectrogram
    mix: torch.Tensor  # (B, T) the mixtures
    sources: torch.Tensor  # (B, N, T) the scaled sources; they sum to `mix`

    @property
    def loss(self) -> torch.Tensor:
        return self.objective.loss


class MixAndSeparate(nn.Module):
    """Batch -> mixtures -> the model's training pass (which owns targets and loss).

    `model` is the separator, possibly wrapped by DDP / torch.compile (its forward is the
    training pass); `separator` is the unwrapped one, whose declared attributes say what the
    training pass takes (`Separator.condition_kind`, `uses_labels`, `draws_noise`).
    """

    def __init__(self, separator: Separator, mixing: Literal["sop", "peak"] = "sop"):
        super().__init__()
        self.separator = separator
        self.mixer = MixSources(mixing)

    def condition(self, batch: dict, device: torch.device) -> torch.Tensor:
        """The model's condition for a batch: uint8 frames or class indices."""
        key = "frames" if self.separator.condition_kind == "frames" else "class_index"
        return batch[key].to(device, non_blocking=True)

    def forward(self, model: nn.Module, batch: dict, device: torch.device,
                generator: torch.Generator | None = None, autocast_dtype=None) -> StepOutput:
        sources = batch["audio"].to(device, non_blocking=True)
        condition = self.condition(batch, device)
        mix, sources = self.mixer(sources, generator=generator)
        extra: dict[str, torch.Tensor | torch.Generator | None] = {}
        if self.separator.uses_labels:
            if "class_index" not in batch:
                raise ValueError(f"{type(self.separator).__name__} trains on the clips' class "
                                 "indices, and the batch has no 'class_index'")
            extra["labels"] = batch["class_index"].to(device, non_blocking=True)
        if self.training and self.separator.draws_noise:
            extra["generator"] = generator  # the step's: a resumed run draws the same
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            objective = model(mix, sources, condition, **extra)
        return StepOutput(objective=objective, mix=mix, sources=sources)
