"""Ground-truth masks and mask losses against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avsep.losses import MaskLoss, weighted_bce_with_logits, weighted_l1, weighted_mse
from avsep.masks import (
    binary_masks,
    complementary_binary_masks,
    complementary_ratio_masks,
    ground_truth_masks,
    ratio_masks,
)

# One item, two sources, 2 x 2 bins. Bin (1, 1) is silent in both sources.
SOURCES = torch.tensor([[[[3.0, 1.0], [0.0, 0.0]],
                         [[1.0, 1.0], [2.0, 0.0]]]])
MIX = torch.tensor([[[[4.0, 1.5], [2.0, 0.0]]]])


def test_binary_masks_by_hand():
    # |S| > 0.5 |mix|: 3 > 2, 1 > 0.75, 0 > 1 no, 0 > 0 no; 1 > 2 no, 1 > 0.75, 2 > 1, 0 > 0 no
    expected = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]]])
    assert torch.equal(binary_masks(SOURCES, MIX), expected)
    assert torch.equal(binary_masks(SOURCES, MIX[:, 0]), expected)  # (B, F, T) mixture


def test_ratio_masks_by_hand_and_clamped_to_five():
    masks = ratio_masks(SOURCES, MIX)
    expected = torch.tensor([[[[0.75, 1 / 1.5], [0.0, 0.0]], [[0.25, 1 / 1.5], [1.0, 0.0]]]])
    assert torch.allclose(masks, expected)
    loud = ratio_masks(torch.tensor([[[[10.0]]]]), torch.tensor([[[[1.0]]]]))
    assert loud.item() == 5.0


def test_complementary_binary_masks_by_hand():
    masks = complementary_binary_masks(SOURCES)
    # (0, 0): source 0 louder; (0, 1): tie -> lower index; (1, 0): source 1; (1, 1): silent.
    expected = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]]])
    assert torch.equal(masks, expected)


def test_complementary_ratio_masks_by_hand_with_silent_bin():
    masks = complementary_ratio_masks(SOURCES)
    expected = torch.tensor([[[[0.75, 0.5], [0.0, 0.5]], [[0.25, 0.5], [1.0, 0.5]]]])
    assert torch.allclose(masks, expected)


def test_complementary_ratio_masks_sum_to_one():
    g = torch.Generator().manual_seed(0)
    sources = torch.rand(3, 4, 16, 8, generator=g)
    sources[sources < 0.3] = 0.0
    sources[:, :, 0, 0] = 0.0  # an all-silent bin in every item
    masks = complementary_ratio_masks(sources)
    assert torch.allclose(masks.sum(dim=1), torch.ones(3, 16, 8), atol=1e-6)
    assert torch.allclose(masks[:, :, 0, 0], torch.full((3, 4), 0.25))


def test_ground_truth_masks_dispatch_and_errors():
    assert torch.equal(ground_truth_masks(SOURCES, MIX, "binary"), binary_masks(SOURCES, MIX))
    assert torch.equal(ground_truth_masks(SOURCES, None, "ratio", complementary=True),
                       complementary_ratio_masks(SOURCES))
    with pytest.raises(ValueError, match="unknown mask type 'soft'"):
        ground_truth_masks(SOURCES, MIX, "soft")
    with pytest.raises(ValueError, match="needs the mixture"):
        ground_truth_masks(SOURCES, None, "binary")
    with pytest.raises(ValueError, match=r"expected shape \(1, 1, 2, 2\).*\(1, 1, 3, 2\)"):
        binary_masks(SOURCES, torch.zeros(1, 1, 3, 2))


def _per_source_mean(loss_fn, pred, target, weight):
    # The original: one loss per source (B, 1, F, T), then the mean over sources.
    losses = [loss_fn(pred[:, n:n + 1], target[:, n:n + 1], weight) for n in range(pred.shape[1])]
    return torch.stack(losses).mean()


def test_weighted_bce_equals_the_original_per_source_bce_on_sigmoid():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 8, 4, generator=g)
    target = (torch.rand(2, 3, 8, 4, generator=g) > 0.5).float()
    weight = torch.rand(2, 1, 8, 4, generator=g) + 0.1
    expected = _per_source_mean(
        lambda p, t, w: F.binary_cross_entropy(torch.sigmoid(p), t, weight=w),
        logits, target, weight)
    assert torch.allclose(weighted_bce_with_logits(logits, target, weight), expected, atol=1e-6)


def test_weighted_l1_and_mse_by_hand():
    pred = torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]]])
    target = torch.tensor([[[[0.0, 0.0]], [[1.0, 3.0]]]])
    weight = torch.tensor([[[[2.0, 1.0]]]])
    # per source: mean(2*1, 1*2) = 2 and mean(2*1, 1*3) = 2.5 -> 2.25
    assert weighted_l1(pred, target, weight).item() == pytest.approx(2.25)
    # unweighted squares: 1, 4, 1, 9 -> 3.75
    assert weighted_mse(pred, target).item() == pytest.approx(3.75)
    with pytest.raises(ValueError, match="differ"):
        weighted_l1(pred, target[:, :1])
    with pytest.raises(ValueError, match="does not broadcast"):
        weighted_mse(pred, target, torch.ones(3, 1, 1, 1))


def test_mask_loss_uses_the_activation_for_l1_and_mse():
    logits = torch.tensor([[[[0.0]], [[2.0]]]])
    target = torch.tensor([[[[1.0]], [[0.0]]]])
    softmax = MaskLoss("mse", lambda x: torch.softmax(x, dim=1))
    p = torch.softmax(logits, dim=1)
    assert softmax(logits, target).item() == pytest.approx(((p - target) ** 2).mean().item())
    with pytest.raises(ValueError, match="unknown mask loss"):
        MaskLoss("hinge")
