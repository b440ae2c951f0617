"""Mask losses: weighted BCE (binary masks), weighted L1 (ratio masks), MSE (MHU-Net).

Shapes: predictions and targets `(B, N, F, T)`; the optional weight broadcasts against them,
typically `(B, 1, F, T)` from `avsep.audio.loss_weight`. Every loss is the mean over all
elements, which equals the mean over sources of each source's mean loss (the original's
reduction), because all sources have the same number of bins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

LossName = Literal["bce", "l1", "mse"]


def _check(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"loss: predictions {tuple(pred.shape)} and targets {tuple(target.shape)} differ"
        )
    if weight is not None:
        try:
            fits = torch.broadcast_shapes(weight.shape, pred.shape) == pred.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"loss: weight {tuple(weight.shape)} does not broadcast to {tuple(pred.shape)}"
            )


def weighted_bce_with_logits(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """BCE of sigmoid(logits) against binary targets, optionally weighted per bin.

    Same value as the original's `binary_cross_entropy(sigmoid(x), y, weight)`, computed from
    logits for numerical stability (and so it is safe under autocast).
    """
    _check(logits, target, weight)
    if weight is not None:
        weight = weight.expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), weight=weight)


def weighted_l1(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """mean(weight * |pred - target|) (SoP ratio masks)."""
    _check(pred, target, weight)
    error = (pred.float() - target.float()).abs()
    return (error * weight).mean() if weight is not None else error.mean()


def weighted_mse(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """mean(weight * (pred - target)^2); unweighted it is MHU-Net's MSE."""
    _check(pred, target, weight)
    error = (pred.float() - target.float()).square()
    return (error * weight).mean() if weight is not None else error.mean()


class MaskLoss(nn.Module):
    """A mask loss that takes the model's *logits*.

    "bce" applies BCE-with-logits (so it needs a sigmoid mask activation); "l1" and "mse"
    compare `activation(logits)` with the targets.

    Shapes:
        forward(logits (B, N, F, T), target (B, N, F, T), weight broadcastable or None) -> ()
    """

    def __init__(
        self,
        name: LossName,
        activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if name not in ("bce", "l1", "mse"):
            raise ValueError(f"unknown mask loss {name!r} (known: 'bce', 'l1', 'mse')")
        if name != "bce" and activation is None:
            raise ValueError(f"mask loss {name!r} needs the model's mask activation")
        self.name = name
        self.activation = activation

    @classmethod
    def for_model(cls, model: Any) -> MaskLoss:
        """The loss a separator is trained with (its `loss_name` and `mask_activation`)."""
        if model.loss_name == "bce" and not getattr(model, "sigmoid_masks", True):
            raise ValueError("BCE-with-logits needs a model whose masks are sigmoid(logits)")
        return cls(model.loss_name, model.mask_activation)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.name == "bce":
            return weighted_bce_with_logits(logits, target, weight)
        assert self.activation is not None  # __init__ requires one for "l1" and "mse"
        masks = self.activation(logits)
        if self.name == "l1":
            return weighted_l1(masks, target, weight)
        return weighted_mse(masks, target, weight)
