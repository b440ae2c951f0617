"""The faster separation path gives the plain path's output: each frame's visual features
computed once and the U-Net in channels-last layout (`reuse_frames`, the default)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import avsep
from avsep.geometry import ClipSpec
from avsep.inference import VideoSource, prepare_model, separate_video
from avsep.inference.render import write_mp4

SMALL = ClipSpec(image_size=64)


@pytest.fixture(scope="module")
def trio_video(tmp_path_factory) -> Path:
    """Three players side by side whose colours change over time, a tone each (22 s: 7
    windows, so that windows share frames)."""
    seconds, fps, rate = 22.0, 25.0, 44100
    count = round(seconds * fps)
    frames = np.zeros((count, 64, 240, 3), np.uint8)
    for i in range(count):
        frames[i, 8:56, 10:70] = (255, (7 * i) % 256, 0)
        frames[i, 8:56, 90:150] = (0, 255, (3 * i) % 256)
        frames[i, 8:56, 170:230] = ((5 * i) % 256, 0, 255)
    t = np.arange(round(seconds * rate)) / rate
    mix = sum(0.2 * np.sin(2 * np.pi * f * t) * (t % (k + 2) < 1)
              for k, f in enumerate((330.0, 880.0, 1500.0)))
    path = tmp_path_factory.mktemp("trio") / "trio.mp4"
    return write_mp4(path, iter(frames), fps, mix.astype(np.float32), rate)


def _model(**overrides):
    torch.manual_seed(0)
    return prepare_model(avsep.create_model("avsep_unittest", **overrides), "cpu", spec=SMALL)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_reusing_frame_features_gives_the_plain_output(trio_video, batch_size):
    runner = _model()
    source = VideoSource(trio_video, runner.model.sample_rate)
    plain = separate_video(source, runner, players=3, batch_size=batch_size, progress=False,
                           reuse_frames=False)
    reused = separate_video(source, runner, players=3, batch_size=batch_size, progress=False)
    assert len(plain.regions) == 3
    np.testing.assert_allclose(reused.model_sources, plain.model_sources, rtol=0, atol=1e-6)
    np.testing.assert_allclose(reused.sources, plain.sources, rtol=0, atol=1e-6)


def test_each_frame_goes_through_the_vision_net_once(trio_video):
    from avsep.inference.frame_features import FrameFeatureCache
    from avsep.inference.windows import WindowPlan

    runner = _model()
    source = VideoSource(trio_video, runner.model.sample_rate)
    plan = WindowPlan.cover(len(source.audio), SMALL.clip_samples)
    boxes = [(0, 0, 80, 64), (80, 0, 160, 64)]
    cache = FrameFeatureCache(runner.model, source, SMALL, boxes, runner.device)
    shown = set()
    for first in range(0, len(plan), 2):
        centres = [plan.centre(i) for i in range(first, min(first + 2, len(plan)))]
        pooled = cache.pooled(centres)
        assert pooled.shape == (len(centres), 2, runner.model.config.num_channels)
        shown |= {f for c in centres for f in source.clip_frame_numbers(c, SMALL)}
    assert cache.computed == len(shown) < SMALL.num_frames * len(plan)


def test_the_unet_layout_is_restored_after_separating(trio_video):
    runner = _model()
    separate_video(trio_video, runner, players=2, progress=False)
    weights = [p for p in runner.model.audio_net.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous() for p in weights)
