"""How a performer looks: one `Look` subclass per drawing family (`families.FAMILIES`).

A look makes every random choice about one performer once (size, position, clothes, the
instrument's drawing and how it is turned) and draws the body, arms, hands, bow and slide
when `performers.Performer` asks; the Performer moves the head and the instrument with the
part's note onsets the same way in every family. Each look also names its family's
background (`scene`). Lengths called `h` are body units: frame height * the look's scale.

`ClassicLook` is the original drawing, kept exactly (same random draws in the same order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Protocol

import cv2
import numpy as np

from .drawing import Point, ellipse, line, premultiply, studio_palette
from .presets import check_style
from .scenes import Scene
from .sprites import (
    SHAPE_OF_DRAWING,
    SPECS,
    SUPERSAMPLE,
    Colour,
    Pen,
    SpriteSpec,
    draw_sprite,
    shape_of,
    sprite_size,
)

# Draws one instrument shape on a pen in a colour; each family has one per shape.
Draw = Callable[[Pen, Colour], None]


class Background(Protocol):
    """A scene seen through a camera (see `scenes.Scene`)."""

    def view(self, t: float) -> tuple[np.ndarray, tuple[float, float]]: ...

    def light(self, frame: np.ndarray) -> None: ...


class StillScene:
    """A background drawn once (`canvas`, (H, W, 3) uint8) under a still camera and even
    light; subclasses draw the canvas in their __init__."""

    canvas: np.ndarray

    def view(self, t: float) -> tuple[np.ndarray, tuple[float, float]]:
        """The canvas; the camera stands still."""
        return self.canvas.copy(), (0.0, 0.0)

    def light(self, frame: np.ndarray) -> None:
        """Even light: nothing to do."""


class Look:
    """One performer's appearance in one drawing family.

    Attributes (set by subclasses' __init__(name, cell, height, rng, style, scene); `scene`
    is the video's background (its palette, light and floor), or None to draw them here):
        spec: the class's SpriteSpec in this family (drawing, size, hold, motion).
        sprite: the instrument, premultiplied RGBA (h, w, 4) uint8.
        scale: body units per frame height (the camera's distance).
        x, head_y: head centre at rest, frame pixels.
        sway_phase: phase of the slow sway, radians.
        skew: 2x2 map applied to the sprite about its anchor before it is turned (an
            instrument seen at an angle), or None.
        exact_box: the player's box is the bounding box of the pixels it drew (False: the
            classic's estimate, which leaves out the bow and the slide).
        draws: the family's drawing of each instrument shape (`sprites.SHAPES`), by name:
            every class is drawn by the drawing of its shape (`sprites.shape_of`).
        family_scene: the family's own background class, built as (width, height, rng), or None
            for the classic scene; the studio style is the same stage in every family.
    """

    exact_box: ClassVar[bool] = True
    draws: ClassVar[Mapping[str, Draw]]
    family_scene: ClassVar[Callable[..., Background] | None] = None
    spec: SpriteSpec
    sprite: np.ndarray
    scale: float
    x: float
    head_y: float
    sway_phase: float
    skew: np.ndarray | None = None

    def __init__(self, name: str, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default",
                 scene: Background | None = None) -> None:
        raise NotImplementedError

    @classmethod
    def scene(cls, width: int, height: int, rng: np.random.Generator, style: str,
              cells: int) -> Background:
        """The family's background for a frame of (width, height) with `cells` players; the
        studio style is the same stage in every family."""
        if cls.family_scene is not None and style != "studio":
            return cls.family_scene(width, height, rng)
        return Scene(width, height, rng, style=style, cells=cells)

    def body(self, frame: np.ndarray, x: float, y: float, h: float) -> None:
        """Draw everything but arms and hands, head centre at (x, y)."""
        raise NotImplementedError

    def shoulders(self, x: float, y: float, h: float) -> tuple[Point, Point]:
        """Left and right shoulder in frame pixels for the head centre (x, y)."""
        return (x - 0.13 * h, y + 0.16 * h), (x + 0.13 * h, y + 0.16 * h)

    def arm(self, frame: np.ndarray, shoulder: Point, hand: Point, h: float) -> None:
        raise NotImplementedError

    def hand(self, frame: np.ndarray, point: Point, h: float) -> None:
        raise NotImplementedError

    def bow(self, frame: np.ndarray, p0: np.ndarray, p1: np.ndarray, normal: np.ndarray,
            height: int) -> None:
        """The bow from p0 to p1 (hair), the stick offset by `normal` (frame pixels)."""
        line(frame, p0, p1, (240, 232, 210), 0.008 * height)  # hair
        line(frame, p0 + normal, p1 + normal, (60, 35, 20), 0.012 * height)  # stick

    def slide(self, frame: np.ndarray, segments: Sequence[tuple[np.ndarray, np.ndarray]],
              height: int) -> None:
        """The trombone's outer slide, drawn as line `segments` (frame pixels)."""
        colour = tuple(int(c * 0.9) for c in self.spec.colour)
        for a, b in segments:
            line(frame, a, b, colour, 0.012 * height)


class ClassicLook(Look):
    """The original drawing: flat fills, a half-length figure rising from the frame's bottom,
    the class's own colour on every instrument (see `sprites.SPECS`)."""

    exact_box = False
    draws: ClassVar[Mapping[str, Draw]] = {shape: draw for draw, shape in SHAPE_OF_DRAWING.items()}

    def __init__(self, name: str, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default",
                 scene: Background | None = None) -> None:
        check_style(style)
        self.spec = SPECS[name]
        studio = style == "studio"
        self.scale = float(rng.uniform(0.74, 0.84) if studio else rng.uniform(0.92, 1.06))
        sprite = draw_sprite(name, height, rng, self.scale)
        self.sprite = premultiply(studio_palette(sprite) if studio else sprite)
        self.skin = tuple(int(c) for c in rng.integers(80, 235, 3))
        if studio:  # concert black or white
            tone = int(rng.integers(15, 40)) if rng.random() < 0.7 else int(rng.integers(215, 245))
            self.shirt: tuple[int, ...] = (tone, tone, tone)
        else:
            self.shirt = tuple(int(c) for c in rng.integers(0, 256, 3))
        self.hair = tuple(int(c) for c in rng.integers(0, 120, 3))
        x, width = cell
        self.x = x + width * float(rng.uniform(0.42, 0.58))
        self.head_y = height * float(rng.uniform(0.34, 0.4) if studio else rng.uniform(0.24, 0.3))
        self.sway_phase = float(rng.uniform(0, 2 * np.pi))

    def body(self, frame: np.ndarray, x: float, y: float, h: float) -> None:
        ellipse(frame, (x, y + 0.62 * h), (0.2 * h, 0.48 * h), self.shirt, arc=(180, 360))
        ellipse(frame, (x, y + 0.62 * h + 0.4 * h), (0.2 * h, 0.4 * h), self.shirt)  # trunk
        line(frame, (x, y + 0.05 * h), (x, y + 0.16 * h), self.skin, 0.06 * h)  # neck
        ellipse(frame, (x, y), (0.085 * h, 0.085 * h), self.skin)
        ellipse(frame, (x, y - 0.02 * h), (0.088 * h, 0.075 * h), self.hair, arc=(180, 360))

    def arm(self, frame: np.ndarray, shoulder: Point, hand: Point, h: float) -> None:
        line(frame, shoulder, hand, self.shirt, 0.045 * h)

    def hand(self, frame: np.ndarray, point: Point, h: float) -> None:
        ellipse(frame, point, (0.028 * h, 0.028 * h), self.skin)


# ---------------------------------------------------------------- for the other families

SKIN_TONES: tuple[Colour, ...] = ((255, 219, 172), (241, 194, 125), (224, 172, 105),
                                  (198, 134, 66), (141, 85, 36), (92, 58, 36))


def family_spec(name: str, draws: Mapping[str, Draw], length: float = 1.0,
                aspect: float = 1.0) -> SpriteSpec:
    """The classic spec of class `name` (hold, motion, size) drawn by the family's drawing of
    its shape (`draws[shape]`), `length` and `aspect` times the classic's."""
    spec = SPECS[name]
    return dataclasses.replace(spec, draw=draws[shape_of(name)], length=spec.length * length,
                               aspect=spec.aspect * aspect)


def render_sprite(spec: SpriteSpec, frame_height: int, scale: float,
                  pen: Callable[[int, int], Pen], colour: Colour) -> np.ndarray:
    """RGBA (h, w, 4) uint8 of `spec` drawn in `colour` by the pen `pen(width, height)`
    makes, at SUPERSAMPLE times the size and shrunk (as `sprites.draw_sprite`)."""
    width, height = sprite_size(spec, frame_height, scale)
    canvas = pen(width * SUPERSAMPLE, height * SUPERSAMPLE)
    spec.draw(canvas, colour)
    return cv2.resize(canvas.image, (width, height), interpolation=cv2.INTER_AREA)


def turned(rng: np.random.Generator, across: tuple[float, float],
           along: tuple[float, float], shear: float, spec: SpriteSpec) -> np.ndarray:
    """A 2x2 foreshortening of a sprite seen at an angle: its short axis shrunk to a factor
    drawn from `across`, its long axis to one from `along`, sheared by up to `shear`."""
    short, long = float(rng.uniform(*across)), float(rng.uniform(*along))
    sx, sy = (long, short) if spec.aspect >= 1 else (short, long)
    k = float(rng.uniform(-shear, shear))
    return np.array([[sx, k * sx], [k * sy * 0.5, sy]])


def cell_position(cell: tuple[int, int], height: int, rng: np.random.Generator,
                  across: tuple[float, float], down: tuple[float, float]) -> tuple[float, float]:
    """Head centre (x, y) in frame pixels: x at a fraction from `across` of the cell, y at a
    fraction from `down` of the frame height."""
    x, width = cell
    return x + width * float(rng.uniform(*across)), height * float(rng.uniform(*down))


class Figure:
    """A pen over a canvas in body units: (u, v) is in h from the head centre (u right, v
    down); the canvas spans u in [left, right] and v in [top, bottom].

    Args:
        pen: makes the pen for a canvas of (width, height) pixels.
        h: body unit in frame pixels.
        extent: (left, top, right, bottom) in body units.
    """

    def __init__(self, pen: Callable[[int, int], Pen], h: float,
                 extent: tuple[float, float, float, float]) -> None:
        self.left, self.top, right, bottom = extent
        self.span = (right - self.left, bottom - self.top)
        self.size = (max(4, round(self.span[0] * h)), max(4, round(self.span[1] * h)))
        self.pen = pen(self.size[0] * SUPERSAMPLE, self.size[1] * SUPERSAMPLE)
        self.h = h

    def _p(self, u: float, v: float) -> tuple[float, float]:
        return (u - self.left) / self.span[0], (v - self.top) / self.span[1]

    def _t(self, t: float) -> float:  # body units -> fraction of the canvas's short side
        return t * self.h / min(self.size)

    def ellipse(self, u: float, v: float, ru: float, rv: float, colour: Colour,
                arc: tuple[float, float] = (0.0, 360.0)) -> None:
        self.pen.ellipse(*self._p(u, v), ru / self.span[0], rv / self.span[1], colour, arc=arc)

    def poly(self, points: Sequence[tuple[float, float]], colour: Colour) -> None:
        self.pen.poly([self._p(u, v) for u, v in points], colour)

    def line(self, u0: float, v0: float, u1: float, v1: float, colour: Colour,
             thickness: float) -> None:
        self.pen.line(*self._p(u0, v0), *self._p(u1, v1), colour, self._t(thickness))

    def dot(self, u: float, v: float, radius: float, colour: Colour) -> None:
        self.pen.dot(*self._p(u, v), self._t(radius), colour)

    def sprite(self) -> tuple[np.ndarray, tuple[float, float]]:
        """The figure as a premultiplied RGBA sprite, and the head centre in its pixels."""
        image = cv2.resize(self.pen.image, self.size, interpolation=cv2.INTER_AREA)
        return premultiply(image), (-self.left * self.h, -self.top * self.h)


def place(sprite: np.ndarray, origin: tuple[float, float], x: float, y: float) -> np.ndarray:
    """2x3 matrix moving a sprite so that its pixel `origin` lands on frame point (x, y)."""
    return np.array([[1.0, 0.0, x - origin[0]], [0.0, 1.0, y - origin[1]]])


def elbow(shoulder: Point, hand: Point, bend: float, centre_x: float) -> np.ndarray:
    """Where the elbow of an arm from `shoulder` to `hand` is: `bend` (frame pixels) off the
    straight line, outwards (away from the body's centre line x = centre_x) and down."""
    s, e = np.asarray(shoulder, np.float64), np.asarray(hand, np.float64)
    mid = (s + e) / 2
    normal = np.array([-(e - s)[1], (e - s)[0]])
    normal /= max(float(np.linalg.norm(normal)), 1e-6)
    outward = np.array([np.sign(s[0] - centre_x) or 1.0, 0.6])
    if normal @ outward < 0:
        normal = -normal
    return mid + bend * normal


def studio_dress(rng: np.random.Generator) -> Colour:
    """Concert black (mostly) or white, as the studio style dresses every player."""
    tone = int(rng.integers(15, 40)) if rng.random() < 0.7 else int(rng.integers(215, 245))
    return tone, tone, tone
