"""Ground-truth separation masks from source and mixture magnitudes.

Shapes: source magnitudes `(B, N, F, T)`; mixture magnitude `(B, 1, F, T)` or `(B, F, T)`.
All functions return float masks `(B, N, F, T)`. In training they are computed on the
*warped* magnitudes (F = 256), as the original does.

- binary (SoP):  M_n = 1[|S_n| > 0.5 |mix|]
- ratio (SoP):   M_n = clamp(|S_n| / |mix|, 0, 5)
- complementary binary (Solos): the loudest source of a bin gets 1, the others 0
- complementary ratio (Solos / MHU-Net): M_n = |S_n| / sum_m |S_m|, masks sum to 1

A bin where every source is silent (all magnitudes exactly 0) has no loudest source and no
ratio. Complementary binary masks are all 0 there (no source is present); complementary
ratio masks are 1/N there, so the sum-to-one property holds in every bin.
"""

from __future__ import annotations

from typing import Literal, overload

import torch

RATIO_MAX = 5.0
# Added to the mixture before dividing, as the original adds 1e-10 to |mix|.
RATIO_EPS = 1e-10

MaskType = Literal["binary", "ratio"]


@overload
def _sources_and_mix(
    sources: torch.Tensor, mix: torch.Tensor | None, need_mix: Literal[True]
) -> tuple[torch.Tensor, torch.Tensor]: ...
@overload
def _sources_and_mix(
    sources: torch.Tensor, mix: torch.Tensor | None, need_mix: bool
) -> tuple[torch.Tensor, torch.Tensor | None]: ...
def _sources_and_mix(
    sources: torch.Tensor, mix: torch.Tensor | None, need_mix: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if sources.dim() != 4:
        raise ValueError(
            f"source magnitudes: expected (batch, sources, freq, frames), "
            f"got shape {tuple(sources.shape)}"
        )
    if mix is None:
        if need_mix:
            raise ValueError("this mask type needs the mixture magnitude, got None")
        return sources, None
    if mix.dim() == 3:
        mix = mix.unsqueeze(1)
    expected = (sources.shape[0], 1, *sources.shape[2:])
    if tuple(mix.shape) != expected:
        raise ValueError(
            f"mixture magnitude: expected shape {expected} (or without the 1), "
            f"got {tuple(mix.shape)}"
        )
    return sources, mix


def binary_masks(sources: torch.Tensor, mix: torch.Tensor | None) -> torch.Tensor:
    """SoP binary masks 1[|S_n| > 0.5 |mix|], (B, N, F, T).

    `mix` is required: None (accepted for the signature `ground_truth_masks` dispatches on)
    raises ValueError.
    """
    sources, mix = _sources_and_mix(sources, mix, need_mix=True)
    return (sources.abs() > 0.5 * mix.abs()).to(sources.dtype)


def ratio_masks(sources: torch.Tensor, mix: torch.Tensor | None) -> torch.Tensor:
    """SoP ratio masks clamp(|S_n| / |mix|, 0, 5), (B, N, F, T).

    `mix` is required: None raises ValueError (as for `binary_masks`).
    """
    sources, mix = _sources_and_mix(sources, mix, need_mix=True)
    return (sources.abs() / (mix.abs() + RATIO_EPS)).clamp(0.0, RATIO_MAX)


def complementary_binary_masks(
    sources: torch.Tensor, mix: torch.Tensor | None = None
) -> torch.Tensor:
    """One-hot masks: the loudest source of each bin wins (ties: the lower index).

    All-silent bins get all-zero masks. `mix` is accepted for a uniform call signature and
    only checked for shape.
    """
    sources, _ = _sources_and_mix(sources, mix, need_mix=False)
    magnitude = sources.abs()
    winner = magnitude.argmax(dim=1, keepdim=True)
    masks = torch.zeros_like(magnitude).scatter_(1, winner, 1.0)
    silent = magnitude.amax(dim=1, keepdim=True) <= 0
    return masks.masked_fill(silent, 0.0)


def complementary_ratio_masks(
    sources: torch.Tensor, mix: torch.Tensor | None = None
) -> torch.Tensor:
    """|S_n| / sum_m |S_m|; masks sum to 1 over sources, 1/N in all-silent bins."""
    sources, _ = _sources_and_mix(sources, mix, need_mix=False)
    magnitude = sources.abs()
    total = magnitude.sum(dim=1, keepdim=True)
    silent = total <= 0
    masks = magnitude / torch.where(silent, torch.ones_like(total), total)
    uniform = torch.full_like(masks, 1.0 / sources.shape[1])
    return torch.where(silent.expand_as(masks), uniform, masks)


def ground_truth_masks(
    sources: torch.Tensor,
    mix: torch.Tensor | None,
    mask_type: MaskType,
    complementary: bool = False,
) -> torch.Tensor:
    """The masks a model with `mask_type` / `complementary` is trained to predict.

    Args:
        sources: source magnitudes (B, N, F, T).
        mix: mixture magnitude (B, 1, F, T) or (B, F, T); may be None for complementary masks.
        mask_type: "binary" or "ratio".
        complementary: Solos-style masks (loudest wins / sum to one) instead of SoP's.

    Returns:
        (B, N, F, T) float masks.
    """
    if mask_type == "binary":
        fn = complementary_binary_masks if complementary else binary_masks
    elif mask_type == "ratio":
        fn = complementary_ratio_masks if complementary else ratio_masks
    else:
        raise ValueError(f"unknown mask type {mask_type!r} (known: 'binary', 'ratio')")
    return fn(sources, mix)
