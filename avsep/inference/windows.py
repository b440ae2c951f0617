"""Overlapping analysis windows over a signal of any length, and overlap-add of their outputs.

Models see fixed windows (65535 samples, ~5.94 s at 11025 Hz, as in training). A longer
signal is cut into windows `hop` samples apart; the last window runs past the end and is
zero-padded. Per-window outputs are put back together with a *normalised* overlap-add:
each window's output is weighted by a taper (sin^2, floored so that it is positive
everywhere) and every sample is divided by the sum of the weights that reached it. The
effective weights therefore sum to one at every sample, for any hop and any length, and a
sample seen by a single window (the start and the end of the signal) is taken unchanged.

The same weights average per-window heatmaps: `stft_frame_spans` says, for output frame
times, which STFT frames of a window lie around each time and how much that window counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avsep.faults import UsageError

# Smallest taper weight: keeps the normalisation well conditioned near window edges.
TAPER_FLOOR = 1e-3


def taper(window_samples: int) -> np.ndarray:
    """Positive crossfade weights (window_samples,) float32: sin^2, floored at TAPER_FLOOR."""
    n = np.arange(window_samples, dtype=np.float64)
    weights = np.sin(np.pi * (n + 0.5) / window_samples) ** 2
    return np.maximum(weights, TAPER_FLOOR).astype(np.float32)


@dataclass(frozen=True)
class WindowPlan:
    """Windows of `window` samples, `hop` apart, covering samples [0, num_samples).

    Attributes:
        num_samples: length of the signal.
        window: samples per window.
        hop: samples between window starts (0 < hop <= window).
        starts: start sample of each window; the last window ends at or after num_samples.
    """

    num_samples: int
    window: int
    hop: int
    starts: tuple[int, ...]

    @classmethod
    def cover(cls, num_samples: int, window: int, hop: int | None = None) -> WindowPlan:
        """The fewest windows `hop` apart (default: half a window) that cover the signal."""
        hop = window // 2 if hop is None else hop
        if window <= 0:
            raise UsageError(f"window must be positive, got {window}")
        if not 0 < hop <= window:
            raise UsageError(f"hop must be in (0, window={window}], got {hop}")
        if num_samples <= 0:
            raise UsageError(f"cannot cut an empty signal ({num_samples} samples) into windows")
        count = 1 if num_samples <= window else math.ceil((num_samples - window) / hop) + 1
        return cls(num_samples, window, hop, tuple(i * hop for i in range(count)))

    def __len__(self) -> int:
        return len(self.starts)

    def centre(self, index: int) -> int:
        """The sample at the centre of window `index` (where its video frames are taken)."""
        return self.starts[index] + self.window // 2

    def extract(self, signal: np.ndarray, index: int) -> np.ndarray:
        """Window `index` of `signal` (..., num_samples) -> (..., window), zero-padded past
        the end."""
        start = self.starts[index]
        piece = signal[..., start:start + self.window]
        missing = self.window - piece.shape[-1]
        if missing == 0:
            return np.ascontiguousarray(piece)
        pad = [(0, 0)] * (piece.ndim - 1) + [(0, missing)]
        return np.pad(piece, pad)


class OverlapAdd:
    """Accumulates per-window outputs (C, window) into (C, num_samples) (normalised OLA).

    Args:
        plan: the windows the outputs belong to.
        channels: C, outputs per window (e.g. one per separated source).
    """

    def __init__(self, plan: WindowPlan, channels: int) -> None:
        self.plan = plan
        self.weights = taper(plan.window)
        total = plan.starts[-1] + plan.window
        self._sum = np.zeros((channels, total), dtype=np.float32)
        self._norm = np.zeros(total, dtype=np.float32)
        self._added = np.zeros(len(plan), dtype=bool)

    def add(self, index: int, chunk: np.ndarray) -> None:
        """Add window `index`'s output, (C, window)."""
        if chunk.shape != (self._sum.shape[0], self.plan.window):
            raise ValueError(
                f"overlap-add: expected a chunk of shape {(self._sum.shape[0], self.plan.window)},"
                f" got {chunk.shape}"
            )
        if self._added[index]:
            raise ValueError(f"overlap-add: window {index} was added twice")
        start = self.plan.starts[index]
        self._sum[:, start:start + self.plan.window] += chunk * self.weights
        self._norm[start:start + self.plan.window] += self.weights
        self._added[index] = True

    def result(self) -> np.ndarray:
        """(C, num_samples) float32 once every window has been added."""
        if not self._added.all():
            missing = np.flatnonzero(~self._added).tolist()
            raise ValueError(f"overlap-add: windows {missing[:5]} were never added")
        n = self.plan.num_samples
        return self._sum[:, :n] / self._norm[:n]


@dataclass(frozen=True)
class FrameSpans:
    """Which STFT frames of one window describe which output frames.

    Output frame `out[i]` (time t) is described by STFT frames [lo[i], hi[i]) of the window,
    those centred within half an output-frame period of t (at least the nearest one), and
    the window counts with `weight[i]` (its taper at t) in the average over windows.
    """

    out: np.ndarray  # (n,) int64 output frame indices
    lo: np.ndarray  # (n,) int64
    hi: np.ndarray  # (n,) int64, > lo
    weight: np.ndarray  # (n,) float32

    def mean_over_frames(self, values: np.ndarray) -> np.ndarray:
        """Average of `values` (..., Tf) over each span -> (n, ...) float32."""
        # Running sums in float64: a quiet span after a loud one is a small difference of
        # two large sums.
        running = np.cumsum(values, axis=-1, dtype=np.float64)
        cumulative = np.concatenate([np.zeros(values.shape[:-1] + (1,)), running], axis=-1)
        sums = cumulative[..., self.hi] - cumulative[..., self.lo]  # (..., n)
        means = sums / (self.hi - self.lo)
        return np.moveaxis(means, -1, 0).astype(np.float32)


def stft_frame_spans(
    plan: WindowPlan,
    index: int,
    times_s: np.ndarray,
    sample_rate: int,
    fps: float,
    hop_length: int,
    num_stft_frames: int,
) -> FrameSpans:
    """The spans of window `index`'s STFT frames around each output frame time it covers.

    A centred STFT's frame j is centred on sample j * hop_length of the window. Output frame
    i at `times_s[i]` is covered by the window if its sample lies inside it; its span is the
    STFT frames centred in [t - 1 / (2 fps), t + 1 / (2 fps)).

    Args:
        plan: the windows.
        index: which window.
        times_s: (N,) output frame times in seconds.
        sample_rate: audio rate of the window's samples.
        fps: output frame rate (sets the span width).
        hop_length: STFT hop in samples.
        num_stft_frames: STFT frames of the window's output (Tf).
    """
    position = np.asarray(times_s, dtype=np.float64) * sample_rate - plan.starts[index]
    inside = (position >= 0) & (position < plan.window)
    out = np.flatnonzero(inside)
    centre = position[out]
    half = sample_rate / (2.0 * fps)
    lo = np.ceil((centre - half) / hop_length).astype(np.int64)
    hi = np.ceil((centre + half) / hop_length).astype(np.int64)
    nearest = np.rint(centre / hop_length).astype(np.int64)
    lo = np.clip(np.minimum(lo, nearest), 0, num_stft_frames - 1)
    hi = np.clip(np.maximum(hi, nearest + 1), lo + 1, num_stft_frames)
    weight = taper(plan.window)[centre.astype(np.int64)]
    return FrameSpans(out=out, lo=lo, hi=hi, weight=weight)


class FrameAverager:
    """Weighted average over windows of per-output-frame maps (N, *shape)."""

    def __init__(self, num_outputs: int, shape: tuple[int, ...]) -> None:
        self._sum = np.zeros((num_outputs, *shape), dtype=np.float64)
        self._weight = np.zeros(num_outputs, dtype=np.float64)

    def add(self, spans: FrameSpans, values: np.ndarray) -> None:
        """Add one window's maps for its output frames, values (n, *shape)."""
        if values.shape[0] != len(spans.out):
            raise ValueError(f"expected {len(spans.out)} maps, got {values.shape[0]}")
        weight = spans.weight.reshape(-1, *([1] * (values.ndim - 1)))
        np.add.at(self._sum, spans.out, values * weight)
        np.add.at(self._weight, spans.out, spans.weight)

    def result(self) -> np.ndarray:
        """(N, *shape) float32; raises if an output frame was never covered."""
        if (self._weight <= 0).any():
            missing = np.flatnonzero(self._weight <= 0)
            raise ValueError(f"output frames {missing[:5].tolist()} are covered by no window")
        weight = self._weight.reshape(-1, *([1] * (self._sum.ndim - 1)))
        return (self._sum / weight).astype(np.float32)
