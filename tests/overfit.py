"""Overfitting a fixed tiny batch: the check every model's tests share."""

from __future__ import annotations

import torch


def first_and_last_loss(model: torch.nn.Module, mix: torch.Tensor, sources: torch.Tensor,
                        condition: torch.Tensor, steps: int, lr: float) -> tuple[float, float]:
    """Train `model` with Adam on one fixed batch for `steps` steps; the first and last
    training-pass losses."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(mix, sources, condition).loss
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses[0], losses[-1]
