"""Separation with The Sound of Pixels, computing each frame's visual features once.

A window's visual input is `num_frames` frames `frame_stride` apart (3 frames 3 s apart in
SoP) and windows are half a window (~3 s) apart, so consecutive windows show mostly the same
frames: the left frame of one window is, most of the time, the centre frame of the window
before it. The vision net sees every frame on its own (the clip's frames meet only in the
max over time that follows it), so its features are computed once per (video frame, region)
and reused by every window that shows the frame; each window then pools its frames'
features and goes through the rest of the model as `SoundOfPixels.separate` does. The
output is the same (the same operations on the same inputs), at about a third of the
vision net's work. The U-Net runs in channels-last layout on the CPU
(`channels_last_audio_net`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeGuard

import numpy as np
import torch
import torch.nn.functional as F

from avsep.geometry import ClipSpec
from avsep.inference.video import VideoSource
from avsep.models.sop import SoundOfPixels


def supports_frame_reuse(model: object) -> TypeGuard[SoundOfPixels]:
    """Whether `separate_windows` applies: a Sound of Pixels model (frames as condition)."""
    return isinstance(model, SoundOfPixels)


class FrameFeatureCache:
    """Raw vision features of each video frame's region crops, computed once.

    Args:
        model: the Sound of Pixels model (eval mode).
        source: the opened video.
        spec: the clip geometry (frames per window, their stride, image size).
        boxes: the regions (x0, y0, x1, y1), in source order.
        device: where the model runs.
    """

    def __init__(self, model: SoundOfPixels, source: VideoSource, spec: ClipSpec,
                 boxes: Sequence[tuple[int, int, int, int]], device: torch.device) -> None:
        self.model, self.source, self.spec = model, source, spec
        self.boxes = list(boxes)
        self.device = device
        self._features: dict[int, torch.Tensor] = {}  # frame index -> (N, K, h, w)
        self.computed = 0  # frames whose features were computed (for tests and benchmarks)

    def _compute(self, indices: list[int]) -> None:
        """Features of the frames `indices` (not yet cached), all regions in one batch."""
        crops = np.stack([self.source.region_crops(frame, self.spec, self.boxes)
                          for frame in self.source.frames_by_index(indices)])  # (M, N, 3, S, S)
        m, n = crops.shape[:2]
        images = torch.from_numpy(crops).to(self.device).reshape(m * n, *crops.shape[2:])
        # FrameNormalize works on (..., 3, T, H, W): give each image a time axis of one.
        normalised = self.model.normalize_frames(images.unsqueeze(2)).squeeze(2)
        features = self.model.vision.image_features(normalised)  # (M * N, K, h, w)
        features = features.reshape(m, n, *features.shape[1:])
        for index, per_region in zip(indices, features):
            self._features[index] = per_region
        self.computed += len(indices)

    def pooled(self, centres: Sequence[int]) -> torch.Tensor:
        """The pooled visual vectors (B, N, K) of the windows centred on `centres` (samples),
        as `SoundOfPixels.visual_features` gives them for those windows' frames."""
        windows = [self.source.clip_frame_numbers(c, self.spec) for c in centres]
        needed = sorted({i for frames in windows for i in frames})
        missing = [i for i in needed if i not in self._features]
        if missing:
            self._compute(missing)
        # Windows come in time order: frames before this batch's first one are not needed
        # again.
        for index in [i for i in self._features if i < needed[0]]:
            del self._features[index]
        stacked = torch.stack([torch.stack([self._features[i] for i in frames], dim=2)
                               for frames in windows])  # (B, N, K, T, h, w)
        b, n = stacked.shape[:2]
        pooled = self.model.vision.pool_feature_map(stacked.reshape(b * n, *stacked.shape[2:]))
        return pooled.pooled.reshape(b, n, -1)


@contextmanager
def channels_last_audio_net(model: SoundOfPixels) -> Iterator[None]:
    """Run the U-Net in channels-last layout for the duration, then restore the layout.

    oneDNN's CPU convolutions skip a reorder of every activation in this layout (the
    U-Net's upsampling convolutions gain most); the results are the same operations
    summed in another order, equal to float rounding.
    """
    model.audio_net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    try:
        yield
    finally:
        model.audio_net.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


@torch.no_grad()
def separate_windows(model: SoundOfPixels, mix: torch.Tensor, pooled: torch.Tensor
                     ) -> torch.Tensor:
    """`SoundOfPixels.separate` with the visual vectors given: mixtures (B, T) and pooled
    vectors (B, N, K) -> waveforms (B, N, T)."""
    length = mix.shape[1]
    padded = F.pad(mix, (0, model.valid_num_samples(length) - length))
    spec = model.spectrogram(padded)
    audio = model.audio_components(spec["log_mag"])
    logits: torch.Tensor = model.synthesizer(pooled, audio)
    # A model that changes the synthesizer's logits at separation (a `fallback` toward an
    # even share for unsure sources) exposes the change for paths like this one.
    fallback = getattr(model, "fallback", None)
    if fallback is not None:
        logits = fallback(logits, pooled)
    return model.reconstruct(logits, spec, length)
