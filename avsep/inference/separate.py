"""Separating a user's video: one sound per region, at the input's sample rate, plus the
residual.

The audio (resampled to the model's 11025 Hz) is cut into overlapping windows of the
model's clip length (`avsep.inference.windows`); each window is separated with, per region,
the region's crops of the clip's frames around the window centre (the frames training and
evaluation use: `num_frames` frames `frame_stride` apart at 8 fps, short side to the image
size and centre-cropped) or, for class-conditioned models (MHU-Net), the regions' classes.
The windows' estimates are joined by normalised overlap-add, resampled back to the input's
rate with the preparation resampler, and the residual is the input's mixture minus the sum
of the estimates (it holds whatever the regions did not claim, including everything above
the model's 5.5 kHz band).
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from avsep.classes import class_index
from avsep.inference.frame_features import (
    FrameFeatureCache,
    channels_last_audio_net,
    separate_windows,
    supports_frame_reuse,
)
from avsep.inference.loading import InferenceModel, prepare_model
from avsep.inference.localize import localize_video
from avsep.inference.regions import (
    Region,
    RegionError,
    check_regions,
    equal_width_regions,
    parse_regions,
    regions_from_heatmap,
    urmp_instruments,
)
from avsep.inference.video import VideoSource, check_batch_size, open_video
from avsep.inference.windows import OverlapAdd, WindowPlan
from avsep.media import resample

# Every name `Separation.write` gives a file (patterns), so that a later run into the same
# folder recognises them as outputs (`avsep.outputs`).
SEPARATION_OUTPUTS = ("region_*.wav", "residual.wav", "separation.json")


@dataclass
class Separation:
    """The separated sounds of one video.

    Attributes:
        sources: (N, T) float32, one per region, at `sample_rate` (the input's rate).
        residual: (T,) mixture minus the sum of the sources.
        mixture: (T,) the input's audio (mono).
        sample_rate: the input's audio rate.
        model_sources: (N, T_model) the estimates at the model's rate, before resampling.
        model_sample_rate: the model's rate (11025).
        regions: the regions, in source order.
        region_source: how the regions were chosen ("given", "players", "urmp name",
            "heatmap", "classes").
        window_samples, hop_samples: the analysis windows.
        video: the video's path.
    """

    sources: np.ndarray
    residual: np.ndarray
    mixture: np.ndarray
    sample_rate: int
    model_sources: np.ndarray
    model_sample_rate: int
    regions: list[Region]
    region_source: str
    window_samples: int
    hop_samples: int
    video: str

    def names(self) -> list[str]:
        """File stems, one per source: region_1, region_2_vc, ..."""
        return [f"region_{i}" + (f"_{r.label}" if r.label else "")
                for i, r in enumerate(self.regions, start=1)]

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write one float WAV per source and residual.wav (input rate), and separation.json.

        Returns:
            the WAV paths, sources first, residual last.
        """

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, audio in [*zip(self.names(), self.sources), ("residual", self.residual)]:
            path = out_dir / f"{name}.wav"
            soundfile.write(str(path), audio, self.sample_rate, subtype="FLOAT")
            paths.append(path)
        meta = {
            "video": self.video, "sample_rate": self.sample_rate,
            "duration_s": len(self.mixture) / self.sample_rate,
            "model_sample_rate": self.model_sample_rate, "region_source": self.region_source,
            "regions": [r.as_dict() for r in self.regions],
            "files": [p.name for p in paths], "window_samples": self.window_samples,
            "hop_samples": self.hop_samples,
        }
        (out_dir / "separation.json").write_text(json.dumps(meta, indent=2) + "\n")
        return paths


def resolve_regions(
    regions: str | list[Region],
    source: VideoSource,
    runner: InferenceModel,
    players: int | None = None,
    classes: list[str] | None = None,
    progress: bool = False,
) -> tuple[list[Region], str]:
    """The regions to separate and how they were chosen.

    `regions` is a list, a "x0,y0,x1,y1;..." string, or "auto": `players` equal-width
    columns if given; else the players of a URMP-style name `Vid_NN_Title_c1_c2.mp4`; else
    one column per class for a class-conditioned model given `classes`; else the loud parts
    of the time-averaged heatmap (Sound of Pixels models).
    """
    frame_size = source.frame_size
    if isinstance(regions, str) and regions.strip().lower() != "auto":
        regions = parse_regions(regions)
    if not isinstance(regions, str):
        regions = list(regions)
        check_regions(regions, frame_size)
        return regions, "given"
    codes = urmp_instruments(source.path)
    if players is not None:
        labels = codes if codes and len(codes) == players else None
        return equal_width_regions(frame_size, players, labels), "players"
    if codes:
        return equal_width_regions(frame_size, len(codes), codes), "urmp name"
    if runner.model.condition_kind == "classes":
        if not classes:
            raise RegionError(
                "a class-conditioned model needs --classes (one instrument per region) or "
                "--players to place regions automatically"
            )
        return equal_width_regions(frame_size, len(classes), list(classes)), "classes"

    localization = localize_video(source, runner, fps=2.0, progress=progress)
    found = regions_from_heatmap(localization.mean_heatmap(), localization.model_frame_size,
                                 frame_size)
    return found, "heatmap"


def class_condition(regions: list[Region], classes: list[str] | None) -> torch.Tensor:
    """(N,) class indices for a class-conditioned model: `classes`, else region labels."""
    codes = list(classes) if classes else [r.label for r in regions]
    if not classes and not all(codes):
        raise RegionError(
            "a class-conditioned model (MHU-Net) needs the instrument of every region: give "
            "--classes with one code or class name per region (e.g. --classes vn,vc)"
        )
    if len(codes) != len(regions):
        raise RegionError(
            f"--classes gives {len(codes)} instrument(s) for {len(regions)} region(s); "
            "give one per region"
        )
    return torch.tensor([class_index(code) for code in codes], dtype=torch.long)


def _window_frames(source: VideoSource, centres: list[int], spec, boxes, device
                   ) -> torch.Tensor:
    """The regions' frames of the windows centred at `centres` -> uint8 (W, N, 3, T, S, S)."""
    frames = np.stack([source.region_frames(c, spec, boxes) for c in centres])
    return torch.from_numpy(frames).to(device)


def separate_video(
    video: str | Path | VideoSource,
    model,
    *,
    regions: str | list[Region] = "auto",
    players: int | None = None,
    classes: list[str] | None = None,
    hop: int | None = None,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    progress: bool = True,
    reuse_frames: bool = True,
) -> Separation:
    """Separate the sound of each region of `video`.

    Args:
        video: a video file (or an opened `VideoSource`).
        model: a checkpoint path, a separator or an `InferenceModel`.
        regions: "auto", a "x0,y0,x1,y1;..." string or a list of `Region`s.
        players: with "auto": that many equal-width columns.
        classes: instrument codes or Solos class names per region (required for
            class-conditioned models unless the file name is URMP-style).
        hop: samples between windows (default: half a window).
        batch_size: windows per model call.
        device: "auto", "cpu", "cuda".
        progress: show progress bars.
        reuse_frames: for Sound of Pixels models, compute each frame's visual features
            once for all the windows that show it, and on the CPU run the U-Net in
            channels-last layout (`avsep.inference.frame_features`; the same output to
            float rounding); False runs every window's frames through the vision net, in
            the model's own layout.

    Raises:
        VideoInputError: unreadable video or no audio stream.
        RegionError: bad regions or missing classes.
    """

    runner = prepare_model(model, device)
    check_batch_size(batch_size)
    rate, spec = runner.model.sample_rate, runner.spec
    source = open_video(video, rate)
    chosen, how = resolve_regions(regions, source, runner, players, classes, progress)
    by_class = runner.model.condition_kind == "classes"
    if by_class:
        condition = class_condition(chosen, classes).to(runner.device)
    elif classes and len(classes) != len(chosen):
        raise RegionError(f"--classes gives {len(classes)} instrument(s) for {len(chosen)} "
                          "region(s); give one per region")
    if classes:
        chosen = [Region(*r.box, label=c) for r, c in zip(chosen, classes)]
    plan = WindowPlan.cover(len(source.audio), spec.clip_samples, hop)
    joined = OverlapAdd(plan, len(chosen))
    boxes = [r.box for r in chosen]
    model = runner.model
    features = (FrameFeatureCache(model, source, spec, boxes, runner.device)
                if reuse_frames and not by_class and supports_frame_reuse(model) else None)
    layout = (channels_last_audio_net(features.model)
              if features is not None and runner.device.type == "cpu" else nullcontext())
    with layout, tqdm(total=len(plan), desc="separate", unit="window",
                      disable=not progress) as bar:
        for first in range(0, len(plan), batch_size):
            indices = list(range(first, min(first + batch_size, len(plan))))
            mix = torch.from_numpy(np.stack([plan.extract(source.audio, i) for i in indices]))
            mix = mix.to(runner.device)
            centres = [plan.centre(i) for i in indices]
            if features is not None:
                estimates = separate_windows(features.model, mix, features.pooled(centres))
            else:
                batch_condition = (condition.expand(len(indices), -1) if by_class else
                                   _window_frames(source, centres, spec, boxes, runner.device))
                with torch.no_grad():
                    estimates = runner.model.separate(mix, batch_condition)
            for index, estimate in zip(indices, estimates.float().cpu().numpy()):
                joined.add(index, estimate)
            bar.update(len(indices))
    model_sources = joined.result()
    sources = _at_native_rate(model_sources, rate, source)
    return Separation(
        sources=sources, residual=source.native_audio - sources.sum(axis=0),
        mixture=source.native_audio, sample_rate=source.native_rate,
        model_sources=model_sources, model_sample_rate=rate, regions=chosen,
        region_source=how, window_samples=plan.window, hop_samples=plan.hop,
        video=str(source.path),
    )


def _at_native_rate(model_sources: np.ndarray, rate: int, source: VideoSource) -> np.ndarray:
    """(N, T) sources at the model's `rate` -> (N, T_native) at the video's own rate and
    length."""
    native = len(source.native_audio)
    return np.stack([_fit(resample(s, rate, source.native_rate), native) for s in model_sources])


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad the end of a resampled track to the input's length (they differ by
    the resampler's rounding, a few samples)."""
    if len(audio) >= length:
        return audio[:length]
    if length - len(audio) > math.ceil(length * 1e-3) + 2:
        raise ValueError(f"resampled track is {length - len(audio)} samples too short")
    return np.pad(audio, (0, length - len(audio)))
