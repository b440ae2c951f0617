"""The "lineart" drawing family: ink outlines on paper, with much detail.

Performers are seated on a stool, drawn whole (a farther camera than the classic's), with a
small head, a face, a hair style, a jacket, a striped sweater or a long dress, and arms bent
at the elbow. Instruments are contour drawings (`pens.InkPen`): paper inside, ink outlines,
ebony parts inked in; violins have C-bouts, purfling, f-holes, strings and pegs; brass has
flared bells and tubing. They are turned slightly away from the camera. The background is a
sheet of paper with a pencilled floor line and a few sketched objects; the camera is still
and the light even.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from .drawing import (
    Colour,
    Point,
    blend_rgba,
    ellipse,
    line,
    mix,
    polygon,
    premultiply,
    studio_palette,
)
from .looks import (
    Background,
    Draw,
    Figure,
    Look,
    StillScene,
    cell_position,
    elbow,
    family_spec,
    place,
    render_sprite,
    turned,
)
from .pens import InkPen, flare, profile
from .presets import check_style
from .sprites import SUPERSAMPLE, Pen

INKS: tuple[Colour, ...] = ((24, 24, 28), (32, 36, 90), (78, 50, 28), (20, 60, 66))
EBONY: Colour = (20, 20, 20)  # inked in
LIGHT: Colour = (220, 220, 220)  # paper inside an outline


# ---------------------------------------------------------------- instruments


def _bowed(pen: Pen, big: bool, sloped: bool) -> None:
    """A violin-family contour, scroll up: C-bouts, purfling, f-holes, strings, pegs."""
    span = 0.9 if big else 1.0

    def y(v: float) -> float:
        return v * span

    upper = 0.26 if sloped else 0.34
    widths = [(0.0, 0.1 if sloped else 0.16), (0.15, upper), (0.3, upper - 0.02),
              (0.45, 0.22), (0.55, 0.23), (0.7, 0.44), (0.85, 0.46), (1.0, 0.14)]
    pen.poly(profile(widths, 0.5, y(0.36), y(1.0)), LIGHT)
    inner = [(v, w * 0.86) for v, w in widths]
    pen.poly(profile(inner, 0.5, y(0.38), y(0.98)), LIGHT)  # purfling
    pen.poly([(0.45, y(0.06)), (0.55, y(0.06)), (0.57, y(0.66)), (0.43, y(0.66))], LIGHT)
    pen.ellipse(0.5, y(0.035), 0.08, 0.03, LIGHT)  # scroll and its spiral
    pen.ellipse(0.5, y(0.035), 0.035, 0.013, LIGHT)
    for side in (-1, 1):
        pen.line(0.5 + side * 0.06, y(0.07), 0.5 + side * 0.18, y(0.075), LIGHT, 0.0)  # pegs
        x = 0.5 + side * 0.21
        pen.line(x + side * 0.03, y(0.62), x, y(0.69), EBONY, 0.0)  # f-hole
        pen.line(x, y(0.69), x - side * 0.02, y(0.77), EBONY, 0.0)
    pen.line(0.32, y(0.745), 0.68, y(0.745), LIGHT, 0.0)  # bridge
    for dx in (-0.025, 0.025):  # strings (two of four: more would ink the neck in)
        pen.line(0.5 + dx, y(0.06), 0.5 + dx, y(0.86), EBONY, 0.0)
    pen.poly([(0.44, y(0.85)), (0.56, y(0.85)), (0.54, y(0.97)), (0.46, y(0.97))], EBONY)
    if big:
        pen.line(0.5, 0.9, 0.5, 1.0, EBONY, 0.0)


def _violin(pen: Pen, c: Colour) -> None:
    _bowed(pen, big=False, sloped=False)


def _cello(pen: Pen, c: Colour) -> None:
    _bowed(pen, big=True, sloped=False)


def _double_bass(pen: Pen, c: Colour) -> None:
    _bowed(pen, big=True, sloped=True)


def _flute(pen: Pen, c: Colour) -> None:  # a tube of three joints, many keys on a rod
    pen.rect(0.02, 0.34, 0.98, 0.66, LIGHT)
    for x in (0.24, 0.7):
        pen.line(x, 0.34, x, 0.66, EBONY, 0.0)  # joints
    pen.ellipse(0.11, 0.3, 0.035, 0.16, LIGHT)  # lip plate
    pen.line(0.3, 0.28, 0.95, 0.28, EBONY, 0.0)  # key rod
    for i in range(12):
        pen.dot(0.3 + i * 0.055, 0.5, 0.13, LIGHT)


def _reed_tube(pen: Pen, bell: float, power: float, mouth: Colour) -> None:
    """A vertical wooden tube (oboe, clarinet) with rings, tone holes and keys."""
    pen.poly([(0.42, 0.0), (0.58, 0.0), (0.62, 0.08), (0.38, 0.08)], mouth)
    pen.poly(flare(0.08, 1.0, 0.5, 0.15, bell, power, vertical=True), LIGHT)
    for y in (0.1, 0.38, 0.66, 0.84):
        pen.line(0.3, y, 0.7, y, LIGHT, 0.0)  # rings
    for i in range(9):
        pen.dot(0.5, 0.14 + i * 0.075, 0.1, LIGHT if i % 3 else EBONY)
        pen.line(0.5, 0.14 + i * 0.075, 0.68, 0.16 + i * 0.075, EBONY, 0.0)  # keys


def _oboe(pen: Pen, c: Colour) -> None:  # a narrow cone, a small bell, a reed
    _reed_tube(pen, 0.3, 1.5, LIGHT)


def _clarinet(pen: Pen, c: Colour) -> None:  # a straight tube flaring into a wide bell
    _reed_tube(pen, 0.48, 6.0, EBONY)


def _bassoon(pen: Pen, c: Colour) -> None:  # two joined tubes, a bocal, a ringed bell
    pen.rect(0.3, 0.02, 0.58, 0.95, LIGHT)
    pen.rect(0.58, 0.25, 0.82, 0.95, LIGHT)
    pen.ellipse(0.56, 0.93, 0.3, 0.06, LIGHT)
    for y in (0.05, 0.1, 0.5):
        pen.line(0.3, y, 0.58, y, EBONY, 0.0)
    pen.line(0.56, 0.25, 0.45, 0.12, LIGHT, 0.05)  # bocal: a thin tube
    pen.line(0.45, 0.12, 0.1, 0.08, LIGHT, 0.05)
    for i in range(6):
        pen.dot(0.44, 0.3 + i * 0.1, 0.06, LIGHT)


def _saxophone(pen: Pen, c: Colour) -> None:  # a conical J, key cups, a flared bell
    pen.line(0.15, 0.02, 0.36, 0.12, EBONY, 0.08)
    pen.line(0.36, 0.12, 0.42, 0.2, LIGHT, 0.13)
    pen.poly([(0.36, 0.18), (0.48, 0.18), (0.54, 0.8), (0.3, 0.8)], LIGHT)
    pen.ellipse(0.56, 0.8, 0.24, 0.13, LIGHT, thickness=0.22, arc=(0, 180))
    pen.poly(flare(0.8, 0.46, 0.72, 0.08, 0.2, 3.0, vertical=True), LIGHT)
    pen.ellipse(0.72, 0.46, 0.2, 0.045, LIGHT)
    for i in range(7):
        pen.dot(0.42, 0.26 + i * 0.075, 0.07, LIGHT)


def _trumpet(pen: Pen, c: Colour) -> None:  # tubing loops, valve casings, a flared bell
    pen.ellipse(0.42, 0.62, 0.24, 0.16, LIGHT, thickness=0.08)  # main tuning slide loop
    pen.line(0.0, 0.44, 0.62, 0.44, LIGHT, 0.1)  # lead pipe
    for x in (0.35, 0.43, 0.51):
        pen.rect(x - 0.028, 0.26, x + 0.028, 0.78, LIGHT)  # valve casings
        pen.rect(x - 0.036, 0.16, x + 0.036, 0.24, LIGHT)
        pen.dot(x, 0.1, 0.08, LIGHT)  # finger buttons
    pen.poly(flare(0.6, 1.0, 0.44, 0.05, 0.44, 3.5), LIGHT)
    pen.ellipse(0.99, 0.44, 0.012, 0.44, LIGHT)


def _horn(pen: Pen, c: Colour) -> None:  # three nested coils, rotary valves, a big bell
    for rx, ry in ((0.34, 0.4), (0.26, 0.31), (0.18, 0.22)):
        pen.ellipse(0.42, 0.45, rx, ry, LIGHT, thickness=0.06)
    for x in (0.36, 0.44, 0.52):
        pen.dot(x, 0.45, 0.05, LIGHT)
    pen.poly([(0.55, 0.56), (0.64, 0.48), (1.0, 0.74), (0.76, 1.0)], LIGHT)
    pen.ellipse(0.87, 0.88, 0.12, 0.12, LIGHT)
    pen.line(0.1, 0.1, 0.3, 0.2, EBONY, 0.0)


def _trombone(pen: Pen, c: Colour) -> None:  # the bell section; the outer slide moves
    pen.line(0.05, 0.3, 0.75, 0.3, LIGHT, 0.12)
    pen.ellipse(0.05, 0.5, 0.04, 0.2, LIGHT, thickness=0.1, arc=(90, 270))  # the bend
    pen.line(0.3, 0.3, 0.3, 0.7, EBONY, 0.0)  # brace
    pen.line(0.05, 0.7, 0.55, 0.7, LIGHT, 0.1)  # inner slide
    pen.poly(flare(0.68, 1.0, 0.31, 0.05, 0.3, 3.0), LIGHT)
    pen.line(0.0, 0.7, 0.06, 0.7, EBONY, 0.12)


def _tuba(pen: Pen, c: Colour) -> None:  # coils, a body, pistons, a bell opening upwards
    pen.ellipse(0.5, 0.68, 0.38, 0.26, LIGHT, thickness=0.12)
    pen.ellipse(0.5, 0.68, 0.24, 0.16, LIGHT, thickness=0.08)
    pen.rect(0.32, 0.2, 0.7, 0.66, LIGHT)
    pen.poly(flare(0.24, 0.02, 0.51, 0.2, 0.46, 2.5, vertical=True), LIGHT)
    pen.ellipse(0.51, 0.03, 0.45, 0.035, LIGHT)
    for x in (0.4, 0.48, 0.56, 0.64):
        pen.rect(x - 0.025, 0.4, x + 0.025, 0.6, LIGHT)
    pen.line(0.32, 0.48, 0.02, 0.42, EBONY, 0.0)


DRAWS: dict[str, Draw] = {
    "violin": _violin, "cello": _cello, "double_bass": _double_bass, "flute": _flute,
    "oboe": _oboe, "clarinet": _clarinet, "bassoon": _bassoon, "saxophone": _saxophone,
    "trumpet": _trumpet, "horn": _horn, "trombone": _trombone, "tuba": _tuba,
}


# ---------------------------------------------------------------- background


class LineartScene(StillScene):
    """A sheet of paper with a pencilled floor line and a few sketched objects.

    Attributes:
        paper, ink: the sheet's colour and the ink every player is drawn in.
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        self.paper: Colour = (int(rng.integers(236, 252)), int(rng.integers(230, 248)),
                              int(rng.integers(210, 238)))
        self.ink = INKS[int(rng.integers(len(INKS)))]
        pencil = mix(self.paper, (90, 90, 90), 0.45)
        grain = rng.normal(0, 4.0, (height, width, 1)).astype(np.float32)
        canvas = np.clip(np.array(self.paper, np.float32) + grain, 0, 255).astype(np.uint8)
        floor = height * float(rng.uniform(0.86, 0.97))
        line(canvas, (0, floor), (width, floor + rng.uniform(-4, 4)), pencil, 1)
        for x in rng.uniform(0, width, int(rng.integers(6, 16))):  # hatching under the floor
            line(canvas, (x, floor + 3), (x - 6, floor + 9), pencil, 1)
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(0, width), rng.uniform(0.05, 0.5) * height
            w, h = rng.uniform(0.1, 0.3) * height, rng.uniform(0.12, 0.35) * height
            corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
            polygon(canvas, corners, pencil, outline=1)  # a window or a frame on the wall
            if rng.random() < 0.5:
                line(canvas, (x + w / 2, y), (x + w / 2, y + h), pencil, 1)
                line(canvas, (x, y + h / 2), (x + w, y + h / 2), pencil, 1)
        self.canvas = canvas



# ---------------------------------------------------------------- performers


class LineartLook(Look):
    """A seated ink figure, whole, 0.62-0.74 of the classic's size."""

    draws = DRAWS

    family_scene = LineartScene

    def __init__(self, name: str, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default",
                 scene: Background | None = None) -> None:
        check_style(style)
        if isinstance(scene, LineartScene):
            self.ink, self.paper = scene.ink, scene.paper
        else:
            self.ink, self.paper = INKS[int(rng.integers(len(INKS)))], (244, 240, 228)
        self.weight = max(1.0, 0.007 * height)  # line weight, frame pixels
        spec = family_spec(name, self.draws)
        self.spec = dataclasses.replace(spec, angle=spec.angle + float(rng.uniform(-6, 6)))
        self.scale = float(rng.uniform(0.62, 0.74))
        self.x, self.head_y = cell_position(cell, height, rng, (0.38, 0.62), (0.15, 0.22))
        self.centre_x = self.x
        self.sway_phase = float(rng.uniform(0, 2 * np.pi))
        self.skew = turned(rng, (0.72, 1.0), (0.92, 1.0), 0.08, self.spec)
        weight = round(self.weight * SUPERSAMPLE)

        def pen(w: int, h: int) -> Pen:
            return InkPen(w, h, self.ink, self.paper, weight)

        sprite = render_sprite(self.spec, height, self.scale, pen, self.ink)
        self.sprite = premultiply(studio_palette(sprite) if style == "studio" else sprite)
        self.figure, self.origin = self._figure(height * self.scale, pen, rng)

    def _figure(self, h: float, pen: Callable[[int, int], Pen], rng: np.random.Generator
                ) -> tuple[np.ndarray, tuple[float, float]]:
        """Stool, legs, clothes and head as a sprite, and the head centre in its pixels."""
        figure = Figure(pen, h, (-0.42, -0.14, 0.42, 1.06))
        figure.ellipse(0.0, 0.66, 0.2, 0.035, LIGHT)  # the stool's seat and legs
        for side in (-1, 1):
            figure.line(side * 0.16, 0.67, side * 0.2, 1.02, LIGHT, 0.0)
        spread = float(rng.uniform(0.13, 0.2))
        for side in (-1, 1):
            figure.line(side * 0.08, 0.6, side * spread, 0.7, LIGHT, 0.1)  # thigh
            figure.line(side * spread, 0.7, side * (spread + 0.02), 0.99, LIGHT, 0.08)  # shin
            figure.ellipse(side * (spread + 0.04), 1.0, 0.06, 0.025, EBONY)  # shoe
        clothes = int(rng.integers(3))
        figure.poly([(-0.14, 0.17), (0.14, 0.17), (0.13, 0.62), (-0.13, 0.62)], LIGHT)
        if clothes == 0:  # a jacket: lapels and buttons
            for side in (-1, 1):
                figure.line(side * 0.035, 0.14, side * 0.075, 0.3, EBONY, 0.0)
                figure.line(side * 0.075, 0.3, 0.0, 0.42, EBONY, 0.0)
            for v in (0.46, 0.53):
                figure.dot(0.0, v, 0.012, EBONY)
        elif clothes == 1:  # a striped sweater
            for v in np.arange(0.24, 0.6, 0.06):
                figure.line(-0.13, float(v), 0.13, float(v), EBONY, 0.0)
        else:  # a long dress over the legs
            figure.poly([(-0.13, 0.5), (0.13, 0.5), (0.3, 0.97), (-0.3, 0.97)], LIGHT)
        figure.line(0.0, 0.04, 0.0, 0.16, LIGHT, 0.05)  # neck
        self._head(figure, rng)
        return figure.sprite()

    @staticmethod
    def _head(figure: Figure, rng: np.random.Generator) -> None:
        hair = int(rng.integers(3))
        if hair == 2:  # long hair behind the head
            figure.poly([(-0.09, -0.04), (0.09, -0.04), (0.1, 0.14), (-0.1, 0.14)], EBONY)
        figure.ellipse(0.0, 0.0, 0.07, 0.08, LIGHT)
        for side in (-1, 1):
            figure.dot(side * 0.025, -0.005, 0.008, EBONY)
        figure.line(-0.015, 0.04, 0.015, 0.04, EBONY, 0.0)  # mouth
        if hair == 0:  # an inked-in crop
            figure.ellipse(0.0, -0.025, 0.072, 0.06, EBONY, arc=(180, 360))
        else:  # curls
            for a in np.linspace(200, 340, 6):
                r = np.deg2rad(a)
                figure.dot(0.07 * float(np.cos(r)), 0.075 * float(np.sin(r)) - 0.01, 0.022,
                           LIGHT)

    def body(self, frame: np.ndarray, x: float, y: float, h: float) -> None:
        self.centre_x = x  # this frame's body centre line, which elbows bend away from
        blend_rgba(frame, self.figure, place(self.figure, self.origin, x, y))

    def shoulders(self, x: float, y: float, h: float) -> tuple[Point, Point]:
        return (x - 0.13 * h, y + 0.19 * h), (x + 0.13 * h, y + 0.19 * h)

    def arm(self, frame: np.ndarray, shoulder: Point, hand: Point, h: float) -> None:
        # an outlined sleeve: both segments in ink first, then paper inside, so that the
        # elbow joint shows no seam
        joint = elbow(shoulder, hand, 0.07 * h, self.centre_x)
        for colour, width in ((self.ink, 0.055 * h + 2 * self.weight), (self.paper, 0.055 * h)):
            line(frame, shoulder, joint, colour, width)
            line(frame, joint, hand, colour, width)

    def hand(self, frame: np.ndarray, point: Point, h: float) -> None:
        ellipse(frame, point, (0.026 * h + self.weight, 0.026 * h + self.weight), self.ink)
        ellipse(frame, point, (0.026 * h, 0.026 * h), self.paper)

    def bow(self, frame: np.ndarray, p0: np.ndarray, p1: np.ndarray, normal: np.ndarray,
            height: int) -> None:
        line(frame, p0, p1, mix(self.ink, self.paper, 0.55), self.weight)  # hair
        line(frame, p0 + normal, p1 + normal, self.ink, self.weight)  # stick

    def slide(self, frame: np.ndarray, segments: Sequence[tuple[np.ndarray, np.ndarray]],
              height: int) -> None:
        for a, b in segments:
            line(frame, a, b, self.ink, self.weight)

