"""Backgrounds: the classic cluttered, panning scene and the studio stage.

A scene is larger than the frame and seen through a camera; `view(t)` returns the background
(H, W, 3) uint8 RGB at time t and the camera offset that performers are drawn with, and
`light(frame)` applies the scene's lighting after the performers are drawn (nothing here).
"""

from __future__ import annotations

import cv2
import numpy as np

from .drawing import SUBPIXEL, SUBPIXEL_BITS
from .presets import check_style


class Scene:
    """Cluttered background larger than the frame, a camera path over it and drifting blobs.

    Args:
        width, height: frame size in pixels.
        rng: randomness for this clip.
        margin: extra background on each side for the camera to pan over.
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator, margin: int = 16,
                 style: str = "default", cells: int = 1):
        check_style(style)
        self.width, self.height, self.margin = width, height, margin
        self.style = style
        if style == "studio":
            self._studio(rng, cells)
            return
        big_w, big_h = width + 2 * margin, height + 2 * margin
        # a smooth colour gradient, a mid-frequency texture on it, then random shapes whose
        # colours lean towards the gradient: busy, but quieter than the performers
        base = rng.integers(50, 210, (3, 4, 3)).astype(np.uint8)
        canvas = cv2.resize(base, (big_w, big_h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        noise = rng.normal(0, 1, (big_h // 6 + 1, big_w // 6 + 1, 3)).astype(np.float32)
        texture = cv2.resize(noise, (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        canvas = np.clip(canvas + 18 * cv2.GaussianBlur(texture, (0, 0), 2), 0, 255)
        canvas = canvas.astype(np.uint8)
        for _ in range(int(rng.integers(20, 40))):
            x, y = int(rng.integers(0, big_w)), int(rng.integers(0, big_h))
            local = canvas[min(y, big_h - 1), min(x, big_w - 1)].astype(np.float64)
            colour = tuple(int(c) for c in 0.5 * local + 0.5 * rng.integers(0, 256, 3))
            size = int(rng.integers(4, max(5, big_h // 4)))
            kind = int(rng.integers(0, 3))
            if kind == 0:
                cv2.rectangle(canvas, (x, y), (x + size, y + int(rng.integers(4, size + 5))),
                              colour, -1)
            elif kind == 1:
                cv2.circle(canvas, (x, y), size // 2, colour, -1, cv2.LINE_AA)
            else:
                end = (int(rng.integers(0, big_w)), int(rng.integers(0, big_h)))
                cv2.line(canvas, (x, y), end, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        self.canvas = cv2.GaussianBlur(canvas, (3, 3), 0)
        self.pan = rng.uniform(0.05, 0.12, 2), rng.uniform(0, 2 * np.pi, 2)
        count = int(rng.integers(2, 5))
        self.blob_start = rng.uniform(0, 1, (count, 2)) * (big_w, big_h)
        self.blob_velocity = rng.uniform(-12, 12, (count, 2))  # pixels per second
        self.blob_colour = rng.integers(40, 220, (count, 3))
        self.blob_radius = rng.integers(height // 20 + 2, height // 8 + 3, count)

    def _studio(self, rng: np.random.Generator, cells: int) -> None:
        """A dark stage: wall and floor gradients, one soft spotlight per player's cell."""
        w, h = self.width, self.height
        wall = rng.integers(10, 60, 3).astype(np.float32)
        floor = rng.integers(40, 90, 3).astype(np.float32)
        rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        horizon = float(rng.uniform(0.62, 0.72))
        image = np.where(rows < horizon, wall * (0.6 + 0.4 * rows / horizon),
                         floor * (0.8 + 0.2 * (rows - horizon) / (1 - horizon)))
        image = np.broadcast_to(image, (h, w, 3)).copy()
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        warmth = rng.uniform(0.85, 1.0, 3).astype(np.float32)
        for k in range(cells):
            cx, cy = (k + 0.5) * w / cells, h * float(rng.uniform(0.45, 0.6))
            spot = np.exp(-(((xs - cx) / (0.32 * w / cells)) ** 2 + ((ys - cy) / (0.5 * h)) ** 2))
            image += (90 * spot)[..., None] * warmth
        self.canvas = np.clip(image, 0, 255).astype(np.uint8)

    def camera(self, t: float) -> tuple[float, float]:
        """Top-left corner of the view into the background at time t (slow sinusoidal pan)."""
        freq, phase = self.pan
        x = self.margin * (1 + 0.8 * np.sin(2 * np.pi * freq[0] * t + phase[0]))
        y = self.margin * (1 + 0.6 * np.sin(2 * np.pi * freq[1] * t + phase[1]))
        return float(x), float(y)

    def view(self, t: float) -> tuple[np.ndarray, tuple[float, float]]:
        """The background (H, W, 3) seen at time t, and the camera offset used.

        The camera moves by sub-pixel amounts (interpolated crop): whole-pixel jumps of a
        textured background would flicker the entire frame every few frames. The studio
        camera stands still.
        """
        if self.style == "studio":
            return self.canvas.copy(), (0.0, 0.0)
        x, y = self.camera(t)
        centre = (x + (self.width - 1) / 2, y + (self.height - 1) / 2)
        image = cv2.getRectSubPix(self.canvas, (self.width, self.height), centre)
        size = np.array(self.canvas.shape[1::-1])
        for start, velocity, colour, radius in zip(
            self.blob_start, self.blob_velocity, self.blob_colour, self.blob_radius
        ):
            cx, cy = ((start + velocity * t) % size - (x, y)) * SUBPIXEL
            cv2.circle(image, (int(cx), int(cy)), int(radius) * SUBPIXEL,
                       tuple(int(c) for c in colour), -1, cv2.LINE_AA, SUBPIXEL_BITS)
        return image, (x - self.margin, y - self.margin)

    def light(self, frame: np.ndarray) -> None:
        """The classic and studio scenes are evenly lit: nothing to do."""
