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
    """

    clip_samples: int = CLIP_SAMPLES
    sample_rate: int = SAMPLE_RATE
    fps: int = FRAME_RATE
    num_frames: int = 3
    frame_stride: int = 24
    image_size: int = 224
    resize_short_side: int = 246
    color_jitter: float = 0.0


def resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (H, W, 3) so that min(H, W) == size, bicubic as in SoP."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC)


def augment_frames(frames: list[np.ndarray], spec: ClipSpec, rng: random.Random | None) -> np.ndarray:
    """Resize, crop and flip a list of (H, W, 3) frames identically -> (3, T, S, S) uint8.

    With `rng` (training): short side to `spec.resize_short_side`, one random crop of
    `spec.image_size` and one random horizontal flip shared by all frames. Without it
    (evaluation): short side to `spec.image_size` and a centre crop.
    """
    size = spec.image_size
    resized = [resize_short_side(f, spec.resize_short_side if rng else size) for f in frames]
    h, w = resized[0].shape[:2]
    if rng is not None:
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
        flip = rng.random() < 0.5
    else:
        top, left, flip = (h - size) // 2, (w - size) // 2, False
    crops = [f[top:top + size, left:left + size] for f in resized]
    if flip:
        crops = [c[:, ::-1] for c in crops]
    if rng is not None and spec.color_jitter > 0:
        s = spec.color_jitter
        crops = jitter_colors(crops, rng.uniform(-180 * s, 180 * s), rng.uniform(1 - s, 1 + s),
                              rng.uniform(1 - s, 1 + s))
    return np.ascontiguousarray(np.stack(crops).transpose(3, 0, 1, 2))


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
