"""Plotting helpers for notebooks: heatmap overlays on video frames and spectrograms.

Built on the inference API (`avsep.inference`): give them a `Localization`, a `Separation`
and the video, get matplotlib figures back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from avsep.audio import HOP_LENGTH, N_FFT, STFT
from avsep.inference.localize import Localization
from avsep.inference.render import colormap_lut, display_scale, overlay
from avsep.inference.separate import Separation
from avsep.inference.video import VideoSource, open_video
from avsep.media import resample


def spectrogram_db(audio: np.ndarray, sample_rate: int, n_fft: int = N_FFT,
                   hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Magnitude spectrogram in dB re the largest bin, (n_fft // 2 + 1, frames), >= -120."""

    samples = np.asarray(audio, dtype=np.float32)
    if samples.size <= n_fft // 2:
        samples = np.pad(samples, (0, n_fft // 2 + 1 - samples.size))
    mag = STFT(n_fft, hop_length)(torch.from_numpy(samples)[None]).abs()[0].numpy()
    peak = float(mag.max())
    if peak <= 0:
        return np.full(mag.shape, -120.0, dtype=np.float32)
    return np.maximum(20.0 * np.log10(np.maximum(mag, 1e-12) / peak), -120.0)


def plot_spectrogram(ax, audio: np.ndarray, sample_rate: int, title: str | None = None,
                     floor_db: float = -80.0, max_hz: float | None = None):
    """Draw a dB spectrogram of `audio` (T,) on a matplotlib axis; returns the image."""
    db = spectrogram_db(audio, sample_rate)
    duration = len(audio) / sample_rate
    image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=floor_db, vmax=0.0,
                      extent=(0.0, duration, 0.0, sample_rate / 2.0))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if max_hz:
        ax.set_ylim(0.0, max_hz)
    if title:
        ax.set_title(title)
    return image


def heatmap_overlays(localization: Localization, video: str | Path | VideoSource,
                     indices: Sequence[int], colormap: str = "inferno", opacity: float = 0.5,
                     normalize: Literal["global", "frame"] = "global") -> list[np.ndarray]:
    """The frames of output frames `indices` with their heatmaps drawn over them."""
    source = open_video(video, localization.sample_rate)
    lut = colormap_lut(colormap)
    levels = display_scale(localization.heatmaps, normalize)
    images = []
    for index, frame in zip(indices, source.frames_at(localization.times_s[list(indices)])):
        heat = localization.frame_heatmap(index, frame.shape[:2]) / levels[index]
        images.append(overlay(frame, np.clip(heat, 0.0, 1.0), lut, opacity))
    return images


def evenly_spaced(count: int, total: int) -> list[int]:
    """`count` indices spread over range(total), first and last included."""
    return sorted({round(float(i)) for i in np.linspace(0, total - 1, min(count, total))})


def localization_figure(localization: Localization, separation: Separation | None,
                        video: str | Path | VideoSource, indices: Sequence[int] | None = None,
                        colormap: str = "inferno", opacity: float = 0.5,
                        normalize: Literal["global", "frame"] = "global"):
    """Heatmaps of several frames (top row) beside the spectrograms of the separated sources
    and of the mixture (bottom row), with the regions drawn on the first frame.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt  # heavy (~0.5 s); only figures need it

    indices = list(indices) if indices is not None else evenly_spaced(4, len(localization))
    images = heatmap_overlays(localization, video, indices, colormap, opacity, normalize)
    # (title, audio): the sources and the mixture at the model's rate.
    tracks: list[tuple[str, np.ndarray]] = []
    if separation is not None:

        rate = separation.model_sample_rate
        tracks = list(zip(separation.names(), separation.model_sources))
        tracks.append(("mixture", resample(separation.mixture, separation.sample_rate, rate)))
    columns = max(len(images), len(tracks), 1)
    rows = 2 if tracks else 1
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows), squeeze=False)
    for ax, index, image in zip(axes[0], indices, images):
        ax.imshow(image)
        ax.set_title(f"t = {localization.times_s[index]:.2f} s")
        ax.axis("off")
    if separation is not None and images:
        for number, region in enumerate(separation.regions, start=1):
            scale_x = images[0].shape[1] / localization.frame_size[1]
            scale_y = images[0].shape[0] / localization.frame_size[0]
            x0, y0, x1, y1 = region.box
            axes[0][0].add_patch(plt.Rectangle(
                (x0 * scale_x, y0 * scale_y), (x1 - x0) * scale_x, (y1 - y0) * scale_y,
                fill=False, edgecolor="cyan", linewidth=1.5))
            axes[0][0].text(x0 * scale_x + 2, y0 * scale_y + 10, str(number), color="cyan")
    for ax in axes[0][len(images):]:
        ax.axis("off")
    for ax, (name, audio) in zip(axes[1] if tracks else [], tracks):
        plot_spectrogram(ax, audio, rate, title=name)
    for ax in (axes[1][len(tracks):] if tracks else []):
        ax.axis("off")
    fig.tight_layout()
    return fig


def energy_over_time(localization: Localization, ax=None):
    """Total heatmap energy per output frame against time (a quick check of alignment)."""
    import matplotlib.pyplot as plt  # heavy (~0.5 s); only figures need it

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.5))
    ax.plot(localization.times_s, localization.heatmaps.reshape(len(localization), -1).sum(1))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("energy")
    return ax
