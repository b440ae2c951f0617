"""Per-player heatmaps: where in the picture is each player's sound?

The total heatmap (`localize_video`) shows where *any* sound is separated; with several
players it tends to cover them all. Here the sound of each region (a player's crop, as
`avsep separate` takes it) is separated first, and each location's separated sound is then
scored against those estimates (`avsep.models.localization.Localizer.pixel_scores`): positive where region k's
estimate dominates a time-frequency bin, negative where the other regions' do. Map k thus
lights up the locations whose sound is player k's, and stays dark while k is silent. This
is the measure `avsep.evaluation.localization` scores with the reference stems, computed from the
model's own estimates, so it needs no ground truth.

Windows, frames and the averaging to output frames are those of `localize_video`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avsep.inference.loading import prepare_model
from avsep.inference.localize import (
    Localization,
    localization_of,
    localizer_for,
    output_times,
    window_inputs,
)
from avsep.inference.regions import Region
from avsep.inference.separate import resolve_regions
from avsep.inference.video import VideoSource, check_batch_size, open_video
from avsep.inference.windows import FrameAverager, WindowPlan, stft_frame_spans
from avsep.models.localization import Gate


@dataclass
class PlayerLocalization:
    """Per-player heatmaps over time of one video.

    Attributes:
        scores: (N, P, h, w) float32, for output frame i and region p, each location's
            separated energy that is region p's sound net of the other regions' (may be
            negative); frame i is at `heat.times_s[i]`.
        heat: the total heatmaps and geometry (`Localization`), computed in the same pass.
        regions: the P regions, in order.
        region_source: how they were chosen ("given", "players", "urmp name", "heatmap").
    """

    scores: np.ndarray
    heat: Localization
    regions: list[Region]
    region_source: str

    def __len__(self) -> int:
        return len(self.heat)

    def names(self) -> list[str]:
        """One name per region: its number from 1 and its label ("1 vn", "2")."""
        return [f"{i} {r.label}".rstrip() for i, r in enumerate(self.regions, start=1)]

    def save(self, path: str | Path) -> Path:
        """Write scores, total heat and times to an .npz and the metadata to a .json."""
        path = Path(path)
        np.savez_compressed(path, scores=self.scores, heatmaps=self.heat.heatmaps,
                            times_s=self.heat.times_s, window_starts=self.heat.window_starts)
        meta = {**self.heat.metadata(), "regions": [r.as_dict() for r in self.regions],
                "region_source": self.region_source}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        return path


def localize_players(
    video: str | Path | VideoSource,
    model,
    *,
    regions: str | list[Region] = "auto",
    players: int | None = None,
    fps: float = 8.0,
    hop: int | None = None,
    batch_size: int = 2,
    device: str | torch.device = "auto",
    progress: bool = True,
    gate: Gate | None = None,
) -> PlayerLocalization:
    """Per-player heatmaps of `video` (see the module docstring).

    Args:
        video: a video file (or an opened `VideoSource`).
        model: a checkpoint path, a `SoundOfPixels` separator or an `InferenceModel`.
        regions: "auto", a "x0,y0,x1,y1;..." string or a list of `Region`s (as
            `separate_video`): "auto" takes `players` equal-width columns, else the players
            of a URMP-style name, else the loud parts of the total heatmap.
        players: with "auto": that many equal-width columns.
        fps, hop, batch_size, device, progress, gate: as `localize_video`.

    Raises:
        VideoInputError: the video cannot be read or has no audio.
        ValueError: the model cannot localize; RegionError: bad regions.
    """

    runner = prepare_model(model, device)
    localizer = localizer_for(runner.model, gate)
    check_batch_size(batch_size)
    spec, rate = runner.spec, runner.model.sample_rate
    source = open_video(video, rate)
    chosen, how = resolve_regions(regions, source, runner, players, None, progress)
    boxes = [r.box for r in chosen]
    times = output_times(source.duration_s, fps)
    total = max(len(source.audio), math.ceil(source.duration_s * rate))
    plan = WindowPlan.cover(total, spec.clip_samples, hop)
    scores: FrameAverager | None = None
    heat: FrameAverager | None = None
    with tqdm(total=len(plan), desc="localize players", unit="window",
              disable=not progress) as bar:
        for first in range(0, len(plan), batch_size):
            indices = list(range(first, min(first + batch_size, len(plan))))
            mix, frames = window_inputs(runner, source, plan, indices)
            crops = np.stack([source.region_frames(plan.centre(i), spec, boxes) for i in indices])
            with torch.no_grad():
                estimates = runner.model.separate(mix,
                                                  torch.from_numpy(crops).to(runner.device))
                window_scores = localizer.pixel_scores(mix, frames, estimates.float()).cpu().numpy()
                energy = localizer.pixel_energies(mix, frames, per_frame=True).float().cpu().numpy()
            for j, index in enumerate(indices):
                spans = stft_frame_spans(plan, index, times, rate, fps,
                                         runner.model.hop_length, energy.shape[-1])
                if scores is None or heat is None:
                    scores = FrameAverager(len(times), window_scores.shape[1:4])
                    heat = FrameAverager(len(times), energy.shape[1:3])
                scores.add(spans, spans.mean_over_frames(window_scores[j]))
                heat.add(spans, spans.mean_over_frames(energy[j]))
            bar.update(len(indices))
    assert scores is not None and heat is not None  # a plan has at least one window
    total_heat = localization_of(heat.result(), times, fps, source, runner, plan)
    return PlayerLocalization(scores=scores.result(), heat=total_heat, regions=chosen,
                              region_source=how)
