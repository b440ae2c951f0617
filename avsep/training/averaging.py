"""An exponential moving average of a model's weights (`train.weight_average`).

The original trains with plain SGD and evaluates the last (or the best validated) weights.
A running average of the weights over the last few hundred steps smooths out the noise of
the last updates (Polyak averaging; the same idea as the EMA many separation and vision
recipes evaluate). The averaged copy is what validation scores and what `best.pt` holds;
the trained weights are unchanged by it.

Decay with a warm-up: after u updates the average moves towards the current weights by
1 - d_u, with d_u = min(decay, (1 + u) / (10 + u)), so the first steps' random weights are
forgotten quickly and the window grows to about 1 / (1 - decay) steps.
"""

from __future__ import annotations

import torch
from torch import nn


def warmed_decay(decay: float, updates: int) -> float:
    """The decay of update number `updates` (from 1): min(decay, (1 + u) / (10 + u))."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """The running average of `model`'s parameters and floating-point buffers, kept in
    `average` (a model of the same structure, in eval mode, without gradients).

    Integer buffers (BatchNorm's step count) are copied, not averaged.

    Args:
        average: a second instance of the model (its weights are overwritten by `model`'s).
        model: the model being trained (`trained`; its weights are read at each update).
        decay: in (0, 1); the average spans about 1 / (1 - decay) steps.
    """

    def __init__(self, average: nn.Module, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.weight_average must be in (0, 1) (0 turns it off), "
                             f"got {decay}")
        self.decay = decay
        self.updates = 0
        self.trained = model
        self.model = average.eval().requires_grad_(False)
        self.model.load_state_dict(model.state_dict())

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the trained model's current weights (after a step)."""
        self.updates += 1
        weight = 1.0 - warmed_decay(self.decay, self.updates)
        # The pairs are looked up at every update: `Module.to` (e.g. channels-last) gives
        # a model new tensors, and stale ones would silently stop the average.
        pairs = _matched_tensors(self.model, self.trained)
        floats = [(a, c) for a, c in pairs if a.is_floating_point()]
        if floats:
            averaged, current = zip(*floats)
            torch._foreach_lerp_(list(averaged), list(current), weight)
        for averaged_value, current_value in pairs:
            if not averaged_value.is_floating_point():
                averaged_value.copy_(current_value)

    def state_dict(self) -> dict:
        """{"weights": the averaged state dict, "updates": count} (plain tensors and ints)."""
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


def _matched_tensors(average: nn.Module, model: nn.Module
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(averaged, trained) tensor pairs in state-dict order; both models must match."""
    averaged, trained = average.state_dict(), model.state_dict()
    if averaged.keys() != trained.keys():
        raise ValueError("WeightAverage: the two models have different weights")
    return [(averaged[name], trained[name]) for name in trained]
