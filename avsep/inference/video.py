"""A user's video for inference: its audio at the model's rate and its frames by time.

Decoding is data preparation's (`avsep.media`): the container is probed with
PyAV, audio is decoded at its native rate and averaged to mono, then resampled with the one
resampler preparation uses, so the model hears a user's video exactly as it heard its
training data. Frames are picked by presentation time with the same decord reader.

Time convention (as in the shards): audio sample j is at j / sample_rate seconds and a frame
is at its presentation time, both counted from the start of the file.

Visual input of one audio window (as training, `avsep.geometry`): `num_frames` frames
`frame_stride` frames apart on an 8 fps grid, centred on the window's centre sample
(clamped to the video). Frames are resized in the two steps every training frame went
through: to the stored size (`avsep.media.resize_for_storage`, area averaging, as `avsep
prepare`), then bicubic to the model's size (`avsep.geometry.resize_short_side`).
`model_frames` gives those frames resized so that their short side is the model's image size, with no crop (the vision net takes any size, so every player of
a wide ensemble shot stays visible); `region_frames` gives, per region, the crop resized
and centre-cropped as evaluation does.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from avsep.faults import InputError, UsageError
from avsep.geometry import (
    SAMPLE_RATE,
    ClipSpec,
    augment_frames,
    clip_frame_indices,
    resize_short_side,
)
from avsep.media import BadInput, FrameReader, decode_audio, probe, resample, resize_for_storage

# Decoded frames kept between windows (consecutive windows share most clip frames).
_FRAME_CACHE = 16


class VideoInputError(InputError, ValueError):
    """A video that cannot be used for inference; the message names the file."""


class VideoSource:
    """An opened video file: audio at the model rate, native audio, frames by time.

    Args:
        path: the video (any container PyAV and decord read: mp4, mkv, mov, webm, ...).
        sample_rate: the model's audio rate (11025).
        threads: decoder threads.

    Attributes:
        audio: (T,) float32 mono at `sample_rate`.
        native_audio: (T_native,) float32 mono at `native_rate` (the file's own rate).
        frame_size: (height, width) of the decoded frames.
        duration_s: the video stream's decodable duration.

    Raises:
        VideoInputError: missing or unreadable file, no video stream, no audio stream.
    """

    def __init__(self, path: str | Path, sample_rate: int = SAMPLE_RATE, threads: int = 0) -> None:

        self.path = Path(path)
        self.sample_rate = sample_rate
        try:
            info = probe(self.path)
            if info.video is None:
                raise BadInput("no_video", "no video stream")
            if info.audio is None:
                raise BadInput(
                    "no_audio",
                    "no audio stream: separation and localization need the video's sound",
                )
            self._reader = FrameReader(self.path, threads=threads)
            self.native_audio = decode_audio(self.path, info.audio)
        except BadInput as exc:
            raise VideoInputError(f"{self.path}: {exc}") from None
        if self.native_audio.size == 0:
            raise VideoInputError(f"{self.path}: the audio stream holds no samples")
        self.native_rate = info.audio.sample_rate
        self.audio = resample(self.native_audio, self.native_rate, sample_rate)
        first = self._read([0])[0]
        self.frame_size: tuple[int, int] = (int(first.shape[0]), int(first.shape[1]))
        self.duration_s = self._reader.end_s
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def num_frames(self) -> int:
        """Frames in the video stream."""
        return len(self._reader)

    def frame_index(self, times_s: np.ndarray) -> np.ndarray:
        """Index of the frame shown nearest to each time, (N,) int64."""
        return self._reader.nearest_frames(np.asarray(times_s, dtype=np.float64))

    def frames_at(self, times_s: Sequence[float] | np.ndarray, batch: int = 16
                  ) -> Iterator[np.ndarray]:
        """Decode the frames nearest to each time, in order: (H, W, 3) uint8 RGB each."""
        indices = self.frame_index(np.asarray(times_s))
        for begin in range(0, len(indices), batch):
            yield from self._read(indices[begin:begin + batch].tolist())

    def _read(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Frames by index, (H, W, 3) uint8 each; a frame that fails to decode is the
        file's fault, named with its path."""
        try:
            return list(self._reader.read(indices, batch=max(1, len(indices))))
        except BadInput as exc:
            raise VideoInputError(f"{self.path}: {exc}") from None

    def _frames(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Frames by index through a small cache (consecutive windows share frames)."""
        missing = sorted({i for i in indices if i not in self._cache})
        for index, frame in zip(missing, self._read(missing)):
            self._cache[index] = frame
        frames = [self._cache[i] for i in indices]
        for index in indices:
            self._cache.move_to_end(index)
        while len(self._cache) > max(_FRAME_CACHE, len(indices)):
            self._cache.popitem(last=False)
        return frames

    def clip_frame_numbers(self, centre_sample: int, spec: ClipSpec) -> list[int]:
        """Video frame indices of the clip centred on audio sample `centre_sample` (see
        module doc), in time order."""
        grid_frames = max(1, math.ceil(self.duration_s * spec.fps))
        grid = clip_frame_indices(centre_sample, grid_frames, spec)
        times = np.asarray(grid, dtype=np.float64) / spec.fps
        return [int(i) for i in self.frame_index(times)]

    def clip_frames(self, centre_sample: int, spec: ClipSpec) -> list[np.ndarray]:
        """The frames of the clip centred on audio sample `centre_sample` (see module doc)."""
        return self._frames(self.clip_frame_numbers(centre_sample, spec))

    def frames_by_index(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Video frames by index, (H, W, 3) uint8 RGB each (through the frame cache)."""
        return self._frames(list(indices))

    @staticmethod
    def region_crops(frame: np.ndarray, spec: ClipSpec,
                     boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
        """One frame's crops per region as `region_frames` makes them: (N, 3, S, S) uint8
        (every frame of a clip is resized and cropped on its own)."""
        return np.stack([augment_frames([resize_for_storage(frame[y0:y1, x0:x1])], spec,
                                        None)[:, 0] for x0, y0, x1, y1 in boxes])

    def model_frames(self, centre_sample: int, spec: ClipSpec) -> np.ndarray:
        """Whole frames for the vision net: (3, num_frames, S, W') uint8, short side S =
        `spec.image_size`, aspect ratio kept, no crop."""
        frames = [resize_short_side(resize_for_storage(f), spec.image_size)
                  for f in self.clip_frames(centre_sample, spec)]
        return np.ascontiguousarray(np.stack(frames).transpose(3, 0, 1, 2))

    def region_frames(self, centre_sample: int, spec: ClipSpec,
                      boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
        """Per region (x0, y0, x1, y1) the clip's crops as evaluation prepares them:
        (N, 3, num_frames, S, S) uint8 (short side to S, centre crop)."""
        frames = self.clip_frames(centre_sample, spec)
        crops = [augment_frames([resize_for_storage(f[y0:y1, x0:x1]) for f in frames], spec, None)
                 for x0, y0, x1, y1 in boxes]
        return np.stack(crops)


def model_frame_size(frame_size: tuple[int, int], image_size: int) -> tuple[int, int]:
    """(height, width) of a frame after `resize_short_side(frame, image_size)`."""
    h, w = frame_size
    scale = image_size / min(h, w)
    return max(image_size, round(h * scale)), max(image_size, round(w * scale))


def open_video(video: str | Path | VideoSource, sample_rate: int) -> VideoSource:
    """`video` opened at `sample_rate`, or the given source if it already is at that rate."""
    if not isinstance(video, VideoSource):
        return VideoSource(video, sample_rate)
    if video.sample_rate != sample_rate:
        raise ValueError(f"{video.path}: opened at {video.sample_rate} Hz, the model works at "
                         f"{sample_rate} Hz")
    return video


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
