"""Procedural instrument sprites: one distinct shape, colour and size per class.

Every sprite is an RGBA image drawn with OpenCV at twice its size and shrunk (anti-aliasing).
A `SpriteSpec` says how large the instrument is relative to the frame height and how a
performer holds it; `draw_sprite` draws it with a small per-performer colour jitter.
Coordinates inside a sprite are fractions of its width (x) and height (y).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Colour = tuple[int, int, int]  # RGB
SUPERSAMPLE = 2


class Pen:
    """Draws on an RGBA canvas in fractional coordinates (x of the width, y of the height)."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.image = np.zeros((height, width, 4), np.uint8)

    def _p(self, x: float, y: float) -> tuple[int, int]:
        return round(x * self.w), round(y * self.h)

    def _t(self, thickness: float) -> int:
        return max(1, round(thickness * min(self.w, self.h)))

    @staticmethod
    def _c(colour: Colour) -> tuple[int, int, int, int]:
        return int(colour[0]), int(colour[1]), int(colour[2]), 255

    def ellipse(self, x: float, y: float, rx: float, ry: float, colour: Colour,
                thickness: float | None = None, angle: float = 0.0,
                arc: tuple[float, float] = (0.0, 360.0)) -> None:
        """Ellipse centred at (x, y) with radii rx (of width) and ry (of height); filled if
        `thickness` is None, else an outline `thickness` (of the short side) thick."""
        axes = (max(1, round(rx * self.w)), max(1, round(ry * self.h)))
        t = -1 if thickness is None else self._t(thickness)
        cv2.ellipse(self.image, self._p(x, y), axes, angle, arc[0], arc[1], self._c(colour), t,
                    cv2.LINE_AA)

    def poly(self, points: list[tuple[float, float]], colour: Colour) -> None:
        pts = np.array([self._p(x, y) for x, y in points], np.int32)
        cv2.fillPoly(self.image, [pts], self._c(colour), cv2.LINE_AA)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: Colour,
             thickness: float) -> None:
        cv2.line(self.image, self._p(x0, y0), self._p(x1, y1), self._c(colour), self._t(thickness),
                 cv2.LINE_AA)

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour: Colour) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour)

    def dot(self, x: float, y: float, radius: float, colour: Colour) -> None:
        cv2.circle(self.image, self._p(x, y), self._t(radius), self._c(colour), -1, cv2.LINE_AA)


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)  # type: ignore[return-value]


DARK: Colour = (30, 22, 16)
SILVER: Colour = (205, 208, 215)
PEARL: Colour = (245, 240, 225)


def _bowed(pen: Pen, body: Colour, big: bool, sloped: bool) -> None:
    """Violin family, scroll up. `big` adds an endpin (cello, bass); `sloped` = bass shoulders."""
    top, bottom = (0.0, 0.9) if big else (0.0, 1.0)
    span = bottom - top

    def y(v: float) -> float:
        return top + v * span

    edge = _shade(body, 0.55)
    upper_rx = 0.30 if sloped else 0.36
    for colour, grow in ((edge, 0.035), (body, 0.0)):
        pen.ellipse(0.5, y(0.50), upper_rx + grow, 0.115 + grow / 3, colour)
        pen.ellipse(0.5, y(0.83), 0.46 + grow, 0.15 + grow / 3, colour)
        pen.rect(0.5 - 0.28 - grow, y(0.55), 0.5 + 0.28 + grow, y(0.80), colour)
        if sloped:
            pen.poly([(0.5 - 0.1, y(0.30)), (0.5 + 0.1, y(0.30)),
                      (0.5 + upper_rx + grow, y(0.5)), (0.5 - upper_rx - grow, y(0.5))], colour)
    pen.rect(0.44, y(0.06), 0.56, y(0.76), DARK)  # fingerboard and neck
    pen.ellipse(0.5, y(0.035), 0.09, 0.03, _shade(body, 0.8))  # scroll
    for side in (-1, 1):  # f-holes
        pen.line(0.5 + side * 0.2, y(0.62), 0.5 + side * 0.16, y(0.76), DARK, 0.05)
    pen.line(0.3, y(0.745), 0.7, y(0.745), (235, 215, 170), 0.05)  # bridge
    for dx in (-0.03, -0.01, 0.01, 0.03):  # strings
        pen.line(0.5 + dx, y(0.06), 0.5 + dx, y(0.9), (235, 235, 225), 0.012)
    pen.poly([(0.44, y(0.86)), (0.56, y(0.86)), (0.53, y(0.97)), (0.47, y(0.97))], DARK)
    if big:
        pen.line(0.5, 0.9, 0.5, 1.0, (110, 110, 110), 0.05)


def _violin(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=False, sloped=False)


def _cello(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=True, sloped=False)


def _double_bass(pen: Pen, c: Colour) -> None:
    _bowed(pen, c, big=True, sloped=True)


def _flute(pen: Pen, c: Colour) -> None:  # horizontal, embouchure at the left
    pen.rect(0.02, 0.36, 0.98, 0.64, c)
    pen.rect(0.02, 0.30, 0.22, 0.70, _shade(c, 0.92))  # head joint
    pen.ellipse(0.11, 0.30, 0.03, 0.18, _shade(c, 0.6))  # lip plate
    pen.line(0.3, 0.36, 0.95, 0.36, _shade(c, 0.6), 0.08)  # key rod
    for i in range(10):
        pen.dot(0.32 + i * 0.065, 0.5, 0.12, _shade(c, 0.75))


def _oboe(pen: Pen, c: Colour) -> None:  # vertical, reed at the top
    pen.line(0.5, 0.0, 0.5, 0.07, (215, 190, 120), 0.18)  # reed
    pen.poly([(0.38, 0.07), (0.62, 0.07), (0.72, 0.9), (0.28, 0.9)], c)
    pen.poly([(0.28, 0.88), (0.72, 0.88), (0.86, 1.0), (0.14, 1.0)], c)  # small bell
    for y in (0.3, 0.6, 0.88):
        pen.line(0.3, y, 0.7, y, SILVER, 0.1)  # joint rings
    for i in range(8):
        pen.dot(0.5, 0.14 + i * 0.09, 0.12, SILVER)


def _clarinet(pen: Pen, c: Colour) -> None:  # vertical, mouthpiece at the top
    pen.poly([(0.42, 0.0), (0.58, 0.0), (0.64, 0.07), (0.36, 0.07)], DARK)  # mouthpiece
    pen.line(0.3, 0.08, 0.7, 0.08, SILVER, 0.1)  # ligature
    pen.rect(0.32, 0.08, 0.68, 0.84, c)
    pen.poly([(0.32, 0.82), (0.68, 0.82), (1.0, 1.0), (0.0, 1.0)], c)  # wide bell
    for y in (0.16, 0.46, 0.82):
        pen.line(0.3, y, 0.7, y, SILVER, 0.1)
    for i in range(7):
        pen.dot(0.5, 0.22 + i * 0.085, 0.13, SILVER)


def _bassoon(pen: Pen, c: Colour) -> None:  # tall double tube, bocal at the top left
    dark = _shade(c, 0.7)
    pen.rect(0.30, 0.0, 0.58, 0.95, c)  # wing and long joint
    pen.rect(0.56, 0.25, 0.82, 0.95, dark)  # butt joint
    pen.ellipse(0.56, 0.93, 0.32, 0.06, dark)  # boot
    pen.line(0.30, 0.0, 0.58, 0.0, PEARL, 0.12)  # bell ring
    pen.line(0.56, 0.25, 0.45, 0.12, SILVER, 0.06)  # bocal
    pen.line(0.45, 0.12, 0.1, 0.08, SILVER, 0.06)
    for i in range(5):
        pen.dot(0.44, 0.35 + i * 0.1, 0.07, SILVER)


def _saxophone(pen: Pen, c: Colour) -> None:  # J-shaped, mouthpiece at the top left
    w = 0.16
    pen.line(0.15, 0.02, 0.35, 0.12, DARK, 0.1)  # mouthpiece
    pen.line(0.35, 0.12, 0.42, 0.2, c, w * 0.8)  # neck
    pen.poly([(0.34, 0.18), (0.5, 0.18), (0.54, 0.8), (0.32, 0.8)], c)  # body tube
    pen.ellipse(0.55, 0.8, 0.23, 0.12, c, thickness=0.2, arc=(0, 180))  # bow at the bottom
    pen.poly([(0.66, 0.8), (0.80, 0.8), (0.96, 0.48), (0.62, 0.48)], c)  # bell
    pen.ellipse(0.79, 0.48, 0.19, 0.05, _shade(c, 0.6))
    for i in range(6):
        pen.dot(0.43, 0.28 + i * 0.08, 0.09, PEARL)


def _trumpet(pen: Pen, c: Colour) -> None:  # horizontal, mouthpiece at the left
    pen.line(0.0, 0.45, 0.62, 0.45, c, 0.1)  # lead pipe
    pen.rect(0.3, 0.55, 0.6, 0.8, _shade(c, 0.85))  # tuning slide
    pen.rect(0.34, 0.6, 0.56, 0.74, (0, 0, 0))
    for x in (0.36, 0.44, 0.52):  # valves with caps
        pen.rect(x - 0.025, 0.25, x + 0.025, 0.75, c)
        pen.rect(x - 0.035, 0.12, x + 0.035, 0.22, PEARL)
    pen.poly([(0.6, 0.4), (0.6, 0.5), (1.0, 0.95), (1.0, 0.0)], c)  # bell
    pen.ellipse(0.99, 0.47, 0.02, 0.47, _shade(c, 0.6))


def _horn(pen: Pen, c: Colour) -> None:  # coiled, big bell at the bottom right
    pen.ellipse(0.42, 0.45, 0.33, 0.38, c, thickness=0.1)
    pen.ellipse(0.42, 0.45, 0.2, 0.23, c, thickness=0.07)
    for x in (0.36, 0.44, 0.52):
        pen.dot(x, 0.45, 0.05, _shade(c, 0.7))  # rotary valves
    pen.poly([(0.55, 0.55), (0.65, 0.5), (1.0, 0.78), (0.72, 1.0)], c)  # bell throat
    pen.ellipse(0.86, 0.89, 0.13, 0.12, _shade(c, 0.55))
    pen.line(0.1, 0.1, 0.3, 0.2, DARK, 0.05)  # mouthpiece


def _trombone(pen: Pen, c: Colour) -> None:  # horizontal; the outer slide is drawn per frame
    pen.line(0.05, 0.3, 0.75, 0.3, c, 0.12)  # bell section tube
    pen.line(0.3, 0.3, 0.3, 0.7, c, 0.08)  # brace
    pen.line(0.05, 0.7, 0.55, 0.7, c, 0.1)  # inner slide
    pen.poly([(0.7, 0.2), (0.7, 0.4), (1.0, 0.62), (1.0, 0.0)], c)  # bell
    pen.ellipse(0.99, 0.31, 0.015, 0.31, _shade(c, 0.6))
    pen.line(0.0, 0.7, 0.06, 0.7, DARK, 0.12)  # mouthpiece


def _tuba(pen: Pen, c: Colour) -> None:  # big upright body, bell at the top
    pen.ellipse(0.5, 0.66, 0.36, 0.26, c, thickness=0.14)
    pen.rect(0.3, 0.2, 0.72, 0.66, c)
    pen.poly([(0.3, 0.22), (0.72, 0.22), (0.95, 0.02), (0.08, 0.02)], c)  # bell
    pen.ellipse(0.51, 0.04, 0.43, 0.04, _shade(c, 0.55))
    for x in (0.38, 0.48, 0.58, 0.68):
        pen.rect(x - 0.03, 0.42, x + 0.03, 0.6, PEARL)  # pistons
    pen.line(0.14, 0.5, 0.02, 0.42, DARK, 0.04)  # mouthpiece


@dataclass(frozen=True)
class SpriteSpec:
    """How a class looks and is held.

    Attributes:
        draw: draws the instrument on a `Pen`.
        colour: base RGB colour.
        aspect: sprite width / height.
        length: the sprite's longer side, in frame heights.
        anchor: the point (fractions of sprite width, height) held at `hold`.
        hold: where the anchor sits relative to the performer's head centre, in frame heights.
        angle: rotation in degrees while playing (counter-clockwise on screen).
        rest: (drop in frame heights, extra angle) when not playing.
        motion: how onsets move it: 'bow', 'slide', 'valves' or 'keys'.
    """

    draw: Callable[[Pen, Colour], None]
    colour: Colour
    aspect: float
    length: float
    anchor: tuple[float, float]
    hold: tuple[float, float]
    angle: float
    rest: tuple[float, float]
    motion: str


SPECS: dict[str, SpriteSpec] = {
    "Violin": SpriteSpec(_violin, (214, 118, 38), 0.42, 0.34, (0.5, 0.78), (0.03, 0.15), -72,
                         (0.22, 60), "bow"),
    "Viola": SpriteSpec(_violin, (140, 48, 42), 0.42, 0.42, (0.5, 0.78), (0.03, 0.15), -68,
                        (0.25, 55), "bow"),
    "Cello": SpriteSpec(_cello, (128, 70, 24), 0.42, 0.80, (0.5, 0.6), (0.0, 0.48), 12,
                        (0.08, 10), "bow"),
    "DoubleBass": SpriteSpec(_double_bass, (72, 44, 30), 0.42, 1.02, (0.5, 0.5), (-0.02, 0.36),
                             14, (0.06, 8), "bow"),
    "Flute": SpriteSpec(_flute, (205, 210, 222), 8.0, 0.62, (0.1, 0.4), (-0.02, 0.07), -10,
                        (0.3, -60), "keys"),
    "Oboe": SpriteSpec(_oboe, (86, 44, 26), 0.16, 0.44, (0.5, 0.0), (0.0, 0.07), 14,
                       (0.18, 20), "keys"),
    "Clarinet": SpriteSpec(_clarinet, (28, 28, 32), 0.2, 0.48, (0.5, 0.0), (0.0, 0.07), -14,
                           (0.18, -20), "keys"),
    "Bassoon": SpriteSpec(_bassoon, (176, 74, 40), 0.3, 0.80, (0.1, 0.08), (-0.01, 0.07), 28,
                          (0.2, 12), "keys"),
    "Saxophone": SpriteSpec(_saxophone, (226, 178, 56), 0.55, 0.52, (0.15, 0.02),
                            (-0.01, 0.08), 8, (0.2, 15), "keys"),
    "Trumpet": SpriteSpec(_trumpet, (246, 206, 72), 3.0, 0.36, (0.0, 0.45), (0.0, 0.07), 8,
                          (0.3, -55), "valves"),
    "Horn": SpriteSpec(_horn, (206, 118, 60), 1.2, 0.36, (0.1, 0.1), (-0.04, 0.12), 0,
                       (0.18, -15), "valves"),
    "Trombone": SpriteSpec(_trombone, (236, 214, 128), 5.0, 0.72, (0.0, 0.7), (0.0, 0.07), 4,
                           (0.3, -50), "slide"),
    "Tuba": SpriteSpec(_tuba, (170, 176, 196), 0.8, 0.58, (0.05, 0.42), (0.0, 0.08), 0,
                       (0.12, 8), "valves"),
}


# The shape of every class, by which the other drawing families (`looks.py`) pick their own
# drawing of it: a MUSIC class drawn like a Solos class here is drawn like it there too.
SHAPE_OF_DRAWING: dict[Callable[[Pen, Colour], None], str] = {
    _violin: "violin", _cello: "cello", _double_bass: "double_bass", _flute: "flute",
    _oboe: "oboe", _clarinet: "clarinet", _bassoon: "bassoon", _saxophone: "saxophone",
    _trumpet: "trumpet", _horn: "horn", _trombone: "trombone", _tuba: "tuba",
}
SHAPES: tuple[str, ...] = tuple(SHAPE_OF_DRAWING.values())


def shape_of(name: str) -> str:
    """The shape name of class `name` (one of SHAPES)."""
    return SHAPE_OF_DRAWING[SPECS[name].draw]


def sprite_size(spec: SpriteSpec, frame_height: int, scale: float = 1.0) -> tuple[int, int]:
    """(width, height) in pixels of a sprite for frames `frame_height` pixels high."""
    long_side = spec.length * frame_height * scale
    if spec.aspect >= 1:
        return max(4, round(long_side)), max(4, round(long_side / spec.aspect))
    return max(4, round(long_side * spec.aspect)), max(4, round(long_side))


def draw_sprite(name: str, frame_height: int, rng: np.random.Generator,
                scale: float = 1.0) -> np.ndarray:
    """RGBA sprite (h, w, 4) uint8 of class `name`, colour jittered by at most 12 per channel."""
    spec = SPECS[name]
    width, height = sprite_size(spec, frame_height, scale)
    colour = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in spec.colour)
    pen = Pen(width * SUPERSAMPLE, height * SUPERSAMPLE)
    spec.draw(pen, colour)  # type: ignore[arg-type]
    return cv2.resize(pen.image, (width, height), interpolation=cv2.INTER_AREA)


def _like(base: str, colour: Colour, length_factor: float = 1.0,
          motion: str | None = None) -> SpriteSpec:
    spec = SPECS[base]
    return dataclasses.replace(spec, colour=colour, length=spec.length * length_factor,
                               motion=motion or spec.motion)


# MUSIC-21 classes: the MUSIC stand-in draws each with the shape and hold of a Solos class of
# similar size and playing position, in a colour of its own, so that the pictures still tell
# the classes apart (shape, colour and size together are unique per class). Plucked and
# struck instruments move like keyed ones: no bow is drawn, no slide.
SPECS.update({
    "accordion": _like("Tuba", (196, 36, 48), 0.8),
    "acoustic_guitar": _like("Cello", (222, 170, 96), 0.7, motion="keys"),
    "bagpipe": _like("Bassoon", (40, 110, 60)),
    "banjo": _like("Viola", (210, 210, 200), 1.3, motion="keys"),
    "bassoon": SPECS["Bassoon"],
    "cello": SPECS["Cello"],
    "clarinet": SPECS["Clarinet"],
    "congas": _like("Tuba", (150, 92, 40), 1.1),
    "drum": _like("Horn", (236, 236, 236), 1.4),
    "electric_bass": _like("DoubleBass", (150, 20, 30), 0.7, motion="keys"),
    "erhu": _like("Oboe", (110, 40, 20), 1.2),
    "flute": SPECS["Flute"],
    "guzheng": _like("Trombone", (170, 110, 50), motion="keys"),
    "piano": _like("Tuba", (20, 20, 24), 1.4),
    "pipa": _like("Viola", (236, 200, 140), 1.5, motion="keys"),
    "saxophone": SPECS["Saxophone"],
    "trumpet": SPECS["Trumpet"],
    "tuba": SPECS["Tuba"],
    "ukulele": _like("Violin", (246, 220, 60), 1.0, motion="keys"),
    "violin": SPECS["Violin"],
    "xylophone": _like("Trombone", (120, 40, 110), 0.9, motion="keys"),
})
