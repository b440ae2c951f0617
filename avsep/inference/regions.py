"""Regions of a frame to separate: parsed from text, equal-width players, or found from a
heatmap.

A region is a box (x0, y0, x1, y1) in pixels of the input video's frames, x1 and y1
exclusive. The sound of a region is separated with the region's crop as the visual
condition.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avsep.faults import InputError
from avsep.inference.localize import cell_centres
from avsep.media import BadInput
from avsep.urmp_naming import parse_piece_name, player_bounds

# Vid_NN_Title_c1_c2[...].mp4: a URMP ensemble video, players left to right in part order.
_URMP_VIDEO = re.compile(r"^Vid_(?P<piece>\d+_.+)$")


class RegionError(InputError, ValueError):
    """Regions that cannot be used (bad text, empty box, box outside the frame)."""


@dataclass(frozen=True)
class Region:
    """A box in frame pixels, x1/y1 exclusive, and a label (e.g. an instrument code)."""

    x0: int
    y0: int
    x1: int
    y1: int
    label: str = ""

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1, self.y1

    def as_dict(self) -> dict:
        return {"box": list(self.box), "label": self.label}


def parse_regions(text: str) -> list[Region]:
    """Regions from "x0,y0,x1,y1;x0,y0,x1,y1;..." (integer pixels, x1/y1 exclusive).

    >>> parse_regions("0,0,320,360; 320,0,640,360")
    [Region(x0=0, y0=0, x1=320, y1=360, label=''), Region(x0=320, y0=0, x1=640, y1=360, label='')]

    Raises:
        RegionError: naming the region and what is wrong with it.
    """
    items = [item.strip() for item in text.split(";")]
    if not text.strip() or not any(items):
        raise RegionError('no regions given: expected "x0,y0,x1,y1;x0,y0,x1,y1;..." or "auto"')
    regions = []
    for number, item in enumerate(items, start=1):
        if not item:
            raise RegionError(f"region {number} is empty (stray ';' in {text!r})")
        values = [v.strip() for v in item.split(",")]
        if len(values) != 4:
            raise RegionError(
                f"region {number} ({item!r}): expected 4 integers x0,y0,x1,y1, got {len(values)} "
                "value(s)"
            )
        numbers = []
        for value in values:
            try:
                numbers.append(int(value))
            except ValueError:
                raise RegionError(
                    f"region {number} ({item!r}): {value!r} is not an integer pixel coordinate"
                ) from None
        x0, y0, x1, y1 = numbers
        if min(numbers) < 0:
            raise RegionError(f"region {number} ({item!r}): coordinates must not be negative")
        if x1 <= x0 or y1 <= y0:
            raise RegionError(
                f"region {number} ({item!r}) is empty: need x0 < x1 and y0 < y1"
            )
        regions.append(Region(x0, y0, x1, y1))
    return regions


def check_regions(regions: list[Region], frame_size: tuple[int, int]) -> None:
    """Raise RegionError if a region extends beyond a (height, width) frame."""
    height, width = frame_size
    for number, region in enumerate(regions, start=1):
        if region.x1 > width or region.y1 > height:
            raise RegionError(
                f"region {number} {region.box} extends beyond the {width}x{height} frame "
                f"(x1 <= {width}, y1 <= {height})"
            )


def equal_width_regions(frame_size: tuple[int, int], players: int,
                        labels: list[str] | None = None) -> list[Region]:
    """`players` full-height columns of equal width, left to right (URMP's layout)."""

    height, width = frame_size
    if players < 1 or players > width:
        raise RegionError(f"number of players must be in [1, {width}], got {players}")
    labels = labels or [""] * players
    return [Region(x0, 0, x1, height, label)
            for (x0, x1), label in zip(player_bounds(width, players), labels)]


def urmp_instruments(path: str | Path) -> list[str] | None:
    """Instrument codes of a URMP-style video name `Vid_NN_Title_c1_c2.mp4`, else None."""

    match = _URMP_VIDEO.match(Path(path).stem)
    if match is None:
        return None
    try:
        return parse_piece_name(match["piece"])[2]
    except BadInput:
        return None


def regions_from_heatmap(heatmap: np.ndarray, model_size: tuple[int, int],
                         frame_size: tuple[int, int], threshold: float = 0.5,
                         max_regions: int = 8) -> list[Region]:
    """Boxes around the loud parts of a (time-averaged) heatmap.

    Locations whose energy is at least `threshold` times the maximum are grouped into
    8-connected components; each component's bounding box, grown by one cell on every side,
    becomes a region. The `max_regions` strongest components (by summed energy) are kept,
    ordered left to right. A silent heatmap gives one region, the whole frame.

    Args:
        heatmap: (h, w) energies on the vision map.
        model_size: (Hm, Wm) of the frames the vision net saw.
        frame_size: (H, W) of the video.
    """

    height, width = frame_size
    peak = float(heatmap.max()) if heatmap.size else 0.0
    if not peak > 0:
        return [Region(0, 0, width, height)]
    loud = (heatmap >= threshold * peak).astype(np.uint8)
    count, labels = cv2.connectedComponents(loud, connectivity=8)
    ys, xs = cell_centres(model_size, heatmap.shape, frame_size)
    cell_h, cell_w = height / heatmap.shape[0], width / heatmap.shape[1]
    found = []
    for component in range(1, count):
        rows, cols = np.nonzero(labels == component)
        strength = float(heatmap[rows, cols].sum())
        x0 = max(0, math.floor(xs[cols.min()] - 1.5 * cell_w))
        x1 = min(width, math.ceil(xs[cols.max()] + 1.5 * cell_w))
        y0 = max(0, math.floor(ys[rows.min()] - 1.5 * cell_h))
        y1 = min(height, math.ceil(ys[rows.max()] + 1.5 * cell_h))
        found.append((strength, Region(x0, y0, x1, y1)))
    strongest = sorted(found, key=lambda item: -item[0])[:max_regions]
    return sorted((region for _, region in strongest), key=lambda r: (r.x0, r.y0))
