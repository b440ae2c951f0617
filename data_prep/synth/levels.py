"""Loudness of rendered stems: active RMS, normalisation, fades, mixing without clipping.

FluidSynth stems come out between about -26 and -40 dBFS RMS depending on the instrument, so
every stem is brought to one level measured over its *active* part (frames within 40 dB of
its loudest frame): rests and silent gaps must not make a sparse part louder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FRAME = 2048
GATE_DB = -40.0
PEAK_LIMIT = 0.95


def dbfs(value: float) -> float:
    return float(20.0 * np.log10(max(value, 1e-12)))


def active_rms(audio: np.ndarray, frame: int = FRAME, gate_db: float = GATE_DB) -> float:
    """RMS of a mono signal (T,) over its frames whose RMS is within `gate_db` of the loudest
    frame (the last partial frame is ignored unless the signal is shorter than one frame)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size == 0:
        return 0.0
    if audio.size < frame:
        frames = audio[None, :]
    else:
        frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    power = np.mean(frames**2, axis=1)
    if power.max() <= 0:
        return 0.0
    active = power >= power.max() * 10.0 ** (gate_db / 10.0)
    return float(np.sqrt(np.mean(power[active])))


def normalise(audio: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale (T,) so its active RMS is `target_dbfs`; a silent input is an error."""
    level = active_rms(audio)
    if level <= 0:
        raise ValueError("cannot normalise a silent stem (did the part have no notes?)")
    return (np.asarray(audio, np.float64) * (10.0 ** (target_dbfs / 20.0) / level)).astype(
        np.float32
    )


def mix_stems(
    stems: Sequence[np.ndarray], peak: float = PEAK_LIMIT
) -> tuple[np.ndarray, np.ndarray]:
    """Sum stems (each (T,)) into a mixture that does not clip.

    Returns (scaled stems (P, T) float32, mixture (T,) float32). If the mixture or a stem
    would peak above `peak`, all stems are scaled by one common factor (so their relative
    levels are kept), and the mixture is the sum of the scaled float32 stems.
    """
    stacked = np.stack([np.asarray(s, np.float32) for s in stems])
    highest = max(float(np.abs(stacked.sum(axis=0, dtype=np.float64)).max()),
                  float(np.abs(stacked).max()))
    if highest > peak:
        stacked = (stacked * np.float32(peak / highest)).astype(np.float32)
    mixture = stacked.sum(axis=0, dtype=np.float64).astype(np.float32)
    return stacked, mixture


def span_gate(num_samples: int, spans: Sequence[tuple[int, int]], fade: int) -> np.ndarray:
    """Gain (T,) float32: 1 inside each [start, end) sample span, a linear fade to 0 over its
    last `fade` samples, 0 elsewhere (silence between playing spans)."""
    gate = np.zeros(num_samples, np.float32)
    for start, end in spans:
        start, end = max(0, start), min(num_samples, end)
        if end <= start:
            continue
        gate[start:end] = 1.0
        length = min(fade, end - start)
        gate[end - length:end] = np.linspace(1.0, 0.0, length, endpoint=False, dtype=np.float32)
    return gate
