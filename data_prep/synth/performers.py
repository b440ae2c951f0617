"""Procedural performer video: a player per part over a cluttered, moving background.

Each performer (head, torso, arms) holds the sprite of its class (`sprites.SPECS`). Its
instrument moves with the part's note onsets: every onset gives a decaying jolt (tilt, lift,
nod), strings bow back and forth note by note, the trombone slide follows the pitch. Outside
playing passages the instrument is lowered and still. The background is blurred colour noise
with random shapes and a few drifting blobs, seen through a slowly panning camera.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .presets import check_style
from .sprites import SPECS, SpriteSpec, draw_sprite

ONSET_DECAY_S = 0.1  # time constant of the jolt after each onset
SUBPIXEL_BITS = 4  # OpenCV drawing with fractional coordinates (shift) for smooth motion
SUBPIXEL = 1 << SUBPIXEL_BITS
# A sub-pixel point or size (x, y): a pair of floats or a (2,) array.
Point = Sequence[float] | np.ndarray



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
REST_AFTER_S = 0.8  # rests longer than this (either side) lower the instrument


@dataclass(frozen=True)
class Motion:
    """Per-frame motion drivers of one part, each of shape (F,) for frame times t_f.

    Attributes:
        jolt: exp(-(t - last onset)/tau) * velocity/127, 0 before the first onset.
        direction: +1/-1 alternating note by note (bow direction, jolt side).
        progress: fraction of the current note elapsed (0..1; 1 after it ended).
        pitch: normalised pitch of the current note (0 = lowest of the part, 1 = highest).
        playing: 1 while playing, 0 in long rests, ramps in between.
    """

    jolt: np.ndarray
    direction: np.ndarray
    progress: np.ndarray
    pitch: np.ndarray
    playing: np.ndarray


def motion_from_notes(
    notes: np.ndarray,
    times: np.ndarray,
    spans: Sequence[tuple[float, float]] | None = None,
) -> Motion:
    """Motion drivers for notes (N, 4) [start_s, end_s, pitch, velocity] at frame times (F,).

    If `spans` ([start_s, end_s] playing passages) are given, the performer plays inside them
    and rests outside; otherwise rests are rests of the part longer than REST_AFTER_S.
    """
    f = len(times)
    if len(notes) == 0:
        zeros = np.zeros(f)
        return Motion(zeros, np.ones(f), np.ones(f), zeros, zeros)
    start, end, pitch, velocity = (notes[:, i] for i in range(4))
    index = np.searchsorted(start, times, side="right") - 1
    started = index >= 0
    i = np.maximum(index, 0)
    since = times - start[i]
    jolt = np.where(started, np.exp(-since / ONSET_DECAY_S) * velocity[i] / 127.0, 0.0)
    direction = np.where(i % 2 == 0, 1.0, -1.0)
    duration = np.maximum(end[i] - start[i], 1e-3)
    progress = np.where(started, np.clip(since / duration, 0.0, 1.0), 1.0)
    span = max(float(pitch.max() - pitch.min()), 1.0)
    pitch_norm = np.where(started, (pitch[i] - pitch.min()) / span, 0.5)
    # distance to the nearest sounding note: 0 inside one, else time to the previous end or
    # the next start, whichever is nearer
    latest_end = np.maximum.accumulate(end)
    since_end = np.where(started, times - latest_end[i], np.inf)
    nxt = np.minimum(index + 1, len(start) - 1)
    until_next = np.where(index + 1 < len(start), start[nxt] - times, np.inf)
    gap = np.clip(np.minimum(since_end, until_next), 0.0, None)
    playing = np.clip(1.0 - (gap - REST_AFTER_S) / 0.4, 0.0, 1.0)
    if spans is not None:
        playing = playing_in_spans(spans, times)
    return Motion(jolt, direction, progress, pitch_norm, playing)


def playing_in_spans(spans: Sequence[tuple[float, float]], times: np.ndarray,
                     ramp_s: float = 0.3) -> np.ndarray:
    """(F,) 1 inside the spans, 0 outside, with linear ramps of `ramp_s` just outside them
    (the instrument is raised before the first note and lowered after the last)."""
    playing = np.zeros(len(times))
    for start, end in spans:
        inside = np.clip((times - (start - ramp_s)) / ramp_s, 0, 1) * np.clip(
            ((end + ramp_s) - times) / ramp_s, 0, 1)
        playing = np.maximum(playing, inside)
    return playing


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


def premultiply(sprite: np.ndarray) -> np.ndarray:
    """RGBA (h, w, 4) uint8 with colour multiplied by alpha, which warps without dark fringes
    and blends with two saturating OpenCV operations."""
    alpha = sprite[..., 3:4].astype(np.uint16)
    rgb = (sprite[..., :3].astype(np.uint16) * alpha + 127) // 255
    return np.concatenate([rgb.astype(np.uint8), sprite[..., 3:4]], axis=2)


def _blend_rgba(dst: np.ndarray, sprite: np.ndarray, matrix: np.ndarray) -> None:
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


def _affine(anchor_px: tuple[float, float], target: tuple[float, float],
            angle_deg: float) -> np.ndarray:
    """2x3 matrix rotating about `anchor_px` (sprite pixels) and moving it to `target`."""
    matrix = cv2.getRotationMatrix2D(anchor_px, angle_deg, 1.0)
    matrix[:, 2] += np.array(target) - np.array(anchor_px)
    return matrix


class Performer:
    """One player of class `name` standing in a cell of the frame.

    Args:
        name: Solos class name.
        motion: per-frame drivers of the part this player plays.
        cell: (x offset, width) of the player's cell in the frame.
        height: frame height in pixels.
        rng: randomness for this player's looks (clothes, size, colour jitter, position).
    """

    def __init__(self, name: str, motion: Motion, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default") -> None:
        check_style(style)
        self.spec: SpriteSpec = SPECS[name]
        self.motion = motion
        self.height = height
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

    def draw(self, frame: np.ndarray, index: int, t: float, shift: tuple[float, float]
             ) -> tuple[float, float, float, float]:
        """Draw the performer at frame `index` (time t) into `frame`; `shift` is the camera.

        Returns the performer's box (x0, y0, x1, y1) in frame pixels, clipped to the frame:
        head, shoulders and the instrument (bow and slide excluded)."""
        m = self.motion
        jolt, side, playing = m.jolt[index], m.direction[index], m.playing[index]
        h = self.height * self.scale
        head_x = self.x - shift[0] + 0.006 * self.height * np.sin(0.7 * t + self.sway_phase)
        head_y = self.head_y - shift[1] + 0.03 * h * jolt * playing
        self._draw_body(frame, head_x, head_y, h)

        spec = self.spec
        drop, rest_angle = spec.rest
        angle = spec.angle + (1.0 - playing) * rest_angle
        angle += playing * jolt * (8.0 * side if spec.motion == "bow" else 12.0)
        target_x = head_x + spec.hold[0] * h
        target_y = head_y + spec.hold[1] * h + (1.0 - playing) * drop * h
        if spec.motion in ("valves", "keys"):
            target_y -= playing * jolt * 0.05 * h
        else:
            target_x += playing * jolt * side * 0.025 * h
        sh, sw = self.sprite.shape[:2]
        anchor = (spec.anchor[0] * sw, spec.anchor[1] * sh)
        matrix = _affine(anchor, (target_x, target_y), angle)
        hands = self._hands(matrix, index, playing)
        shoulder_y = head_y + 0.16 * h
        for hand, shoulder_x in zip(hands, (head_x - 0.13 * h, head_x + 0.13 * h)):
            _line(frame, (shoulder_x, shoulder_y), hand, self.shirt, 0.045 * h)
        _blend_rgba(frame, self.sprite, matrix)
        if spec.motion == "bow" and playing > 0.05:
            self._draw_bow(frame, matrix, index, playing)
        elif spec.motion == "slide" and playing > 0.05:
            self._draw_slide(frame, matrix, index)
        for hand in hands:
            _ellipse(frame, hand, (0.028 * h, 0.028 * h), self.skin)
        corners = matrix @ np.array([[0, sw, 0, sw], [0, 0, sh, sh], [1, 1, 1, 1]], float)
        reach = 0.03 * h  # hands and arms around the instrument
        xs = np.concatenate([corners[0], [head_x - 0.2 * h, head_x + 0.2 * h],
                             [p[0] + d for p in hands for d in (-reach, reach)]])
        ys = np.concatenate([corners[1], [head_y - 0.1 * h, frame.shape[0]],
                             [p[1] + d for p in hands for d in (-reach, reach)]])
        height, width = frame.shape[:2]
        return (float(np.clip(xs.min(), 0, width)), float(np.clip(ys.min(), 0, height)),
                float(np.clip(xs.max(), 0, width)), float(np.clip(ys.max(), 0, height)))

    def _draw_body(self, frame: np.ndarray, x: float, y: float, h: float) -> None:
        _ellipse(frame, (x, y + 0.62 * h), (0.2 * h, 0.48 * h), self.shirt, arc=(180, 360))
        _ellipse(frame, (x, y + 0.62 * h + 0.4 * h), (0.2 * h, 0.4 * h), self.shirt)  # trunk
        _line(frame, (x, y + 0.05 * h), (x, y + 0.16 * h), self.skin, 0.06 * h)  # neck
        _ellipse(frame, (x, y), (0.085 * h, 0.085 * h), self.skin)
        _ellipse(frame, (x, y - 0.02 * h), (0.088 * h, 0.075 * h), self.hair, arc=(180, 360))

    def _sprite_point(self, matrix: np.ndarray, fx: float, fy: float) -> np.ndarray:
        sh, sw = self.sprite.shape[:2]
        return matrix @ np.array([fx * sw, fy * sh, 1.0])

    def _bow_stroke(self, index: int) -> float:
        """Bow position along its length, -1..1: one full stroke per note, alternating."""
        m = self.motion
        return float(m.direction[index] * (2.0 * m.progress[index] - 1.0))

    def _hands(self, matrix: np.ndarray, index: int, playing: float) -> list[np.ndarray]:
        """Left and right hand positions on screen."""
        spec = self.spec
        if spec.motion == "bow":
            left = self._sprite_point(matrix, 0.5, 0.25)
            bridge = self._sprite_point(matrix, 0.5, 0.74)
            right = bridge + (self._bow_axis(matrix) * self._bow_stroke(index) * 0.45
                              * self._bow_length() * playing)
            return [left, right]
        if spec.motion == "slide":
            grip = self._sprite_point(matrix, 0.5, 0.7)
            return [self._sprite_point(matrix, 0.28, 0.4), grip + self._slide_offset(matrix, index)]
        if spec.aspect >= 1:  # horizontal instruments: hands along the tube
            return [self._sprite_point(matrix, 0.35, 0.6), self._sprite_point(matrix, 0.6, 0.6)]
        return [self._sprite_point(matrix, 0.5, 0.3), self._sprite_point(matrix, 0.5, 0.65)]

    def _bow_length(self) -> float:
        return 1.15 * max(self.sprite.shape[:2]) * (0.6 if self.spec.length > 0.6 else 1.0)

    def _bow_axis(self, matrix: np.ndarray) -> np.ndarray:
        """Unit vector of the bow on screen: across the strings, slightly tilted."""
        axis = matrix[:, :2] @ np.array([np.cos(0.15), np.sin(0.15)])
        return axis / np.linalg.norm(axis)

    def _draw_bow(self, frame: np.ndarray, matrix: np.ndarray, index: int, playing: float) -> None:
        bridge = self._sprite_point(matrix, 0.5, 0.72)
        axis = self._bow_axis(matrix)
        length = self._bow_length()
        centre = bridge - axis * self._bow_stroke(index) * 0.45 * length * playing
        p0, p1 = centre - axis * length / 2, centre + axis * length / 2
        normal = np.array([-axis[1], axis[0]]) * max(2.0, 0.012 * self.height)
        _line(frame, p0, p1, (240, 232, 210), 0.008 * self.height)  # hair
        _line(frame, p0 + normal, p1 + normal, (60, 35, 20), 0.012 * self.height)  # stick

    def _slide_offset(self, matrix: np.ndarray, index: int) -> np.ndarray:
        # lower notes need a longer slide: move the outer slide out along the instrument
        extension = (1.0 - self.motion.pitch[index]) * 0.3 * self.sprite.shape[1]
        return matrix[:, :2] @ np.array([-extension, 0.0])

    def _draw_slide(self, frame: np.ndarray, matrix: np.ndarray, index: int) -> None:
        offset = self._slide_offset(matrix, index)
        top = self._sprite_point(matrix, 0.08, 0.62) + offset
        bottom = self._sprite_point(matrix, 0.08, 0.78) + offset
        end_top = self._sprite_point(matrix, 0.55, 0.62) + offset
        end_bottom = self._sprite_point(matrix, 0.55, 0.78) + offset
        colour = tuple(int(c * 0.9) for c in self.spec.colour)
        for a, b in ((top, end_top), (bottom, end_bottom), (top, bottom)):
            _line(frame, a, b, colour, 0.012 * self.height)


def _fixed(point: Point) -> tuple[int, int]:
    return round(point[0] * SUBPIXEL), round(point[1] * SUBPIXEL)


def _line(frame: np.ndarray, p0: Point, p1: Point,
          colour: Sequence[int], thickness: float) -> None:
    """Anti-aliased line between sub-pixel points (thickness in pixels, at least 1)."""
    cv2.line(frame, _fixed(p0), _fixed(p1), tuple(int(c) for c in colour),
             max(1, round(thickness)), cv2.LINE_AA, SUBPIXEL_BITS)


def _ellipse(frame: np.ndarray, centre: Point, axes: Point,
             colour: Sequence[int], arc: tuple[float, float] = (0, 360)) -> None:
    """Filled anti-aliased ellipse (or sector) at a sub-pixel centre."""
    cv2.ellipse(frame, _fixed(centre), _fixed(axes), 0, arc[0], arc[1],
                tuple(int(c) for c in colour), -1, cv2.LINE_AA, SUBPIXEL_BITS)


def frame_times(num_frames: int, fps: float) -> np.ndarray:
    """Time in seconds shown by each frame, (F,)."""
    return np.arange(num_frames, dtype=np.float64) / fps


def render_frames(
    players: Sequence[tuple[str, np.ndarray]],
    num_frames: int,
    fps: float,
    cell_width: int,
    height: int,
    rng: np.random.Generator,
    spans: Sequence[tuple[float, float]] | None = None,
    boxes: list | None = None,
    style: str = "default",
) -> Iterator[np.ndarray]:
    """Frames (H, W, 3) uint8 RGB of players side by side, left to right in the given order.

    Args:
        players: (class name, notes (N, 4) on the video's timeline) per player.
        num_frames, fps: length and rate of the video.
        cell_width: width of each player's cell; the frame is cell_width * len(players) wide.
        height: frame height.
        rng: randomness for the scene and the players' looks.
        spans: playing passages in seconds (all players); None = follow each part's rests.
        boxes: if a list, each frame appends its players' boxes to it, left to right, as
            [x0, y0, x1, y1] in pixels (`Performer.draw`).
        style: "default" or "studio" (see `presets.STYLES`).
    """
    times = frame_times(num_frames, fps)
    width = cell_width * len(players)
    scene = Scene(width, height, rng, style=style, cells=len(players))
    performers = [
        Performer(name, motion_from_notes(notes, times, spans), (k * cell_width, cell_width), height,
                  rng, style)
        for k, (name, notes) in enumerate(players)
    ]
    for index, t in enumerate(times):
        frame, shift = scene.view(float(t))
        drawn = [performer.draw(frame, index, float(t), shift) for performer in performers]
        if boxes is not None:
            boxes.append([[round(v, 1) for v in box] for box in drawn])
        yield frame
