"""The "shaded" drawing family: lit volumes in a furnished room, seen from close by.

Performers are framed from the chest up (a close camera: bigger than the classic's and cut by
the frame's bottom), broad-shouldered, in a suit with shirt and tie, a blouse or a
turtleneck, with a face, ears and hair, every part shaded as a rounded body lit from the
side (`pens.ShadedPen`). Instruments have realistic materials that say little about the
class (wood for all strings, lacquered or silver brass), smooth contours, the mouth of each
bell seen in perspective, and are turned well away from the camera (a violin foreshortened to
under half its width). The background is a room (wall, wainscot, a window or pictures, a
wooden floor), out of focus, under a directional, coloured light with a vignette.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from avsep.classes import SOLOS_CLASSES

from .drawing import (
    Colour,
    Point,
    blend_rgba,
    ellipse,
    jitter,
    line,
    mix,
    premultiply,
    shade,
    studio_palette,
)
from .looks import (
    SKIN_TONES,
    Background,
    Draw,
    Figure,
    Look,
    cell_position,
    elbow,
    family_spec,
    place,
    render_sprite,
    studio_dress,
    turned,
)
from .pens import ShadedPen, flare, profile
from .presets import check_style
from .sprites import Pen, shape_of

DARK: Colour = (34, 26, 22)
SILVER: Colour = (200, 202, 210)
PALE: Colour = (226, 208, 170)
WOOD: tuple[Colour, ...] = ((150, 76, 32), (118, 56, 24), (176, 98, 44), (96, 48, 26))
BRASS: tuple[Colour, ...] = ((214, 170, 70), (198, 150, 62), (192, 194, 200))
# Materials by shape: what real instruments are made of, shared across classes.
MATERIALS: dict[str, tuple[tuple[Colour, ...], float]] = {  # (colours, gloss)
    "violin": (WOOD, 0.3), "cello": (WOOD, 0.3), "double_bass": (WOOD, 0.3),
    "flute": ((SILVER, (214, 196, 150)), 0.6), "oboe": (((30, 26, 28), (58, 36, 28)), 0.35),
    "clarinet": (((26, 26, 30), (44, 32, 26)), 0.35), "bassoon": (((150, 70, 40),), 0.3),
    "saxophone": (BRASS, 0.6), "trumpet": (BRASS, 0.6), "horn": (BRASS, 0.6),
    "trombone": (BRASS, 0.6), "tuba": (BRASS, 0.6),
}
# Instruments are larger against the body than in the classic drawing (a violin is over
# two head heights long), except the cello and bass, which a close camera would cut off.
LENGTHS: dict[str, float] = {"cello": 1.0, "double_bass": 1.0}
SUITS: tuple[Colour, ...] = ((28, 32, 48), (40, 40, 44), (18, 18, 20), (88, 30, 40),
                             (60, 70, 60), (120, 100, 80))


# ---------------------------------------------------------------- instruments


def _bowed(pen: Pen, c: Colour, big: bool, sloped: bool) -> None:
    """A smooth violin-family body, scroll up: dark fingerboard, f-holes, pale bridge."""
    span = 0.9 if big else 1.0

    def y(v: float) -> float:
        return v * span

    upper = 0.3 if sloped else 0.38
    widths = [(0.0, 0.12 if sloped else 0.2), (0.18, upper), (0.32, upper - 0.04),
              (0.48, 0.3), (0.6, 0.34), (0.8, 0.47), (0.94, 0.4), (1.0, 0.2)]
    pen.poly(profile(widths, 0.5, y(0.36), y(1.0)), c)
    pen.poly([(0.45, y(0.07)), (0.55, y(0.07)), (0.57, y(0.7)), (0.43, y(0.7))], DARK)
    pen.ellipse(0.5, y(0.04), 0.1, 0.035, shade(c, 0.85))  # scroll
    for side in (-1, 1):
        pen.line(0.5 + side * 0.22, y(0.63), 0.5 + side * 0.19, y(0.77), DARK, 0.05)
    pen.line(0.3, y(0.75), 0.7, y(0.75), PALE, 0.05)  # bridge
    pen.poly([(0.44, y(0.85)), (0.56, y(0.85)), (0.53, y(0.97)), (0.47, y(0.97))], DARK)
    if big:
        pen.line(0.5, 0.9, 0.5, 1.0, SILVER, 0.05)


def _violin(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=False, sloped=False)


def _cello(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=True, sloped=False)


def _double_bass(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=True, sloped=True)


def _flute(pen: Pen, c: Colour) -> None:  # a polished tube, lip plate, key cups
    pen.rect(0.02, 0.36, 0.98, 0.64, c)
    pen.ellipse(0.11, 0.34, 0.03, 0.2, shade(c, 0.8))
    for i in range(9):
        pen.dot(0.34 + i * 0.07, 0.5, 0.16, shade(c, 0.9))


def _oboe(pen: Pen, c: Colour) -> None:  # a narrow cone, silver rings and keys, a reed
    pen.line(0.5, 0.0, 0.5, 0.08, PALE, 0.16)
    pen.poly(flare(0.07, 1.0, 0.5, 0.13, 0.3, 1.3, vertical=True), c)
    for y in (0.3, 0.6, 0.9):
        pen.line(0.3, y, 0.7, y, SILVER, 0.1)
    for i in range(7):
        pen.dot(0.5, 0.16 + i * 0.1, 0.12, SILVER)


def _clarinet(pen: Pen, c: Colour) -> None:  # a straight tube into a wide bell, a mouthpiece
    pen.poly([(0.42, 0.0), (0.58, 0.0), (0.62, 0.08), (0.38, 0.08)], DARK)
    pen.poly(flare(0.08, 1.0, 0.5, 0.16, 0.5, 5.0, vertical=True), c)
    pen.ellipse(0.5, 0.985, 0.48, 0.02, shade(c, 0.4))
    for i in range(6):
        pen.dot(0.5, 0.2 + i * 0.1, 0.12, SILVER)


def _bassoon(pen: Pen, c: Colour) -> None:  # two joined tubes, a silver bocal
    pen.rect(0.3, 0.0, 0.58, 0.95, c)
    pen.rect(0.56, 0.25, 0.82, 0.95, shade(c, 0.85))
    pen.ellipse(0.56, 0.93, 0.3, 0.06, shade(c, 0.85))
    pen.line(0.56, 0.25, 0.45, 0.12, SILVER, 0.05)
    pen.line(0.45, 0.12, 0.1, 0.08, SILVER, 0.05)


def _saxophone(pen: Pen, c: Colour) -> None:  # a J of brass, pearl keys, the bell's mouth
    pen.line(0.15, 0.02, 0.35, 0.12, DARK, 0.09)
    pen.poly([(0.35, 0.16), (0.49, 0.16), (0.55, 0.8), (0.31, 0.8)], c)
    pen.ellipse(0.56, 0.8, 0.24, 0.13, c, thickness=0.22, arc=(0, 180))
    pen.poly(flare(0.8, 0.46, 0.73, 0.09, 0.21, 2.5, vertical=True), c)
    pen.ellipse(0.73, 0.46, 0.2, 0.05, shade(c, 0.35))
    for i in range(6):
        pen.dot(0.43, 0.28 + i * 0.08, 0.08, (236, 228, 210))


def _trumpet(pen: Pen, c: Colour) -> None:  # tubing, valves, a bell with its mouth
    pen.ellipse(0.44, 0.62, 0.22, 0.14, c, thickness=0.09)
    pen.line(0.0, 0.45, 0.62, 0.45, c, 0.1)
    for x in (0.36, 0.44, 0.52):
        pen.rect(x - 0.03, 0.24, x + 0.03, 0.76, c)
        pen.rect(x - 0.035, 0.12, x + 0.035, 0.22, SILVER)
    pen.poly(flare(0.6, 1.0, 0.45, 0.05, 0.44, 2.5), c)
    pen.ellipse(0.975, 0.45, 0.025, 0.43, shade(c, 0.35))


def _horn(pen: Pen, c: Colour) -> None:  # coils and a wide bell whose mouth faces us
    pen.ellipse(0.42, 0.45, 0.33, 0.38, c, thickness=0.09)
    pen.ellipse(0.42, 0.45, 0.2, 0.23, c, thickness=0.07)
    pen.poly([(0.55, 0.55), (0.65, 0.5), (1.0, 0.76), (0.72, 1.0)], c)
    pen.ellipse(0.86, 0.88, 0.13, 0.12, shade(c, 0.35))
    pen.line(0.1, 0.1, 0.3, 0.2, DARK, 0.05)


def _trombone(pen: Pen, c: Colour) -> None:  # bell section and inner slide
    pen.line(0.05, 0.3, 0.75, 0.3, c, 0.11)
    pen.line(0.3, 0.3, 0.3, 0.7, c, 0.07)
    pen.line(0.05, 0.7, 0.55, 0.7, c, 0.09)
    pen.poly(flare(0.66, 1.0, 0.31, 0.05, 0.31, 2.5), c)
    pen.ellipse(0.985, 0.31, 0.015, 0.3, shade(c, 0.35))
    pen.line(0.0, 0.7, 0.06, 0.7, DARK, 0.12)


def _tuba(pen: Pen, c: Colour) -> None:  # a big body, pistons, a bell opening upwards
    pen.ellipse(0.5, 0.66, 0.36, 0.26, c, thickness=0.14)
    pen.rect(0.3, 0.22, 0.72, 0.66, c)
    pen.poly(flare(0.24, 0.03, 0.51, 0.2, 0.45, 2.0, vertical=True), c)
    pen.ellipse(0.51, 0.05, 0.44, 0.05, shade(c, 0.35))
    for x in (0.4, 0.5, 0.6):
        pen.rect(x - 0.03, 0.42, x + 0.03, 0.6, SILVER)
    pen.line(0.14, 0.5, 0.02, 0.42, DARK, 0.04)


DRAWS: dict[str, Draw] = {
    "violin": _violin, "cello": _cello, "double_bass": _double_bass, "flute": _flute,
    "oboe": _oboe, "clarinet": _clarinet, "bassoon": _bassoon, "saxophone": _saxophone,
    "trumpet": _trumpet, "horn": _horn, "trombone": _trombone, "tuba": _tuba,
}


# ---------------------------------------------------------------- background


class ShadedScene:
    """A room out of focus, panning slowly, under a side light.

    Attributes:
        light_from: unit vector (x, y) towards the light, for the players' shading.
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator,
                 margin: int = 10) -> None:
        self.width, self.height, self.margin = width, height, margin
        big_w, big_h = width + 2 * margin, height + 2 * margin
        self.canvas = cv2.GaussianBlur(self._room(big_w, big_h, rng), (0, 0),
                                       float(rng.uniform(1.5, 3.0)))  # depth of field
        side = 1.0 if rng.random() < 0.5 else -1.0
        self.light_from = (0.75 * side, -0.66)
        xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
        ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
        key = 0.82 + 0.24 * side * xs  # brighter on the light's side
        vignette = 1.0 - 0.2 * (xs ** 2 + ys ** 2)
        warmth = (np.array([1.08, 1.0, 0.86], np.float32) if rng.random() < 0.6
                  else np.array([0.9, 0.98, 1.1], np.float32))
        self.light_map = (key * vignette)[..., None] * warmth
        self.pan = rng.uniform(0.03, 0.08, 2), rng.uniform(0, 2 * np.pi, 2)

    @staticmethod
    def _room(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
        """Wall with a wainscot, a window or picture frames, and a wooden floor."""
        wall = np.array(mix(rng.integers(60, 220, 3).tolist(), (200, 190, 170), 0.5), np.float32)
        rows = np.linspace(0.9, 1.1, height, dtype=np.float32)[:, None, None]
        image = np.broadcast_to(wall * rows, (height, width, 3)).copy()
        trim = int(height * rng.uniform(0.5, 0.65))
        image[trim:] *= 0.8
        cv2.line(image, (0, trim), (width, trim), tuple(float(c) for c in wall * 1.15), 3)
        for _ in range(int(rng.integers(1, 4))):  # windows (bright) and pictures (framed)
            x, y = int(rng.integers(0, width)), int(rng.integers(0, trim // 2))
            w, h = int(rng.integers(height // 8, height // 3)), int(rng.integers(height // 8,
                                                                                   trim // 2))
            inside = (230, 236, 240) if rng.random() < 0.4 else rng.integers(30, 200, 3)
            cv2.rectangle(image, (x, y), (x + w, y + h), (60, 44, 30), -1)
            cv2.rectangle(image, (x + 3, y + 3), (x + w - 3, y + h - 3),
                          tuple(float(c) for c in inside), -1)
        floor = int(height * rng.uniform(0.78, 0.9))
        image[floor:] = np.array(jitter((150, 104, 62), rng, 30), np.float32)
        for k in range(-8, 9):  # floorboards running towards a vanishing point
            cv2.line(image, (width // 2 + k * width // 40, floor),
                     (width // 2 + k * width // 6, height), (90, 62, 40), 1)
        return np.clip(image, 0, 255).astype(np.uint8)

    def view(self, t: float) -> tuple[np.ndarray, tuple[float, float]]:
        """The room (H, W, 3) at time t through a slowly drifting camera, and its offset."""
        freq, phase = self.pan
        x = self.margin * (1 + 0.7 * np.sin(2 * np.pi * freq[0] * t + phase[0]))
        y = self.margin * (1 + 0.4 * np.sin(2 * np.pi * freq[1] * t + phase[1]))
        centre = (x + (self.width - 1) / 2, y + (self.height - 1) / 2)
        image = cv2.getRectSubPix(self.canvas, (self.width, self.height), centre)
        return image, (float(x) - self.margin, float(y) - self.margin)

    def light(self, frame: np.ndarray) -> None:
        """The side light, vignette and colour of the light, over players and room alike."""
        frame[:] = np.clip(frame * self.light_map, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- performers


class ShadedLook(Look):
    """A shaded figure from the chest up, 1.0-1.2 times the classic's size."""

    draws = DRAWS

    family_scene = ShadedScene

    def __init__(self, name: str, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default",
                 scene: Background | None = None) -> None:
        check_style(style)
        self.light_from = (scene.light_from if isinstance(scene, ShadedScene)
                           else (-0.75, -0.66))
        colours, gloss = MATERIALS[shape_of(name)]
        colour = colours[int(rng.integers(len(colours)))]
        spec = family_spec(name, self.draws, length=LENGTHS.get(shape_of(name), 1.2))
        if name not in SOLOS_CLASSES:  # MUSIC classes keep their own colour
            colour = spec.colour
        self.spec = dataclasses.replace(spec, angle=spec.angle + float(rng.uniform(-8, 8)),
                                        colour=jitter(colour, rng, 14))
        self.scale = float(rng.uniform(1.0, 1.2))
        self.x, self.head_y = cell_position(cell, height, rng, (0.4, 0.6), (0.14, 0.2))
        self.centre_x = self.x
        self.sway_phase = float(rng.uniform(0, 2 * np.pi))
        self.skew = turned(rng, (0.42, 0.85), (0.85, 1.0), 0.2, self.spec)
        light = self.light_from

        def pen(gloss: float) -> Callable[[int, int], Pen]:
            return lambda w, h: ShadedPen(w, h, light, gloss)

        sprite = render_sprite(self.spec, height, self.scale, pen(gloss), self.spec.colour)
        self.sprite = premultiply(studio_palette(sprite) if style == "studio" else sprite)
        self.skin = jitter(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], rng, 10)
        suit = SUITS[int(rng.integers(len(SUITS)))]
        self.sleeve = studio_dress(rng) if style == "studio" else jitter(suit, rng, 12)
        self.figure, self.origin = self._figure(height * self.scale, pen(0.12), rng)

    def _figure(self, h: float, pen: Callable[[int, int], Pen], rng: np.random.Generator
                ) -> tuple[np.ndarray, tuple[float, float]]:
        """Torso, clothes, neck and head as a sprite, and the head centre in its pixels."""
        figure = Figure(pen, h, (-0.34, -0.16, 0.34, 1.1))
        figure.poly([(-0.19, 0.22), (0.19, 0.22), (0.21, 1.1), (-0.21, 1.1)], self.sleeve)
        for side in (-1, 1):
            figure.ellipse(side * 0.16, 0.25, 0.07, 0.06, self.sleeve)
        figure.ellipse(0.0, 0.1, 0.045, 0.08, self.skin)  # neck
        clothes = int(rng.integers(3))
        if clothes == 0:  # a suit: shirt, tie, lapels
            figure.poly([(-0.07, 0.16), (0.07, 0.16), (0.0, 0.46)], (236, 236, 232))
            figure.poly([(-0.02, 0.18), (0.02, 0.18), (0.03, 0.4), (0.0, 0.45), (-0.03, 0.4)],
                        jitter((120, 30, 40), rng, 60))
            for side in (-1, 1):
                figure.poly([(side * 0.07, 0.16), (side * 0.12, 0.2), (side * 0.02, 0.48)],
                            shade(self.sleeve, 0.7))
        elif clothes == 1:  # a blouse with a round neckline
            figure.ellipse(0.0, 0.17, 0.08, 0.06, self.skin)
        else:  # a turtleneck
            figure.ellipse(0.0, 0.15, 0.06, 0.045, shade(self.sleeve, 1.2))
        self._head(figure, rng)
        return figure.sprite()

    def _head(self, figure: Figure, rng: np.random.Generator) -> None:
        hair = jitter(((40, 28, 20), (90, 60, 30), (20, 18, 18), (150, 110, 60),
                       (170, 170, 170))[int(rng.integers(5))], rng, 10)
        if rng.random() < 0.4:  # long hair falling on both sides of the face
            for side in (-1, 1):
                figure.ellipse(side * 0.07, 0.06, 0.045, 0.13, hair)
        for side in (-1, 1):
            figure.ellipse(side * 0.085, 0.01, 0.02, 0.03, shade(self.skin, 0.9))  # ears
        figure.ellipse(0.0, 0.0, 0.085, 0.1, self.skin)
        figure.ellipse(0.0, -0.035, 0.092, 0.075, hair, arc=(180, 360))
        for side in (-1, 1):
            figure.dot(side * 0.032, -0.002, 0.011, (30, 24, 20))
            figure.line(side * 0.05, -0.025, side * 0.015, -0.028, hair, 0.008)  # brows
        figure.ellipse(0.0, 0.03, 0.012, 0.02, shade(self.skin, 0.85))  # nose
        figure.line(-0.02, 0.06, 0.02, 0.06, shade(self.skin, 0.6), 0.008)

    def body(self, frame: np.ndarray, x: float, y: float, h: float) -> None:
        self.centre_x = x  # this frame's body centre line, which elbows bend away from
        blend_rgba(frame, self.figure, place(self.figure, self.origin, x, y))

    def shoulders(self, x: float, y: float, h: float) -> tuple[Point, Point]:
        return (x - 0.17 * h, y + 0.25 * h), (x + 0.17 * h, y + 0.25 * h)

    def arm(self, frame: np.ndarray, shoulder: Point, hand: Point, h: float) -> None:
        # a sleeve lit from the side: a dark full-width stroke, then a lighter, narrower one
        # moved towards the light
        joint = elbow(shoulder, hand, 0.09 * h, self.centre_x)
        lit = np.array(self.light_from) * 0.015 * h
        for colour, width, offset in ((shade(self.sleeve, 0.7), 0.08 * h, 0.0 * lit),
                                      (shade(self.sleeve, 1.25), 0.04 * h, lit)):
            points = [np.asarray(p, np.float64) + offset for p in (shoulder, joint, hand)]
            line(frame, points[0], points[1], colour, width)
            line(frame, points[1], points[2], colour, width)

    def hand(self, frame: np.ndarray, point: Point, h: float) -> None:
        ellipse(frame, point, (0.034 * h, 0.03 * h), shade(self.skin, 0.85))
        lit = np.asarray(point, np.float64) + np.array(self.light_from) * 0.01 * h
        ellipse(frame, lit, (0.02 * h, 0.018 * h), self.skin)

    def bow(self, frame: np.ndarray, p0: np.ndarray, p1: np.ndarray, normal: np.ndarray,
            height: int) -> None:
        line(frame, p0, p1, (236, 230, 214), 0.006 * height)  # hair
        line(frame, p0 + normal, p1 + normal, (92, 46, 22), 0.011 * height)  # stick

    def slide(self, frame: np.ndarray, segments: Sequence[tuple[np.ndarray, np.ndarray]],
              height: int) -> None:
        for a, b in segments:
            line(frame, a, b, shade(self.spec.colour, 0.8), 0.014 * height)
            line(frame, a, b, shade(self.spec.colour, 1.2), 0.005 * height)
