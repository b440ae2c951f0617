"""Sound localization heatmaps: the energy of the sound separated at each visual location.

For every window of the audio (65535 samples, half a window apart by default) the Sound of
Pixels model separates one sound per location of its vision map (`pixel_energies`, one mask
per location) and reports that sound's energy per STFT frame. The heatmap of an output frame
at time t averages, over the STFT frames centred within half a frame period of t, the
energies of the window covering t; where windows overlap their values are averaged with the
overlap-add taper (`avsep.inference.windows`), so every output frame is aligned with the
sound heard at its own time.

Visual input of a window: the clip's frames around the window's centre, exactly as in
training (`num_frames` frames `frame_stride` apart at 8 fps), each whole frame resized so its
short side is the model's image size, with no crop: the vision net accepts any size, so all
players of a wide ensemble shot are seen. The heatmap grid is the vision map (14 x 25 for a
16:9 frame at 224) and is upsampled to the video frame for display (`upsample_heatmap`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from avsep.faults import UsageError
from avsep.inference.loading import InferenceModel, prepare_model
from avsep.inference.video import VideoSource, check_batch_size, model_frame_size, open_video
from avsep.inference.windows import FrameAverager, WindowPlan, stft_frame_spans
from avsep.models import Separator, SoundOfPixels
from avsep.models.localization import Gate, Localizer

# Output stride of the vision nets: vision map cell (i, j) sees model pixels
# [16 i, 16 i + 16) x [16 j, 16 j + 16).
VISION_STRIDE = 16


@dataclass
class Localization:
    """Heatmaps over time of one video.

    Attributes:
        heatmaps: (N, h, w) float32, mean energy per STFT frame of the sound separated at each
            vision-map location, for output frame i at `times_s[i]`.
        times_s: (N,) output frame times, i / fps.
        fps: output frame rate.
        frame_size: (H, W) of the video frames.
        model_frame_size: (Hm, Wm) of the frames the vision net saw.
        sample_rate: the model's audio rate.
        window_samples, hop_samples: the analysis windows.
        window_starts: (num_windows,) start sample of each window.
        duration_s: the video's duration.
        video: the video's path.
    """

    heatmaps: np.ndarray
    times_s: np.ndarray
    fps: float
    frame_size: tuple[int, int]
    model_frame_size: tuple[int, int]
    sample_rate: int
    window_samples: int
    hop_samples: int
    window_starts: np.ndarray
    duration_s: float
    video: str

    def __len__(self) -> int:
        return len(self.times_s)

    def frame_heatmap(self, index: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """Heatmap of output frame `index` upsampled to `size` (H, W) (default: the video's)."""
        return upsample_heatmap(self.heatmaps[index], self.model_frame_size,
                                size or self.frame_size)

    def mean_heatmap(self) -> np.ndarray:
        """(h, w) heatmap averaged over all output frames."""
        return self.heatmaps.mean(axis=0)

    def metadata(self) -> dict:
        """Everything but the arrays, JSON-ready."""
        return {
            "video": self.video, "fps": self.fps, "frames": len(self),
            "duration_s": self.duration_s, "frame_size": list(self.frame_size),
            "model_frame_size": list(self.model_frame_size),
            "heatmap_size": list(self.heatmaps.shape[1:]), "sample_rate": self.sample_rate,
            "window_samples": self.window_samples, "hop_samples": self.hop_samples,
            "windows": len(self.window_starts),
        }

    def save(self, path: str | Path) -> Path:
        """Write heatmaps, times and window starts to an .npz and the metadata to a .json."""
        path = Path(path)
        np.savez_compressed(path, heatmaps=self.heatmaps, times_s=self.times_s,
                            window_starts=self.window_starts)
        path.with_suffix(".json").write_text(json.dumps(self.metadata(), indent=2) + "\n")
        return path


def output_times(duration_s: float, fps: float) -> np.ndarray:
    """Times i / fps of the output frames that start before `duration_s` (at least one)."""
    if fps <= 0:
        raise UsageError(f"fps must be positive, got {fps}")
    count = max(1, math.ceil(duration_s * fps - 1e-9))
    return np.arange(count, dtype=np.float64) / fps


def upsample_heatmap(heatmap: np.ndarray, model_size: tuple[int, int],
                     size: tuple[int, int]) -> np.ndarray:
    """A vision-map heatmap (h, w) -> (H, W) over a frame of `size`, bilinear.

    Each cell is placed over the 16 x 16 block of model pixels it sees (the map covers
    ceil(Hm / 16) * 16 rows, slightly more than the frame); the model frame (Hm, Wm) is then
    scaled to `size`. A map of another stride is stretched over the frame.
    """

    h, w = heatmap.shape
    hm, wm = model_size
    values: np.ndarray = np.ascontiguousarray(heatmap, dtype=np.float32)
    if h == math.ceil(hm / VISION_STRIDE) and w == math.ceil(wm / VISION_STRIDE):
        blocks = cv2.resize(values, (w * VISION_STRIDE, h * VISION_STRIDE),
                            interpolation=cv2.INTER_LINEAR)
        values = blocks[:hm, :wm]
    return cv2.resize(values, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def cell_centres(model_size: tuple[int, int], map_size: tuple[int, int],
                 frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the vision-map cells in frame pixels: (ys (h,), xs (w,))."""
    (hm, wm), (h, w), (height, width) = model_size, map_size, frame_size
    if h == math.ceil(hm / VISION_STRIDE) and w == math.ceil(wm / VISION_STRIDE):
        ys = np.minimum((np.arange(h) + 0.5) * VISION_STRIDE, hm - 0.5) * height / hm
        xs = np.minimum((np.arange(w) + 0.5) * VISION_STRIDE, wm - 0.5) * width / wm
    else:
        ys = (np.arange(h) + 0.5) * height / h
        xs = (np.arange(w) + 0.5) * width / w
    return ys, xs


def localizer_for(model: Separator, gate: Gate | None = None) -> Localizer:
    """The model's `Localizer` (heatmaps per visual location, dimmed as `gate` says).

    Raises:
        UsageError: the model has no per-location visual features to localize with.
    """
    if not isinstance(model, SoundOfPixels):
        raise UsageError(
            f"model {model.model_name!r} cannot localize: localization needs a pixel-wise "
            "model conditioned on frames (Sound of Pixels); class-conditioned models such "
            "as MHU-Net have no visual map"
        )
    return Localizer(model, gate)


def localize_video(
    video: str | Path | VideoSource,
    model,
    *,
    fps: float = 8.0,
    hop: int | None = None,
    batch_size: int = 2,
    device: str | torch.device = "auto",
    progress: bool = True,
    gate: Gate | None = None,
) -> Localization:
    """Heatmaps over time of where each sound of `video` comes from.

    Args:
        video: a video file (or an opened `VideoSource`).
        model: a checkpoint path, a `SoundOfPixels` separator or an `InferenceModel`.
        fps: output frames per second (heatmap i is at time i / fps).
        hop: samples between windows (default: half a window).
        batch_size: windows per model call.
        device: "auto", "cpu", "cuda".
        progress: show a progress bar.
        gate: how a model with an audio tagger dims the heat (`avsep.models.localization.Gate`;
            None: on, at the checkpoint's locality).

    Returns:
        a `Localization` (heatmaps (N, h, w), times (N,), geometry).

    Raises:
        VideoInputError: the video cannot be read or has no audio.
        ValueError: the model cannot localize.
    """

    runner = prepare_model(model, device)
    localizer = localizer_for(runner.model, gate)
    check_batch_size(batch_size)
    spec, rate = runner.spec, runner.model.sample_rate
    source = open_video(video, rate)
    times = output_times(source.duration_s, fps)
    total = max(len(source.audio), math.ceil(source.duration_s * rate))
    plan = WindowPlan.cover(total, spec.clip_samples, hop)
    averager: FrameAverager | None = None
    with tqdm(total=len(plan), desc="localize", unit="window", disable=not progress) as bar:
        for first in range(0, len(plan), batch_size):
            indices = list(range(first, min(first + batch_size, len(plan))))
            energies = _window_energies(runner, localizer, source, plan, indices)
            for index, energy in zip(indices, energies):
                spans = stft_frame_spans(plan, index, times, rate, fps,
                                         runner.model.hop_length, energy.shape[-1])
                if averager is None:
                    averager = FrameAverager(len(times), energy.shape[:2])
                averager.add(spans, spans.mean_over_frames(energy))
            bar.update(len(indices))
    assert averager is not None  # WindowPlan.cover makes at least one window
    return localization_of(averager.result(), times, fps, source, runner, plan)


def localization_of(heatmaps: np.ndarray, times: np.ndarray, fps: float, source: VideoSource,
                    runner: InferenceModel, plan: WindowPlan) -> Localization:
    """A `Localization` of heatmaps (N, h, w) at `times` made from `source`'s windows."""
    return Localization(
        heatmaps=heatmaps, times_s=times, fps=float(fps), frame_size=source.frame_size,
        model_frame_size=model_frame_size(source.frame_size, runner.spec.image_size),
        sample_rate=runner.model.sample_rate, window_samples=plan.window,
        hop_samples=plan.hop, window_starts=np.asarray(plan.starts, dtype=np.int64),
        duration_s=float(source.duration_s), video=str(source.path),
    )


def window_inputs(runner: InferenceModel, source: VideoSource, plan: WindowPlan,
                  indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixtures (B, window) and uint8 whole frames (B, 3, T, Hm, Wm) of some windows."""
    mix = np.stack([plan.extract(source.audio, i) for i in indices])
    frames = np.stack([source.model_frames(plan.centre(i), runner.spec) for i in indices])
    return (torch.from_numpy(mix).to(runner.device),
            torch.from_numpy(frames).to(runner.device))


def _window_energies(runner: InferenceModel, localizer: Localizer, source: VideoSource,
                     plan: WindowPlan, indices: list[int]) -> np.ndarray:
    """Per-location energies (B, h, w, Tf) of some windows."""
    mix, frames = window_inputs(runner, source, plan, indices)
    with torch.no_grad():
        energy = localizer.pixel_energies(mix, frames, per_frame=True)
    return energy.float().cpu().numpy()
