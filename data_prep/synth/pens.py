"""Pens that render the same drawing calls as outlines (ink) or shaded volumes, and shapes.

`sprites.Pen` fills every shape flatly; the drawing families that are not flat draw their
instruments with these instead. Coordinates are fractions of the sprite's width (x) and
height (y), as for `sprites.Pen`; sizes given in pixels are pixels of the (supersampled)
sprite canvas.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .sprites import Colour, Pen

WHITE: Colour = (255, 255, 255)


def luminance(colour: Colour) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


class InkPen(Pen):
    """Line art: each shape is filled with the paper colour (or with ink if its colour is
    dark, as line art blacks in ebony and mouthpieces) and outlined in ink.

    Args:
        width, height: canvas size in pixels.
        ink, paper: the two colours.
        weight: line weight in canvas pixels.
    """

    def __init__(self, width: int, height: int, ink: Colour, paper: Colour, weight: int):
        super().__init__(width, height)
        self.ink, self.paper, self.weight = ink, paper, max(1, weight)

    def _tone(self, colour: Colour) -> Colour:
        return self.ink if luminance(colour) < 70 else self.paper

    def _ink_fraction(self, pixels: float) -> float:
        return pixels / min(self.w, self.h)

    def ellipse(self, x: float, y: float, rx: float, ry: float, colour: Colour,
                thickness: float | None = None, angle: float = 0.0,
                arc: tuple[float, float] = (0.0, 360.0)) -> None:
        if thickness is None:
            super().ellipse(x, y, rx, ry, self._tone(colour), None, angle, arc)
            super().ellipse(x, y, rx, ry, self.ink, self._ink_fraction(self.weight), angle, arc)
            return
        # a ring (coiled tubing): an ink ring with a paper ring inside it
        super().ellipse(x, y, rx, ry, self.ink, thickness, angle, arc)
        inner = thickness - self._ink_fraction(2 * self.weight)
        if inner > 0:
            super().ellipse(x, y, rx, ry, self._tone(colour), inner, angle, arc)

    def poly(self, points: list[tuple[float, float]], colour: Colour) -> None:
        super().poly(points, self._tone(colour))
        pts = np.array([self._p(x, y) for x, y in points], np.int32)
        cv2.polylines(self.image, [pts], True, self._c(self.ink), self.weight, cv2.LINE_AA)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: Colour,
             thickness: float) -> None:
        pixels = thickness * min(self.w, self.h)
        if pixels <= 2.5 * self.weight:  # thin: a plain ink stroke
            super().line(x0, y0, x1, y1, self.ink, self._ink_fraction(self.weight))
            return
        super().line(x0, y0, x1, y1, self.ink, thickness)  # a tube: two ink edges
        super().line(x0, y0, x1, y1, self._tone(colour),
                     self._ink_fraction(pixels - 2 * self.weight))

    def dot(self, x: float, y: float, radius: float, colour: Colour) -> None:
        if radius * min(self.w, self.h) < 2 * self.weight:
            super().dot(x, y, radius, self.ink)
            return
        super().dot(x, y, radius, self._tone(colour))
        cv2.circle(self.image, self._p(x, y), self._t(radius), self._c(self.ink), self.weight,
                   cv2.LINE_AA)


class ShadedPen(Pen):
    """Shaded volumes: every shape is lit as a rounded body by a light from `light` (a unit
    vector in sprite coordinates pointing towards the light), with a soft specular spot of
    strength `gloss` (0: matte wood, 0.6: polished brass)."""

    def __init__(self, width: int, height: int, light: tuple[float, float], gloss: float):
        super().__init__(width, height)
        self.light = np.asarray(light, np.float32)
        self.gloss = float(gloss)

    def _shaded(self, draw: Callable[[], None], colour: Colour) -> None:
        """Run `draw` (a flat Pen call in white) on a scratch canvas and paint its coverage
        with `colour` shaded across the shape's bounding box."""
        saved = self.image
        self.image = np.zeros_like(saved)
        draw()
        cover = self.image[..., 3]
        self.image = saved
        rows, cols = np.flatnonzero(cover.any(axis=1)), np.flatnonzero(cover.any(axis=0))
        if not len(rows):
            return
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        v, u = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        u = 2 * (u - x0) / max(x1 - x0 - 1, 1) - 1  # -1..1 across the shape
        v = 2 * (v - y0) / max(y1 - y0 - 1, 1) - 1
        facing = u * self.light[0] + v * self.light[1]
        shade = 0.78 + 0.34 * facing - 0.2 * (u * u + v * v)
        spot = self.gloss * np.exp(-((u - 0.45 * self.light[0]) ** 2
                                     + (v - 0.45 * self.light[1]) ** 2) / 0.06)
        rgb = np.clip(np.asarray(colour, np.float32) * shade[..., None] + 255 * spot[..., None],
                      0, 255)
        a = cover[y0:y1, x0:x1, None].astype(np.float32) / 255
        region = self.image[y0:y1, x0:x1].astype(np.float32)
        under = region[..., 3:] / 255 * (1 - a)
        alpha = a + under
        region[..., :3] = (rgb * a + region[..., :3] * under) / np.maximum(alpha, 1e-6)
        region[..., 3:] = 255 * alpha
        self.image[y0:y1, x0:x1] = np.clip(np.round(region), 0, 255).astype(np.uint8)

    def ellipse(self, x: float, y: float, rx: float, ry: float, colour: Colour,
                thickness: float | None = None, angle: float = 0.0,
                arc: tuple[float, float] = (0.0, 360.0)) -> None:
        self._shaded(lambda: Pen.ellipse(self, x, y, rx, ry, WHITE, thickness, angle, arc),
                     colour)

    def poly(self, points: list[tuple[float, float]], colour: Colour) -> None:
        self._shaded(lambda: Pen.poly(self, points, WHITE), colour)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: Colour,
             thickness: float) -> None:
        self._shaded(lambda: Pen.line(self, x0, y0, x1, y1, WHITE, thickness), colour)

    def dot(self, x: float, y: float, radius: float, colour: Colour) -> None:
        self._shaded(lambda: Pen.dot(self, x, y, radius, WHITE), colour)


def profile(widths: list[tuple[float, float]], cx: float, top: float, bottom: float,
            n: int = 48) -> list[tuple[float, float]]:
    """A closed outline symmetric about x = cx from y = top to y = bottom, whose half-width
    at fraction v of the way down is interpolated from `widths` [(v, half-width)] and
    smoothed (violin bodies, bells seen from the side)."""
    v = np.linspace(0.0, 1.0, n)
    knots = np.array(widths, np.float64)
    w = np.interp(v, knots[:, 0], knots[:, 1])
    w = np.convolve(np.pad(w, 3, mode="edge"), np.ones(7) / 7, mode="valid")
    y = top + v * (bottom - top)
    right = [(cx + float(a), float(b)) for a, b in zip(w, y)]
    left = [(cx - float(a), float(b)) for a, b in zip(w[::-1], y[::-1])]
    return right + left


def flare(start: float, end: float, centre: float, r0: float, r1: float, power: float,
          vertical: bool = False, n: int = 14) -> list[tuple[float, float]]:
    """A bell: a tube of half-width r0 at `start` opening to r1 at `end` as s ** power
    (1: a cone, 3: a trumpet bell), along x (or along y if `vertical`) around `centre`."""
    s = np.linspace(0.0, 1.0, n)
    along = start + s * (end - start)
    radius = r0 + (r1 - r0) * s ** power
    side_a = [(float(a), centre - float(r)) for a, r in zip(along, radius)]
    side_b = [(float(a), centre + float(r)) for a, r in zip(along[::-1], radius[::-1])]
    points = side_a + side_b
    return [(y, x) for x, y in points] if vertical else points
