"""The changes of look a training clip may get (scale, grayscale, blur) and the learning-rate
schedule in shares of the time budget."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from avsep.checkpoint import load_checkpoint
from avsep.config import ConfigError
from avsep.geometry import ClipSpec, augment_frames, pad_to
from avsep.run_config import load_run_config
from avsep.training import train
from avsep.training.optim import budget_decay_due
from avsep.training.tracking import read_metrics

PLAIN = ClipSpec(image_size=32, resize_short_side=36)


def frame(seed: int = 0, shape: tuple[int, int] = (40, 50)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def hand_cut(resized: np.ndarray, rng: random.Random, size: int = 32) -> np.ndarray:
    """The crop and flip of an already resized (H, W, 3) frame, drawn in the order
    augment_frames draws them -> (S, S, 3)."""
    h, w = resized.shape[:2]
    top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    crop = resized[top:top + size, left:left + size]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def hand_resize(image: np.ndarray, short: int) -> np.ndarray:
    """Short side to `short`, bicubic, by the aspect ratio."""
    h, w = image.shape[:2]
    scale = short / min(h, w)
    return cv2.resize(image, (max(short, round(w * scale)), max(short, round(h * scale))),
                      interpolation=cv2.INTER_CUBIC)


def test_without_the_options_a_training_crop_is_cut_as_before():
    image = frame()
    got = augment_frames([image], PLAIN, random.Random(7))[:, 0].transpose(1, 2, 0)
    assert np.array_equal(got, hand_cut(hand_resize(image, 36), random.Random(7)))


def test_scale_jitter_zooms_by_the_drawn_factor_and_pads_with_the_mean_colour():
    image = frame(1)
    spec = ClipSpec(image_size=32, resize_short_side=36, scale_jitter=1.0)
    shorts = set()
    for seed in range(8):
        rng = random.Random(seed)
        short = max(1, round(36 * 2 ** rng.uniform(-1.0, 1.0)))
        shorts.add(short >= 32)
        resized = hand_resize(image, short)
        if short < 32:  # zoomed out: the whole frame centred on its mean colour
            h, w = resized.shape[:2]
            canvas = np.empty((max(h, 32), max(w, 32), 3), np.uint8)
            canvas[:] = resized.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
            top, left = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
            canvas[top:top + h, left:left + w] = resized
            resized = canvas
        got = augment_frames([image], spec, random.Random(seed))[:, 0].transpose(1, 2, 0)
        assert np.array_equal(got, hand_cut(resized, rng)), seed
    assert shorts == {True, False}  # both zooming in and out were checked
    # Evaluation never zooms.
    assert np.array_equal(augment_frames([image], spec, None), augment_frames([image], PLAIN, None))


def test_pad_to_centres_the_image_on_its_mean_colour():
    image = np.zeros((2, 4, 3), np.uint8)
    image[:, :2] = 200  # mean 100
    padded = pad_to(image, 4)
    assert padded.shape == (4, 4, 3)
    assert (padded[0] == 100).all() and (padded[3] == 100).all()
    assert np.array_equal(padded[1:3], image)
    assert pad_to(image, 2) is image


def test_grayscale_removes_colours_with_the_luma_weights_for_every_frame_of_the_clip():
    red = np.zeros((40, 50, 3), np.uint8)
    red[..., 0] = 200
    spec = ClipSpec(image_size=32, resize_short_side=36, grayscale=1.0)
    got = augment_frames([red, red], spec, random.Random(0))
    assert (got[0] == got[1]).all() and (got[1] == got[2]).all()
    assert abs(int(got[0, 0, 16, 16]) - round(0.299 * 200)) <= 1  # ITU-R 601 luma
    assert np.array_equal(got[:, 0], got[:, 1])
    never = ClipSpec(image_size=32, resize_short_side=36, grayscale=0.0)
    assert (augment_frames([red], never, random.Random(0))[0] == 200).all()


def test_blur_smooths_edges_and_keeps_flat_regions():
    edge = np.zeros((40, 50, 3), np.uint8)
    edge[:, 25:] = 255
    spec = ClipSpec(image_size=32, resize_short_side=40, blur=1.0)
    plain = ClipSpec(image_size=32, resize_short_side=40)
    sharp = augment_frames([edge], plain, random.Random(3)).astype(int)
    soft = augment_frames([edge], spec, random.Random(3)).astype(int)

    def variation(x: np.ndarray) -> int:  # a monotone edge's total variation is fixed;
        return int(np.square(np.diff(x, axis=-1)).sum())  # its energy drops when spread

    assert variation(soft) < variation(sharp)
    flat = np.full((40, 50, 3), 90, np.uint8)
    assert (augment_frames([flat], spec, random.Random(3)) == 90).all()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("scale_jitter", -0.1, "scale_jitter must be >= 0"),
    ("grayscale", 1.5, "grayscale is a probability"),
    ("blur", -0.2, "blur is a probability"),
])
def test_bad_look_options_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        ClipSpec(**{field: value})
    with pytest.raises((ConfigError, ValueError), match=message):
        load_run_config(None, [f"data.clip.{field}={value}"])


# ------------------------------------------------------------------ the budget schedule
def test_budget_decays_come_in_order_once_each():
    config = load_run_config(None, ["optim.lr_milestones=[]", "train.max_minutes=10",
                                    "optim.lr_budget_fractions=[0.5, 0.8]"])
    assert [budget_decay_due(config, 0, s) for s in (0.1, 0.49, 0.5, 0.9)] == [
        False, False, True, True]
    assert [budget_decay_due(config, 1, s) for s in (0.6, 0.8)] == [False, True]
    assert not budget_decay_due(config, 2, 0.99)


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.max_minutes=10", "optim.lr_budget_fractions=[0.5]"], "replaces optim.lr_milestones"),
    (["optim.lr_milestones=[]", "optim.lr_budget_fractions=[0.5]"], "max_minutes, which is not"),
    (["optim.lr_milestones=[]", "train.max_minutes=10", "optim.lr_budget_fractions=[0.8, 0.5]"],
     "must increase within"),
    (["optim.lr_milestones=[]", "train.max_minutes=10", "optim.lr_budget_fractions=[1.0]"],
     "must increase within"),
])
def test_bad_budget_schedules_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, overrides)


def test_a_budget_share_already_passed_decays_the_rates_from_the_next_step(
        prepared_tiny, tmp_path):
    from tests.test_train import tiny_config

    # The run is built before its first step, so a tiny share has passed by then: every
    # step trains at the decayed rate, and the checkpoint keeps the milestone for a resume.
    config = tiny_config(prepared_tiny["solos"], "optim.lr_milestones=[]",
                         "train.max_minutes=30", "optim.lr_budget_fractions=[0.000001]",
                         "optim.lr_decay=0.5", "train.epochs=1", "train.steps_per_epoch=3",
                         "train.checkpoint_every=3")
    train(config, tmp_path / "run", progress=False)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")
           if r["kind"] == "train"]
    assert lrs and all(lr == pytest.approx(0.5e-3) for lr in lrs)
    _, state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert dict(state["scheduler"]["milestones"]) == {1: 1}
