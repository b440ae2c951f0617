"""Frame-level drawing helpers shared by every drawing family.

Points and sizes are in frame pixels with sub-pixel precision (OpenCV's fixed-point `shift`),
so that slow motion is smooth. Sprites are RGBA uint8 (h, w, 4); they are blended
premultiplied (colour * alpha) through an affine 2x3 matrix (sprite pixels -> frame pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # OpenCV drawing with fractional coordinates (shift) for smooth motion
SUBPIXEL = 1 << SUBPIXEL_BITS
# A sub-pixel point or size (x, y): a pair of floats or a (2,) array.
Point = Sequence[float] | np.ndarray
Colour = tuple[int, int, int]  # RGB


def studio_palette(rgba: np.ndarray) -> np.ndarray:
    """The studio style's instrument colours: hue turned by 50 degrees, half the saturation,
    slightly brighter (RGBA uint8 sprite in, same layout out; alpha kept)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + 25) % 180  # OpenCV hue is in [0, 180)
    hsv[..., 1] = hsv[..., 1] // 2
    hsv[..., 2] = np.minimum(hsv[..., 2] * 1.15, 255)
    out = rgba.copy()
    out[..., :3] = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return out


def premultiply(sprite: np.ndarray) -> np.ndarray:
    """RGBA (h, w, 4) uint8 with colour multiplied by alpha, which warps without dark fringes
    and blends with two saturating OpenCV operations."""
    alpha = sprite[..., 3:4].astype(np.uint16)
    rgb = (sprite[..., :3].astype(np.uint16) * alpha + 127) // 255
    return np.concatenate([rgb.astype(np.uint8), sprite[..., 3:4]], axis=2)


def blend_rgba(dst: np.ndarray, sprite: np.ndarray, matrix: np.ndarray) -> None:
    """Warp a premultiplied RGBA sprite by the 2x3 affine `matrix` (sprite -> frame pixels)
    and composite it over the RGB frame `dst` in place, touching only its bounding box."""
    h, w = sprite.shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ matrix.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, dst.shape[1]), min(y1, dst.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    local = matrix.copy()
    local[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(sprite, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    transparency = cv2.cvtColor(255 - warped[..., 3], cv2.COLOR_GRAY2RGB)
    region = dst[y0:y1, x0:x1]
    region[:] = cv2.add(cv2.multiply(region, transparency, scale=1.0 / 255.0), warped[..., :3])


def affine(anchor_px: tuple[float, float], target: tuple[float, float],
           angle_deg: float) -> np.ndarray:
    """2x3 matrix rotating about `anchor_px` (sprite pixels) and moving it to `target`."""
    matrix = cv2.getRotationMatrix2D(anchor_px, angle_deg, 1.0)
    matrix[:, 2] += np.array(target) - np.array(anchor_px)
    return matrix


def about(anchor_px: tuple[float, float], linear: np.ndarray) -> np.ndarray:
    """2x3 matrix applying the 2x2 `linear` map around `anchor_px` (which stays put)."""
    anchor = np.asarray(anchor_px, np.float64)
    return np.concatenate([linear, (anchor - linear @ anchor)[:, None]], axis=1)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine map `outer` after `inner`."""
    return outer[:, :2] @ inner + np.concatenate([np.zeros((2, 2)), outer[:, 2:]], axis=1)


def fixed(point: Point) -> tuple[int, int]:
    return round(point[0] * SUBPIXEL), round(point[1] * SUBPIXEL)


def line(frame: np.ndarray, p0: Point, p1: Point,
         colour: Sequence[int], thickness: float) -> None:
    """Anti-aliased line between sub-pixel points (thickness in pixels, at least 1)."""
    cv2.line(frame, fixed(p0), fixed(p1), tuple(int(c) for c in colour),
             max(1, round(thickness)), cv2.LINE_AA, SUBPIXEL_BITS)


def ellipse(frame: np.ndarray, centre: Point, axes: Point,
            colour: Sequence[int], arc: tuple[float, float] = (0, 360),
            angle: float = 0.0, thickness: float | None = None) -> None:
    """Anti-aliased ellipse (or sector) at a sub-pixel centre; filled unless `thickness`
    (pixels) is given."""
    width = -1 if thickness is None else max(1, round(thickness))
    cv2.ellipse(frame, fixed(centre), fixed(axes), angle, arc[0], arc[1],
                tuple(int(c) for c in colour), width, cv2.LINE_AA, SUBPIXEL_BITS)


def polygon(frame: np.ndarray, points: Sequence[Point], colour: Sequence[int],
            outline: float | None = None) -> None:
    """Filled anti-aliased polygon of sub-pixel points, or its closed outline `outline`
    pixels thick."""
    pts = np.array([fixed(p) for p in points], np.int32)
    if outline is None:
        cv2.fillPoly(frame, [pts], tuple(int(c) for c in colour), cv2.LINE_AA, SUBPIXEL_BITS)
    else:
        cv2.polylines(frame, [pts], True, tuple(int(c) for c in colour), max(1, round(outline)),
                      cv2.LINE_AA, SUBPIXEL_BITS)


def drawn_box(before: np.ndarray, after: np.ndarray) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in pixels of the pixels that differ between two (H, W, 3) uint8
    frames (x1, y1 exclusive); a zero-size box at the origin if none does."""
    height, width = before.shape[:2]
    # OpenCV's bounding box of non-zero bytes, with the channels laid side by side (a
    # numpy comparison over the whole frame costs several times more per player)
    diff = cv2.absdiff(before, after).reshape(height, width * 3)
    x, y, w, h = cv2.boundingRect(diff)
    if w == 0:
        return 0.0, 0.0, 0.0, 0.0
    return float(x // 3), float(y), float((x + w - 1) // 3 + 1), float(y + h)


def _rgb(values: Sequence[float]) -> Colour:
    r, g, b = (int(np.clip(round(v), 0, 255)) for v in values)
    return r, g, b


def shade(colour: Sequence[int], factor: float) -> Colour:
    """`colour` with every channel times `factor` (truncated), kept in 0..255."""
    return _rgb([int(c * factor) for c in colour])


def mix(a: Sequence[float], b: Sequence[float], weight: float) -> Colour:
    """The RGB colour (1 - weight) * a + weight * b, rounded."""
    return _rgb([(1 - weight) * x + weight * y for x, y in zip(a, b)])


def jitter(colour: Sequence[int], rng: np.random.Generator, amount: int) -> Colour:
    """`colour` with each channel moved by at most `amount`, kept in 0..255."""
    return _rgb([c + int(rng.integers(-amount, amount + 1)) for c in colour])
