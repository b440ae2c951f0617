"""One mix-and-separate step on the device, shared by training and validation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avsep.audio import loss_weight
from avsep.losses import MaskLoss
from avsep.masks import ground_truth_masks
from avsep.mixing import FrameNormalize, MixSources


@dataclass
class StepOutput:
    loss: torch.Tensor  # () scalar
    mix: torch.Tensor  # (B, T) the mixtures
    sources: torch.Tensor  # (B, N, T) the scaled sources that sum to `mix`


class MixAndSeparate(nn.Module):
    """Batch -> mixtures -> spectrograms -> ground-truth masks -> model -> loss.

    `model` is the separator (possibly wrapped by DDP / torch.compile; its forward is
    `mask_logits`); `separator` is the unwrapped one, whose spectrogram front end and mask
    settings are used directly.
    """

    def __init__(self, separator: nn.Module, mixing: str = "sop"):
        super().__init__()
        self.separator = separator
        self.mixer = MixSources(mixing)
        self.normalize = FrameNormalize()
        self.criterion = MaskLoss.for_model(separator)

    def condition(self, batch: dict, device: torch.device) -> torch.Tensor:
        """The model's condition for a batch: normalised frames or class indices."""
        if self.separator.condition_kind == "frames":
            return self.normalize(batch["frames"].to(device, non_blocking=True))
        return batch["class_index"].to(device, non_blocking=True)

    def forward(self, model: nn.Module, batch: dict, device: torch.device,
                generator: torch.Generator | None = None, autocast_dtype=None) -> StepOutput:
        sources = batch["audio"].to(device, non_blocking=True)
        condition = self.condition(batch, device)
        mix, sources = self.mixer(sources, generator=generator)
        sep = self.separator
        with torch.no_grad():
            spec = sep.spectrogram(mix)
            target = ground_truth_masks(sep.warped_magnitudes(sources), spec["warped_mag"],
                                        sep.mask_type, sep.complementary)
            weight = loss_weight(spec["warped_mag"]) if sep.weighted_loss else None
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            logits = model(spec["log_mag"], condition)
        loss = self.criterion(logits.float(), target, weight)
        return StepOutput(loss=loss, mix=mix, sources=sources)
