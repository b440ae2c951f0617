"""The "pictogram" drawing family: flat geometric silhouettes on a flat poster background.

Performers are pictograms: a round head without a face, a trapezoid torso, straight bars for
arms and legs, standing on the poster's floor band, small in the frame (a distant camera) and
anywhere across their cell. Instruments are angular silhouettes with only the details that
make them what they are (a violin's scroll and f-holes, a trumpet's valves and bell), in
poster colours that say nothing about the class. No outlines, no shading, no lighting, a
still camera.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from .drawing import Colour, Point, blend_rgba, ellipse, line, premultiply, studio_palette
from .drawing import shade as _shade
from .looks import (
    Background,
    Draw,
    Figure,
    Look,
    StillScene,
    cell_position,
    family_spec,
    place,
    render_sprite,
    studio_dress,
)
from .presets import check_style
from .sprites import Pen

POSTER: tuple[Colour, ...] = (
    (230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87),
    (244, 162, 97), (233, 196, 106), (42, 157, 143), (38, 70, 83), (231, 111, 81),
    (131, 56, 236), (255, 190, 11), (58, 134, 255), (251, 86, 7), (255, 0, 110),
    (6, 214, 160), (17, 138, 178), (7, 59, 76), (120, 120, 120), (250, 250, 250),
)


# ---------------------------------------------------------------- instruments


def _bowed(pen: Pen, c: Colour, big: bool, sloped: bool) -> None:
    """An angular violin-family silhouette, scroll up; a dark neck, two f-hole slits."""
    d = _shade(c, 0.55)
    span = 0.9 if big else 1.0

    def y(v: float) -> float:
        return v * span

    shoulder = 0.16 if sloped else 0.28
    pen.poly([(0.5 - shoulder, y(0.42)), (0.5 + shoulder, y(0.42)), (0.78, y(0.52)),
              (0.66, y(0.63)), (0.9, y(0.74)), (0.9, y(0.92)), (0.7, y(1.0)), (0.3, y(1.0)),
              (0.1, y(0.92)), (0.1, y(0.74)), (0.34, y(0.63)), (0.22, y(0.52))], c)
    pen.rect(0.43, y(0.04), 0.57, y(0.66), d)  # neck and fingerboard
    pen.rect(0.38, 0.0, 0.62, y(0.07), d)  # a square scroll
    for side in (-1, 1):  # f-holes as straight slits
        pen.line(0.5 + side * 0.22, y(0.7), 0.5 + side * 0.2, y(0.84), d, 0.06)
    if big:
        pen.line(0.5, 0.9, 0.5, 1.0, d, 0.08)


def _violin(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=False, sloped=False)


def _cello(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=True, sloped=False)


def _double_bass(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=True, sloped=True)


def _flute(pen: Pen, c: Colour) -> None:  # a bar, a lip plate at the left
    pen.rect(0.0, 0.38, 1.0, 0.62, c)
    pen.rect(0.08, 0.2, 0.15, 0.4, _shade(c, 0.55))


def _oboe(pen: Pen, c: Colour) -> None:  # a thin cone, reed at the top
    pen.poly([(0.4, 0.07), (0.6, 0.07), (0.76, 1.0), (0.24, 1.0)], c)
    pen.rect(0.44, 0.0, 0.56, 0.08, _shade(c, 0.55))


def _clarinet(pen: Pen, c: Colour) -> None:  # a straight bar, a wide bell
    pen.poly([(0.4, 0.0), (0.6, 0.0), (0.64, 0.08), (0.36, 0.08)], _shade(c, 0.55))
    pen.rect(0.34, 0.08, 0.66, 0.82, c)
    pen.poly([(0.34, 0.8), (0.66, 0.8), (1.0, 1.0), (0.0, 1.0)], c)


def _bassoon(pen: Pen, c: Colour) -> None:  # two bars side by side, a bocal to the top left
    d = _shade(c, 0.55)
    pen.rect(0.3, 0.0, 0.58, 0.97, c)
    pen.rect(0.58, 0.3, 0.84, 0.97, d)
    pen.line(0.56, 0.3, 0.44, 0.12, d, 0.08)
    pen.line(0.44, 0.12, 0.1, 0.08, d, 0.08)


def _saxophone(pen: Pen, c: Colour) -> None:  # a thick J
    pen.line(0.15, 0.02, 0.42, 0.18, _shade(c, 0.55), 0.09)
    pen.rect(0.32, 0.16, 0.52, 0.8, c)
    pen.ellipse(0.56, 0.8, 0.22, 0.12, c, thickness=0.2, arc=(0, 180))
    pen.poly([(0.62, 0.82), (0.82, 0.82), (0.98, 0.44), (0.58, 0.44)], c)


def _trumpet(pen: Pen, c: Colour) -> None:  # a bar, three valve blocks, a cone bell
    d = _shade(c, 0.55)
    pen.rect(0.0, 0.38, 0.62, 0.52, c)
    pen.rect(0.22, 0.62, 0.6, 0.74, c)
    for x in (0.32, 0.42, 0.52):
        pen.rect(x - 0.035, 0.2, x + 0.035, 0.74, d)
    pen.poly([(0.6, 0.38), (0.6, 0.52), (1.0, 0.95), (1.0, 0.0)], c)


def _horn(pen: Pen, c: Colour) -> None:  # a ring and a cone bell to the bottom right
    pen.ellipse(0.42, 0.45, 0.3, 0.36, c, thickness=0.16)
    pen.poly([(0.56, 0.6), (0.68, 0.5), (1.0, 0.78), (0.74, 1.0)], c)
    pen.line(0.1, 0.1, 0.3, 0.2, _shade(c, 0.55), 0.08)


def _trombone(pen: Pen, c: Colour) -> None:  # two long bars and a cone bell
    d = _shade(c, 0.55)
    pen.rect(0.05, 0.22, 0.74, 0.36, c)
    pen.rect(0.05, 0.64, 0.55, 0.76, c)
    pen.rect(0.27, 0.3, 0.33, 0.7, d)
    pen.poly([(0.7, 0.24), (0.7, 0.36), (1.0, 0.62), (1.0, 0.0)], c)
    pen.rect(0.0, 0.66, 0.06, 0.74, d)


def _tuba(pen: Pen, c: Colour) -> None:  # a big block body under a wide cone bell
    d = _shade(c, 0.55)
    pen.rect(0.26, 0.2, 0.76, 0.86, c)
    pen.ellipse(0.51, 0.84, 0.3, 0.14, c)
    pen.poly([(0.26, 0.22), (0.76, 0.22), (0.98, 0.0), (0.04, 0.0)], c)
    for x in (0.4, 0.52, 0.64):
        pen.rect(x - 0.035, 0.4, x + 0.035, 0.62, d)
    pen.line(0.26, 0.46, 0.02, 0.42, d, 0.06)


DRAWS: dict[str, Draw] = {
    "violin": _violin, "cello": _cello, "double_bass": _double_bass, "flute": _flute,
    "oboe": _oboe, "clarinet": _clarinet, "bassoon": _bassoon, "saxophone": _saxophone,
    "trumpet": _trumpet, "horn": _horn, "trombone": _trombone, "tuba": _tuba,
}


# ---------------------------------------------------------------- background


class PictogramScene(StillScene):
    """A flat poster: one background colour, two to four large flat shapes and a floor band.

    Attributes:
        floor_y: top of the floor band, frame pixels (the players stand on it).
        free: poster colours not used by the background, for the players.
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        colours = [POSTER[int(i)] for i in rng.permutation(len(POSTER))]
        back, floor = colours[0], colours[1]
        shapes = int(rng.integers(2, 5))
        self.free = colours[2:-shapes]  # players never wear the background's colours
        self.floor_y = height * float(rng.uniform(0.84, 0.96))
        canvas = np.full((height, width, 3), back, np.uint8)
        for k in range(shapes):
            colour = colours[-1 - k]
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            size = int(rng.integers(height // 6, height // 2))
            kind = int(rng.integers(0, 3))
            if kind == 0:
                cv2.circle(canvas, (x, y), size, colour, -1, cv2.LINE_AA)
            elif kind == 1:
                cv2.rectangle(canvas, (x - size, y - size // 2), (x + size, y + size // 2),
                              colour, -1)
            else:  # a diagonal band
                pts = np.array([[x - size, 0], [x, 0], [x + size, height], [x, height]])
                cv2.fillPoly(canvas, [pts.astype(np.int32)], colour, cv2.LINE_AA)
        canvas[round(self.floor_y):] = floor
        self.canvas = canvas



# ---------------------------------------------------------------- performers


class PictogramLook(Look):
    """A standing pictogram, 0.5-0.66 of the classic's size, feet on the floor band."""

    draws = DRAWS

    family_scene = PictogramScene

    def __init__(self, name: str, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default",
                 scene: Background | None = None) -> None:
        check_style(style)
        free = scene.free if isinstance(scene, PictogramScene) else list(POSTER)
        picks = [free[int(i)] for i in rng.choice(len(free), 4, replace=False)]
        self.colour, self.shirt, self.legs, self.skin = picks
        if style == "studio":
            self.shirt = self.legs = studio_dress(rng)
        spec = family_spec(name, self.draws, length=1.1, aspect=1.15)
        self.spec = dataclasses.replace(spec, angle=spec.angle + float(rng.uniform(-4, 4)))
        self.scale = float(rng.uniform(0.5, 0.66))
        h = height * self.scale
        floor = scene.floor_y if isinstance(scene, PictogramScene) else height * 0.92
        self.x, _ = cell_position(cell, height, rng, (0.3, 0.7), (0.0, 0.0))
        self.head_y = floor - 1.03 * h
        self.sway_phase = float(rng.uniform(0, 2 * np.pi))
        sprite = render_sprite(self.spec, height, self.scale, Pen, self.colour)
        self.sprite = premultiply(studio_palette(sprite) if style == "studio" else sprite)
        self.figure, self.origin = self._figure(h, rng)

    def _figure(self, h: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, tuple[float, float]]:
        """The body (no arms) as a sprite, and the head centre in its pixels."""
        lean = float(rng.uniform(-0.08, 0.08))  # hips off the head's vertical, body units
        stance = float(rng.uniform(0.06, 0.15))
        figure = Figure(Pen, h, (-0.45, -0.15, 0.45, 1.06))
        if rng.random() < 0.35:  # a dress: the pictogram's triangle, legs below it
            for side in (-1, 1):
                figure.line(side * 0.06 + lean, 0.7, side * stance, 1.0, self.skin, 0.08)
            figure.poly([(-0.12 + lean, 0.46), (0.12 + lean, 0.46), (0.26 + lean, 0.82),
                         (-0.26 + lean, 0.82)], self.shirt)
        else:
            for side in (-1, 1):
                figure.line(side * 0.07 + lean, 0.6, side * stance, 1.0, self.legs, 0.1)
        figure.poly([(-0.16, 0.17), (0.16, 0.17), (0.12 + lean, 0.62), (-0.12 + lean, 0.62)],
                    self.shirt)
        for side in (-1, 1):  # rounded shoulders
            figure.ellipse(side * 0.12, 0.21, 0.06, 0.05, self.shirt)
        figure.ellipse(0.0, 0.0, 0.1, 0.1, self.skin)
        if rng.random() < 0.5:  # a flat cap of hair
            figure.ellipse(0.0, -0.02, 0.105, 0.09, _shade(self.legs, 0.5), arc=(180, 360))
        return figure.sprite()

    def body(self, frame: np.ndarray, x: float, y: float, h: float) -> None:
        blend_rgba(frame, self.figure, place(self.figure, self.origin, x, y))

    def shoulders(self, x: float, y: float, h: float) -> tuple[Point, Point]:
        return (x - 0.15 * h, y + 0.2 * h), (x + 0.15 * h, y + 0.2 * h)

    def arm(self, frame: np.ndarray, shoulder: Point, hand: Point, h: float) -> None:
        line(frame, shoulder, hand, self.shirt, 0.075 * h)

    def hand(self, frame: np.ndarray, point: Point, h: float) -> None:
        ellipse(frame, point, (0.035 * h, 0.035 * h), self.skin)

    def bow(self, frame: np.ndarray, p0: np.ndarray, p1: np.ndarray, normal: np.ndarray,
            height: int) -> None:
        line(frame, p0 + normal / 2, p1 + normal / 2, _shade(self.legs, 0.4), 0.013 * height)

    def slide(self, frame: np.ndarray, segments: Sequence[tuple[np.ndarray, np.ndarray]],
              height: int) -> None:
        for a, b in segments:
            line(frame, a, b, _shade(self.colour, 0.85), 0.016 * height)
