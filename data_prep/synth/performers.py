"""Procedural performer video: a player per part over a background, in one drawing family.

Each performer (head, torso, arms) holds the sprite of its class, both drawn by the video's
drawing family (`LOOKS`: `looks.ClassicLook` draws `sprites.SPECS`). In every family the
instrument moves with the part's note onsets: every onset gives a decaying jolt (tilt, lift,
nod), strings bow back and forth note by note, the trombone slide follows the pitch. Outside
playing passages the instrument is lowered and still. The classic background is blurred
colour noise with random shapes and a few drifting blobs, seen through a slowly panning
camera (`scenes.Scene`); the other families bring their own (`look_*.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .drawing import (  # noqa: F401  (premultiply, studio_palette: re-exported)
    about,
    affine,
    blend_rgba,
    compose,
    drawn_box,
    premultiply,
    studio_palette,
)
from .families import CLASSIC, FAMILIES
from .look_lineart import LineartLook
from .look_pictogram import PictogramLook
from .look_shaded import ShadedLook
from .looks import Background, ClassicLook, Look
from .presets import check_style
from .scenes import Scene  # noqa: F401  (re-exported)
from .sprites import SpriteSpec

ONSET_DECAY_S = 0.1  # time constant of the jolt after each onset
REST_AFTER_S = 0.8  # rests longer than this (either side) lower the instrument

# The drawing families by name (`families.FAMILIES`): each is the Look that draws its players.
LOOKS: dict[str, type[Look]] = {
    CLASSIC: ClassicLook, "lineart": LineartLook, "shaded": ShadedLook,
    "pictogram": PictogramLook,
}


def look_class(family: str) -> type[Look]:
    """The Look of drawing family `family`."""
    try:
        return LOOKS[family]
    except KeyError:
        raise ValueError(f"unknown drawing family {family!r} (known: {', '.join(FAMILIES)})"
                         ) from None


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


class Performer:
    """One player of class `name` in a cell of the frame, drawn by drawing family `family`.

    Args:
        name: Solos (or MUSIC) class name.
        motion: per-frame drivers of the part this player plays.
        cell: (x offset, width) of the player's cell in the frame.
        height: frame height in pixels.
        rng: randomness for this player's looks (clothes, size, colour jitter, position).
        style: "default" or "studio" (`presets.STYLES`).
        family: the drawing family (`families.FAMILIES`); its Look makes every choice about
            the player's appearance, while the motion below is the same in every family.
        scene: the video's background, whose palette, light and floor the look may follow.
    """

    def __init__(self, name: str, motion: Motion, cell: tuple[int, int], height: int,
                 rng: np.random.Generator, style: str = "default",
                 family: str = CLASSIC, scene: Background | None = None) -> None:
        check_style(style)
        self.look = look_class(family)(name, cell, height, rng, style, scene)
        self.spec: SpriteSpec = self.look.spec
        self.sprite = self.look.sprite
        self.motion = motion
        self.height = height
        self.scale = self.look.scale

    def draw(self, frame: np.ndarray, index: int, t: float, shift: tuple[float, float]
             ) -> tuple[float, float, float, float]:
        """Draw the performer at frame `index` (time t) into `frame`; `shift` is the camera.

        Returns the performer's box (x0, y0, x1, y1) in frame pixels, clipped to the frame:
        every pixel it drew, or in the classic family (`Look.exact_box` False) its estimate
        of head, shoulders and the instrument (bow and slide excluded)."""
        look = self.look
        before = frame.copy() if look.exact_box else None
        m = self.motion
        jolt, side, playing = m.jolt[index], m.direction[index], m.playing[index]
        h = self.height * self.scale
        head_x = look.x - shift[0] + 0.006 * self.height * np.sin(0.7 * t + look.sway_phase)
        head_y = look.head_y - shift[1] + 0.03 * h * jolt * playing
        look.body(frame, head_x, head_y, h)
        matrix = self._instrument_matrix(jolt, side, playing, (head_x, head_y), h)
        hands = self._hands(matrix, index, playing)
        for hand, shoulder in zip(hands, look.shoulders(head_x, head_y, h)):
            look.arm(frame, shoulder, hand, h)
        blend_rgba(frame, self.sprite, matrix)
        if self.spec.motion == "bow" and playing > 0.05:
            self._draw_bow(frame, matrix, index, playing)
        elif self.spec.motion == "slide" and playing > 0.05:
            self._draw_slide(frame, matrix, index)
        for hand in hands:
            look.hand(frame, hand, h)
        if before is not None:
            return drawn_box(before, frame)
        return self._estimated_box(frame.shape[:2], matrix, hands, (head_x, head_y), h)

    def _instrument_matrix(self, jolt: float, side: float, playing: float,
                           head: tuple[float, float], h: float) -> np.ndarray:
        """2x3 map of the sprite onto the frame: held at the head, tilted and lifted by each
        onset's jolt (bowed instruments sideways by bow direction), lowered in rests."""
        spec = self.spec
        drop, rest_angle = spec.rest
        angle = spec.angle + (1.0 - playing) * rest_angle
        angle += playing * jolt * (8.0 * side if spec.motion == "bow" else 12.0)
        target_x = head[0] + spec.hold[0] * h
        target_y = head[1] + spec.hold[1] * h + (1.0 - playing) * drop * h
        if spec.motion in ("valves", "keys"):
            target_y -= playing * jolt * 0.05 * h
        else:
            target_x += playing * jolt * side * 0.025 * h
        sh, sw = self.sprite.shape[:2]
        anchor = (spec.anchor[0] * sw, spec.anchor[1] * sh)
        matrix = affine(anchor, (target_x, target_y), angle)
        if self.look.skew is not None:  # seen at an angle: foreshortened about the anchor
            matrix = compose(matrix, about(anchor, self.look.skew))
        return matrix

    def _estimated_box(self, size: tuple[int, ...], matrix: np.ndarray,
                       hands: list[np.ndarray], head: tuple[float, float], h: float
                       ) -> tuple[float, float, float, float]:
        """The classic box: instrument corners, head and shoulders down to the frame's
        bottom, hands and arms; clipped to a frame of `size` (height, width)."""
        sh, sw = self.sprite.shape[:2]
        head_x, head_y = head
        corners = matrix @ np.array([[0, sw, 0, sw], [0, 0, sh, sh], [1, 1, 1, 1]], float)
        reach = 0.03 * h  # hands and arms around the instrument
        xs = np.concatenate([corners[0], [head_x - 0.2 * h, head_x + 0.2 * h],
                             [p[0] + d for p in hands for d in (-reach, reach)]])
        ys = np.concatenate([corners[1], [head_y - 0.1 * h, size[0]],
                             [p[1] + d for p in hands for d in (-reach, reach)]])
        height, width = size[:2]
        return (float(np.clip(xs.min(), 0, width)), float(np.clip(ys.min(), 0, height)),
                float(np.clip(xs.max(), 0, width)), float(np.clip(ys.max(), 0, height)))

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
        self.look.bow(frame, p0, p1, normal, self.height)

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
        self.look.slide(frame, ((top, end_top), (bottom, end_bottom), (top, bottom)),
                        self.height)


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
    family: str = CLASSIC,
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
        family: the drawing family of the whole video (`families.FAMILIES`): background,
            lighting and every player.
    """
    check_style(style)
    look = look_class(family)
    times = frame_times(num_frames, fps)
    width = cell_width * len(players)
    scene = look.scene(width, height, rng, style, len(players))
    performers = [
        Performer(name, motion_from_notes(notes, times, spans), (k * cell_width, cell_width), height,
                  rng, style, family, scene)
        for k, (name, notes) in enumerate(players)
    ]
    for index, t in enumerate(times):
        frame, shift = scene.view(float(t))
        drawn = [performer.draw(frame, index, float(t), shift) for performer in performers]
        scene.light(frame)
        if boxes is not None:
            boxes.append([[round(v, 1) for v in box] for box in drawn])
        yield frame
