"""Test helper: audio-visual alignment of prepared samples (do sounds start when things move?).

Musicians move when notes start (bow changes, breaths, fingers). For each stored frame we
measure how much the picture changed since the previous frame, and for the same interval
how much new sound started (spectral flux); the lag that best lines the two up, summed over
many samples, is the audio-visual offset in frames. Well-prepared data gives 0; a decoder or
resampler delay, or a wrong frame-selection rule, shows up as a non-zero lag.
"""

from __future__ import annotations

import numpy as np


def motion_energy(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change of each frame from the previous one.

    Args:
        frames: (F, H, W, 3) or (F, H, W) uint8/float.

    Returns:
        (F,) float64; entry i measures change between frames i-1 and i (entry 0 is 0).
    """
    gray = frames.astype(np.float32)
    if gray.ndim == 4:
        gray = gray.mean(axis=3)
    change = np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2))
    return np.concatenate([[0.0], change]).astype(np.float64)


def onset_envelope(
    audio: np.ndarray, sample_rate: int, fps: float, num_frames: int, hop: int = 128
) -> np.ndarray:
    """Spectral flux of `audio` summed over the interval before each frame.

    Args:
        audio: (T,) float, starting at the time of frame 0.
        sample_rate: audio rate (Hz).
        fps: frame rate of the frames the envelope is compared with.
        num_frames: F.
        hop: analysis hop in samples (window = hop, Hann).

    Returns:
        (F,) float64; entry i sums the onsets in ((i-1)/fps, i/fps].
    """
    blocks = audio[: len(audio) // hop * hop].reshape(-1, hop).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(blocks * np.hanning(hop), axis=1))
    flux = np.maximum(np.diff(np.log1p(100.0 * spectrum), axis=0), 0.0).sum(axis=1)
    times = (np.arange(1, len(blocks)) * hop + hop / 2) / sample_rate
    index = np.ceil(times * fps - 1e-9).astype(int)
    envelope = np.zeros(num_frames)
    inside = index < num_frames
    np.add.at(envelope, index[inside], flux[inside])
    return envelope


def _standardize(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-12)


def lag_scores(
    pairs: list[tuple[np.ndarray, np.ndarray]], max_lag: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Summed normalized cross-correlation of (motion, onsets) pairs at each lag.

    A positive lag means motion comes `lag` frames *after* the sound.

    Returns:
        (lags (2L+1,), scores (2L+1,))
    """
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.zeros(len(lags))
    for motion, onsets in pairs:
        motion, onsets = _standardize(motion), _standardize(onsets)
        n = len(motion)
        for j, lag in enumerate(lags):
            if lag >= 0:
                scores[j] += np.dot(motion[lag:], onsets[: n - lag]) / n
            else:
                scores[j] += np.dot(motion[:lag], onsets[-lag:]) / n
    return lags, scores


def best_lag(pairs: list[tuple[np.ndarray, np.ndarray]], max_lag: int = 4) -> int:
    """The lag (frames) with the highest summed correlation; see `lag_scores`."""
    lags, scores = lag_scores(pairs, max_lag)
    return int(lags[np.argmax(scores)])
