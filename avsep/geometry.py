"""Clip geometry and frame preparation, shared by training, evaluation and inference.

`ClipSpec` says what one clip is made of (audio window, frames, crop sizes); it is stored in
checkpoints' configs (`data.clip`, see `avsep.run_config`) and read back from them, so
evaluation and inference cut clips exactly as training did. The helpers turn stored JPEG
frames into the vision net's uint8 input (resize, crop, flip); normalisation happens on the
device.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

SAMPLE_RATE = 11025
"""Audio rate of every shard and every model (Hz), as The Sound of Pixels."""

FRAME_RATE = 8
"""Frames per second stored in every shard."""

CLIP_SAMPLES = 65535
"""One training clip / one evaluation segment, in samples at SAMPLE_RATE (~5.94 s)."""


@dataclass(frozen=True)
class ClipSpec:
    """What one training clip is made of.

    Attributes:
        clip_samples: audio window length (65535 at 11025 Hz is ~5.94 s, as in SoP).
        sample_rate: audio rate of the shards, which must be the model's (training checks
            both when it starts).
        fps: frame rate of the shards.
        num_frames: frames per clip (3 in SoP).
        frame_stride: frames between consecutive clip frames (24 at 8 fps = 3 s in SoP).
        image_size: side of the square crop given to the vision net (224 in SoP).
        resize_short_side: training resizes the short side to this before a random crop
            (int(1.1 * 224) = 246 in SoP); evaluation resizes to `image_size` and centre-crops.
        color_jitter: strength s of a random change of colours per training clip (0: none,
            as SoP): hue turned by up to 180 s degrees, saturation and brightness each
            scaled by a factor in [1 - s, 1 + s]; all frames of a clip get the same change.
            A stand-in for the changes of scene between datasets (see `jitter_colors`).
        scale_jitter: strength s of a random zoom per training clip (0: none, as SoP): the
            short side is resized to `resize_short_side` times 2**u, u uniform in [-s, s],
            before the crop; a frame smaller than the crop is padded with its mean colour.
            Players then appear at the sizes other cameras show them at.
        grayscale: probability that a training clip's frames lose their colours (0: never,
            as SoP), so that the instrument has to be told by its shape, not its palette.
        blur: probability that a training clip's frames are blurred by a Gaussian of
            sigma uniform in [0.5, 2] pixels of the crop (0: never, as SoP): other hands
            draw with less detail, other cameras are out of focus.
    """

    clip_samples: int = CLIP_SAMPLES
    sample_rate: int = SAMPLE_RATE
    fps: int = FRAME_RATE
    num_frames: int = 3
    frame_stride: int = 24
    image_size: int = 224
    resize_short_side: int = 246
    color_jitter: float = 0.0
    scale_jitter: float = 0.0
    grayscale: float = 0.0
    blur: float = 0.0

    def __post_init__(self) -> None:
        for name in ("color_jitter", "scale_jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"data.clip.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("grayscale", "blur"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.clip.{name} is a probability in [0, 1], "
                                 f"got {getattr(self, name)}")


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W, 3) so that min(H, W) == size, bicubic as in SoP."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)


def augment_frames(frames: list[np.ndarray], spec: ClipSpec, rng: random.Random | None) -> np.ndarray:
    """Resize, crop and flip a list of (H, W, 3) frames identically -> (3, T, S, S) uint8.

    With `rng` (training): short side to `spec.resize_short_side` (times a random zoom with
    `spec.scale_jitter`), one random crop of `spec.image_size` and one random horizontal
    flip shared by all frames, then the clip's random changes of look (`color_jitter`,
    `grayscale`, `blur`). Without it (evaluation): short side to `spec.image_size` and a
    centre crop. Each change draws from `rng` only when its option is on, so a clip without
    them is cut exactly as before they existed.
    """
    size = spec.image_size
    short = spec.resize_short_side if rng else size
    if rng is not None and spec.scale_jitter > 0:
        short = max(1, round(short * 2 ** rng.uniform(-spec.scale_jitter, spec.scale_jitter)))
    resized = [pad_to(resize_short_side(f, short), size) for f in frames]
    h, w = resized[0].shape[:2]
    if rng is not None:
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
        flip = rng.random() < 0.5
    else:
        top, left, flip = (h - size) // 2, (w - size) // 2, False
    crops = [f[top:top + size, left:left + size] for f in resized]
    if flip:
        crops = [c[:, ::-1] for c in crops]
    if rng is not None:
        crops = change_look(crops, spec, rng)
    return np.ascontiguousarray(np.stack(crops).transpose(3, 0, 1, 2))


def pad_to(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) -> at least (size, size, 3): centred on its mean colour where smaller."""
    h, w = image.shape[:2]
    if h >= size and w >= size:
        return image
    mean = image.reshape(-1, image.shape[2]).mean(axis=0).round().astype(image.dtype)
    padded = np.empty((max(h, size), max(w, size), image.shape[2]), image.dtype)
    padded[:] = mean
    top, left = (padded.shape[0] - h) // 2, (padded.shape[1] - w) // 2
    padded[top:top + h, left:left + w] = image
    return padded


def change_look(crops: list[np.ndarray], spec: ClipSpec, rng: random.Random
                ) -> list[np.ndarray]:
    """A training clip's random changes of look, the same on each of its (S, S, 3) crops."""
    if spec.color_jitter > 0:
        s = spec.color_jitter
        crops = jitter_colors(crops, rng.uniform(-180 * s, 180 * s), rng.uniform(1 - s, 1 + s),
                              rng.uniform(1 - s, 1 + s))
    if spec.grayscale > 0 and rng.random() < spec.grayscale:
        crops = [np.repeat(cv2.cvtColor(np.ascontiguousarray(c), cv2.COLOR_RGB2GRAY)[..., None],
                           3, axis=2) for c in crops]
    if spec.blur > 0 and rng.random() < spec.blur:
        sigma = rng.uniform(0.5, 2.0)
        crops = [cv2.GaussianBlur(np.ascontiguousarray(c), (0, 0), sigma) for c in crops]
    return crops


def jitter_colors(frames: list[np.ndarray], hue_degrees: float, saturation: float,
                  brightness: float) -> list[np.ndarray]:
    """The same change of colours on (H, W, 3) uint8 RGB frames: hue turned by
    `hue_degrees`, saturation and value (HSV) scaled by the factors, clipped to range."""
    changed = []
    for frame in frames:
        hsv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = np.mod(hsv[..., 0] + hue_degrees / 2.0, 180.0)  # OpenCV hue: 0..180
        hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] * brightness, 0, 255)
        changed.append(cv2.cvtColor(np.rint(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB))
    return changed


def clip_frame_indices(centre_sample: int, num_video_frames: int, spec: ClipSpec) -> list[int]:
    """Indices of the clip's frames around the audio sample `centre_sample`, clamped to range."""
    centre = round(centre_sample / spec.sample_rate * spec.fps)
    offsets = [(i - spec.num_frames // 2) * spec.frame_stride for i in range(spec.num_frames)]
    return [min(max(centre + o, 0), num_video_frames - 1) for o in offsets]
