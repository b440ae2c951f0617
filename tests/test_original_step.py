"""benchmarks/original_step.py: the original's warp grid, and a clear exit without a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import original_step

from avsep.audio import warp_frequency_coordinates


def test_warp_grid_matches_avsep_warp_and_hand_values():
    grid = original_step.warp_grid(batch=2, height=256, width=5)
    assert grid.shape == (2, 256, 5, 2)
    # x runs linearly over time frames; y is the same on every frame and batch item
    np.testing.assert_allclose(grid[0, 0, :, 0], np.linspace(-1, 1, 5))
    np.testing.assert_array_equal(grid[1], grid[0])
    np.testing.assert_array_equal(grid[0, :, 0, 1], grid[0, :, 4, 1])
    # y: the same rows avsep's own warp reads (written independently from the equation)
    np.testing.assert_allclose(grid[0, :, 0, 1], warp_frequency_coordinates(256).numpy(),
                               atol=1e-6)
    # by hand: the ends map to -1 and 1, the middle row (y = 0 only for odd heights) to
    # (sqrt(21) - 11) / 10
    assert grid[0, 0, 0, 1] == pytest.approx(-1.0)
    assert grid[0, -1, 0, 1] == pytest.approx(1.0)
    middle = original_step.warp_grid(1, 3, 1)[0, 1, 0, 1]
    assert middle == pytest.approx((21 ** 0.5 - 11) / 10)


def test_import_original_refuses_a_folder_that_is_not_the_original_code(tmp_path):
    with pytest.raises(SystemExit, match="not a checkout of the original Sound of Pixels"):
        original_step.import_original(tmp_path)
