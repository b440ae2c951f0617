"""Training: data stream, mixing, the loop, exact resume, DDP on CPU, config errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from avsep import create_model
from avsep.checkpoint import load_checkpoint
from avsep.cli import main as cli_main
from avsep.data.solos import MixtureGrouper, shard_urls, training_stream, validation_mixtures
from avsep.geometry import ClipSpec, augment_frames, clip_frame_indices
from avsep.mixing import MixSources
from avsep.models.vision import IMAGENET_MEAN, IMAGENET_STD, FrameNormalize
from avsep.run_config import RunConfig, load_run_config
from avsep.training import NonFiniteLossError, train
from avsep.training import loop as loop_module
from avsep.training.data import num_sources_at, segment_bounds
from avsep.training.optim import build_optimizer
from avsep.training.step import MixAndSeparate
from avsep.training.tracking import read_metrics

TINY_OVERRIDES = [
    "model.name=sop",
    "model.kwargs={num_channels: 4, ngf: 8, depth: 4, vision_arch: tiny, pretrained: false}",
    "data.num_workers=0", "data.clip.image_size=32", "data.clip.resize_short_side=36",
    "data.val_mixtures=2",
    "optim.optimizer=adam", "optim.lr_frame=0.001", "optim.weight_decay=0.0",
    "train.batch_size=2", "train.epochs=1", "train.steps_per_epoch=8",
    "train.checkpoint_every=4", "train.log_every=1", "train.wandb=disabled",
]


def tiny_config(shards: Path, *extra: str) -> RunConfig:
    return load_run_config(None, TINY_OVERRIDES + [f"data.path={shards}", *extra])


def train_losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir / "metrics.jsonl")
            if r["kind"] == "train"}


# ----------------------------------------------------------------------------- pure parts
def test_curriculum_and_segments_by_hand():
    config = load_run_config(None, ["train.checkpoint_every=10",
                                    "data.curriculum=[[0, 2], [15, 3], [30, 4]]"])
    assert [num_sources_at(config, s) for s in (0, 14, 15, 29, 30, 99)] == [2, 2, 3, 3, 4, 4]
    # Segments are checkpoint_every long and also break where the source count changes.
    assert segment_bounds(config, 0) == (0, 10)
    assert segment_bounds(config, 12) == (10, 15)
    assert segment_bounds(config, 15) == (15, 20)
    assert segment_bounds(config, 21) == (20, 30)
    assert segment_bounds(config, 30) == (30, 40)


def test_mix_sources_sop_and_peak():
    g = torch.Generator().manual_seed(0)
    sources = torch.randn(3, 2, 1000, generator=g) * 0.3
    mixer = MixSources("sop").train()
    mix, scaled = mixer(sources, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(mix, scaled.sum(1))
    gains = (scaled * 2 / sources.clamp(-1, 1)).median(dim=-1).values  # undo the /N
    assert ((gains >= 0.5) & (gains < 1.5)).all()
    _, scaled_eval = mixer.eval()(sources)
    assert torch.allclose(scaled_eval, sources.clamp(-1, 1) / 2)
    _, peaked = MixSources("peak")(torch.cat([sources, torch.zeros(3, 1, 1000)], dim=1))
    assert torch.allclose(peaked[:, :2].abs().amax(-1), torch.full((3, 2), 1 / 3))
    assert (peaked[:, 2] == 0).all()  # a silent source stays silent, no division by zero
    with pytest.raises(ValueError, match=r"\(B, N, T\)"):
        mixer(sources[0])


def test_frame_normalize_matches_torchvision():
    frames = torch.randint(0, 256, (2, 3, 3, 8, 8), dtype=torch.uint8)
    ours = FrameNormalize()(frames)
    for b in range(2):
        for t in range(3):
            ref = TF.normalize(frames[b, :, t].float() / 255, IMAGENET_MEAN, IMAGENET_STD)
            assert torch.allclose(ours[b, :, t], ref, atol=1e-6)


def test_clip_geometry_by_hand():
    spec = ClipSpec()
    # Centre sample 5 s in -> frame 40 at 8 fps; frames 24 apart (3 s), clamped to range.
    assert clip_frame_indices(5 * 11025, 100, spec) == [16, 40, 64]
    assert clip_frame_indices(1 * 11025, 100, spec) == [0, 8, 32]
    assert clip_frame_indices(11 * 11025, 90, spec) == [64, 88, 89]
    image = np.arange(300 * 400 * 3, dtype=np.uint8).reshape(300, 400, 3)
    crop = augment_frames([image, image], ClipSpec(image_size=100), rng=None)
    assert crop.shape == (3, 2, 100, 100)  # (C, T, S, S): centre crop of the resized frame


def test_grouper_keeps_videos_and_classes_apart():
    clips = [{"video_id": f"v{i}", "class_index": i % 3} for i in range(30)]
    clips += [{"video_id": "v0", "class_index": 0}] * 3  # repeats of one video
    groups = list(MixtureGrouper(3)(clips))
    assert len(groups) >= 9
    for group in groups:
        assert len({c["class_index"] for c in group}) == 3
        assert len({c["video_id"] for c in group}) == 3
    with pytest.raises(ValueError, match="different classes"):
        list(MixtureGrouper(2, max_pending=10)([{"video_id": f"v{i}", "class_index": 0}
                                                 for i in range(20)]))


# ----------------------------------------------------------------------------- on tiny shards
def test_stream_batches_have_the_documented_shapes(prepared_tiny):
    spec = ClipSpec(image_size=32, resize_short_side=36)
    urls = shard_urls(prepared_tiny["solos"], "train")
    batch = next(iter(training_stream(urls, spec, batch_size=3, num_sources=2, seed=0,
                                      segment=0)))
    assert batch["audio"].shape == (3, 2, 65535) and batch["audio"].dtype == torch.float32
    assert batch["frames"].shape == (3, 2, 3, 3, 32, 32) and batch["frames"].dtype == torch.uint8
    for classes, keys in zip(batch["class_index"].tolist(), batch["keys"]):
        assert classes[0] != classes[1]
        assert keys[0].split("__")[1] != keys[1].split("__")[1]  # different videos
    assert batch["audio"].abs().amax(-1).min() > 0  # no silent (zero-filled) clip
    again = next(iter(training_stream(urls, spec, 3, 2, seed=0, segment=0)))
    assert again["keys"] == batch["keys"]  # a segment's stream is a function of its seed
    other = next(iter(training_stream(urls, spec, 3, 2, seed=0, segment=1)))
    assert other["keys"] != batch["keys"]


def test_a_few_steps_on_one_batch_lower_the_loss(prepared_tiny):
    torch.manual_seed(0)
    config = tiny_config(prepared_tiny["solos"], "optim.lr_sound=0.003", "optim.lr_frame=0.003",
                         "optim.lr_synthesizer=0.003")
    batch = next(iter(training_stream(shard_urls(prepared_tiny["solos"], "train"),
                                      config.data.clip, 2, 2, seed=0, segment=0)))
    model = create_model(config.model.name, **config.model.kwargs)
    step = MixAndSeparate(model).eval()  # eval: fixed gains, so the target does not move
    model.train()
    optimizer = build_optimizer(model, config)
    losses = []
    for _ in range(40):
        loss = step(model, batch, torch.device("cpu")).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # Measured: ~0.154 -> ~0.085 over 40 steps; a broken gradient path stays near 0.154.
    assert sum(losses[-5:]) / 5 < 0.75 * losses[0], losses


def test_train_resume_matches_an_uninterrupted_run(prepared_tiny, tmp_path):
    config = tiny_config(prepared_tiny["solos"])
    summary = train(config, tmp_path / "a", progress=False)
    assert summary["step"] == 8
    files = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"checkpoint.pt", "best.pt", "config.yaml", "metrics.jsonl", "curves.png"} <= files
    val = [r for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if r["kind"] == "val"][-1]
    assert math.isfinite(val["sdr"]) and math.isfinite(val["sdr_mixture"])

    # Killed after step 6 (mid-segment: the segments are steps 0-3 and 4-7), resumed.
    train(config, tmp_path / "b", progress=False, until_step=6)
    _, state = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert state["step"] == 6
    train(config, tmp_path / "b", progress=False)
    a, b = train_losses(tmp_path / "a"), train_losses(tmp_path / "b")
    assert sorted(a) == sorted(b) == list(range(1, 9))
    for step in (7, 8):  # the first steps after the resume
        assert b[step] == a[step], (step, a[step], b[step])
    assert not (tmp_path / "b" / "config_history.jsonl").exists()  # nothing changed


@pytest.mark.parametrize(("metric", "expected"), [("sdr", (6, -2.0)), ("loss", (8, 0.10))])
def test_best_checkpoint_keeps_the_best_validation_by_the_chosen_metric(
        prepared_tiny, tmp_path, monkeypatch, metric, expected):
    # Scripted validation results on which the two metrics disagree; NaN never wins.
    scripted = iter([(0.30, 1.0), (0.20, 0.5), (0.25, 2.0), (0.10, math.nan)])

    def fake_validate(*args, **kwargs):
        loss, sdr = next(scripted)
        return {"loss": loss, "sdr": sdr, "sir": sdr, "sar": sdr, "sdr_mixture": 0.0,
                "sdr_improvement": sdr, "count": 2, "skipped": 0}

    monkeypatch.setattr(loop_module, "validate", fake_validate)
    config = tiny_config(prepared_tiny["solos"], "train.epochs=4", "train.steps_per_epoch=2",
                         "train.checkpoint_every=2", f"train.best_metric={metric}")
    train(config, tmp_path, progress=False)
    _, state = load_checkpoint(tmp_path / "best.pt")
    # SDR: step 6 (2.0 dB; step 8's NaN does not count). Loss: step 8 (0.10).
    assert state["best_metric"] == metric
    assert (state["step"], state["best_val"]) == expected


def test_non_finite_loss_stops_with_the_step(prepared_tiny, tmp_path, monkeypatch):
    original = MixAndSeparate.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls["n"] += 1
        if self.training and calls["n"] == 3:
            out.objective.loss = out.objective.loss * float("nan")
        return out

    monkeypatch.setattr(MixAndSeparate, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        train(tiny_config(prepared_tiny["solos"]), tmp_path, progress=False)


def test_bad_set_key_is_named(tmp_path, capsys):
    code = cli_main(["train", "--dataset", "solos", "--data", str(tmp_path), "--config", "demo",
                     "--set", "train.bach_size=4", "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert "train.bach_size" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_missing_shards_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no train shards"):
        shard_urls(tmp_path, "train")


def test_validation_set_is_fixed(prepared_tiny):
    urls = shard_urls(prepared_tiny["solos"], "val")
    spec = ClipSpec(image_size=32, resize_short_side=36)
    first = validation_mixtures(urls, spec, num_sources=2, count=2, seed=3)
    second = validation_mixtures(urls, spec, num_sources=2, count=2, seed=3)
    assert first["keys"] == second["keys"]
    assert torch.equal(first["audio"], second["audio"])


def test_torchrun_two_processes_on_cpu(prepared_tiny, tmp_path):
    run_dir = tmp_path / "ddp"
    overrides = [x for o in TINY_OVERRIDES + ["train.steps_per_epoch=4"] for x in ("--set", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "avsep", "train", "--dataset", "solos",
         "--data", str(prepared_tiny["solos"]), "--config", "demo", *overrides,
         "--run-dir", str(run_dir)],
        check=False, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in run_dir.glob("*.pt")) == ["best.pt", "checkpoint.pt"]
    _, state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["step"] == 4
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]  # rank 0 only
    assert json.loads(json.dumps(state["config"]))["train"]["batch_size"] == 2


def test_init_from_starts_a_run_from_given_weights(prepared_tiny, tmp_path):
    from avsep.checkpoint import save_checkpoint

    config = tiny_config(prepared_tiny["solos"])
    source = create_model(config.model.name, **config.model.kwargs)
    save_checkpoint(tmp_path / "imported.pt", source, step=0, config={})
    loaded, _ = load_checkpoint(tmp_path / "imported.pt")
    # One step at learning rate 0: the parameters must still be the imported ones.
    started = tiny_config(prepared_tiny["solos"], f"train.init_from={tmp_path / 'imported.pt'}",
                          "train.steps_per_epoch=1", "optim.lr_sound=0.0", "optim.lr_frame=0.0",
                          "optim.lr_synthesizer=0.0")
    train(started, tmp_path / "run", progress=False)
    model, _ = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    for name, value in loaded.named_parameters():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    wrong = tiny_config(prepared_tiny["solos"], f"train.init_from={tmp_path / 'imported.pt'}",
                        "model.kwargs.ngf=16")
    with pytest.raises(ValueError, match="does not fit"):
        train(wrong, tmp_path / "run2", progress=False)


def test_validation_counts_samples_shorter_than_a_clip(prepared_tiny):
    import webdataset as wds

    urls = shard_urls(prepared_tiny["solos"], "val")
    lengths = sorted(json.loads(s["json"])["num_samples"]
                     for s in wds.WebDataset(urls, shardshuffle=False))
    clip = lengths[len(lengths) // 2]  # about half the samples are shorter
    spec = ClipSpec(image_size=32, resize_short_side=36, clip_samples=clip)
    try:
        val = validation_mixtures(urls, spec, num_sources=2, count=1, seed=0)
    except ValueError as exc:  # too few long clips left for a mixture: the message counts them
        assert f"{sum(n < clip for n in lengths)} of {len(lengths)} samples are shorter" in str(exc)
    else:
        assert (val["too_short"], val["samples"]) == (sum(n < clip for n in lengths), len(lengths))
        assert val["too_short"] > 0


def test_shards_without_val_say_what_is_missing_and_what_to_do(prepared_tiny, tmp_path, capsys):
    import shutil

    shutil.copytree(prepared_tiny["solos"] / "train", tmp_path / "shards" / "train")
    code = cli_main(["train", "--dataset", "solos", "--data", str(tmp_path / "shards"),
                     "--run-dir", str(tmp_path / "run"),
                     *[arg for item in TINY_OVERRIDES for arg in ("--set", item)]])
    err = capsys.readouterr().err
    assert code == 2
    assert "no validation shards" in err and "--val-fraction" in err


def test_fixed_mixtures_are_the_same_set_in_every_segment_and_resume_exactly(
        prepared_tiny, tmp_path, monkeypatch):
    # Every batch must come from the one fixed set (built once from the training shards),
    # across data segments (4 steps each) and across a resume.
    seen: list[list[str]] = []
    real_step = loop_module._Run._optimizer_step

    def spy(self, batch):
        seen.append([k for keys in batch["keys"] for k in keys])
        return real_step(self, batch)

    monkeypatch.setattr(loop_module._Run, "_optimizer_step", spy)
    config = tiny_config(prepared_tiny["solos"], "data.fixed_mixtures=3")
    train(config, tmp_path / "a", progress=False)
    fixed = validation_mixtures(shard_urls(prepared_tiny["solos"], "train"),
                                config.data.clip, 2, 3, seed=config.train.seed)
    allowed = {k for keys in fixed["keys"] for k in keys}
    assert len(seen) == 8 and all(set(keys) <= allowed for keys in seen)
    # 3 mixtures, batch 2: one batch per pass, each pass a fresh permutation.
    assert len({tuple(keys) for keys in seen}) > 1

    train(config, tmp_path / "b", progress=False, until_step=6)
    train(config, tmp_path / "b", progress=False)
    assert train_losses(tmp_path / "a") == train_losses(tmp_path / "b")


def test_fixed_mixture_batches_cover_the_set_once_per_pass():
    from avsep.data.solos import fixed_mixture_batches

    mixtures = {"audio": torch.arange(5.0)[:, None, None].expand(5, 2, 3),
                "frames": torch.zeros(5, 2, 3, 1, 4, 4, dtype=torch.uint8),
                "class_index": torch.arange(10).reshape(5, 2),
                "keys": [[f"a{i}", f"b{i}"] for i in range(5)]}
    batches = fixed_mixture_batches(mixtures, batch_size=2, seed=0)
    first_pass = [next(batches) for _ in range(2)]  # 5 // 2 batches per pass
    rows = [int(v) for b in first_pass for v in b["audio"][:, 0, 0]]
    assert len(set(rows)) == 4  # no repeats inside a pass
    for b in first_pass:
        for audio, classes, keys in zip(b["audio"], b["class_index"], b["keys"]):
            i = int(audio[0, 0])
            assert classes.tolist() == [2 * i, 2 * i + 1] and keys == [f"a{i}", f"b{i}"]
    with pytest.raises(ValueError, match="cannot fill a batch of 6"):
        next(fixed_mixture_batches(mixtures, batch_size=6, seed=0))


def test_mix_and_separate_gives_the_class_indices_to_a_model_that_uses_labels():
    batch = {"audio": torch.rand(2, 2, 64) - 0.5,
             "frames": torch.zeros(2, 2, 3, 1, 8, 8, dtype=torch.uint8),
             "class_index": torch.tensor([[0, 4], [7, 2]])}
    seen = {}

    def model(mix, sources, condition, **extra):
        seen.update(extra)

    wants = type("M", (), {"condition_kind": "frames", "uses_labels": True,
                           "draws_noise": False})()
    MixAndSeparate(wants).train()(model, batch, torch.device("cpu"))
    assert torch.equal(seen["labels"], batch["class_index"])
    seen.clear()
    MixAndSeparate(type("M", (), {"condition_kind": "frames", "uses_labels": False,
                                  "draws_noise": False})()).train()(
        model, batch, torch.device("cpu"))
    assert "labels" not in seen  # the original models get no labels
    with pytest.raises(ValueError, match="has no 'class_index'"):
        MixAndSeparate(wants)(model, {k: v for k, v in batch.items() if k != "class_index"},
                              torch.device("cpu"))


def test_color_jitter_by_hand_and_only_in_training():
    from avsep.geometry import jitter_colors

    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert jitter_colors([red], 120.0, 1.0, 1.0)[0].tolist() == [[[0, 255, 0]] * 2] * 2
    assert jitter_colors([red], -120.0, 1.0, 1.0)[0].tolist() == [[[0, 0, 255]] * 2] * 2
    assert jitter_colors([red], 0.0, 0.0, 1.0)[0].tolist() == [[[255, 255, 255]] * 2] * 2
    assert np.abs(jitter_colors([red], 0.0, 1.0, 0.5)[0].astype(int)
                  - [128, 0, 0]).max() <= 1
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    plain = ClipSpec(image_size=32, resize_short_side=36)
    jittered = ClipSpec(image_size=32, resize_short_side=36, color_jitter=0.5)
    # Evaluation (no rng) never changes colours; training with the same seed differs only
    # by the colours, and every frame of a clip gets the same change.
    assert np.array_equal(augment_frames([frame], plain, None),
                          augment_frames([frame], jittered, None))
    import random

    a = augment_frames([frame, frame], plain, random.Random(1))
    b = augment_frames([frame, frame], jittered, random.Random(1))
    assert a.shape == b.shape == (3, 2, 32, 32) and not np.array_equal(a, b)
    assert np.array_equal(b[:, 0], b[:, 1])


# ------------------------------------------------------------------ train.weight_average
def test_weight_average_by_hand():
    from avsep.training.averaging import WeightAverage, warmed_decay

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))

    trained = model()
    average = WeightAverage(model(), trained, decay=0.5)
    start = trained[0].weight.detach().clone()
    assert torch.equal(average.model[0].weight, start)  # starts as a copy
    assert not average.model.training and not average.model[0].weight.requires_grad
    expected = start.clone()
    for step, value in enumerate([1.0, -3.0, 10.0], start=1):
        with torch.no_grad():
            trained[0].weight.fill_(value)
        trained[1].num_batches_tracked.fill_(7 * step)
        average.update()
        # (1 + u) / (10 + u) is below 0.5 until the 9th update: the warm-up's decay.
        decay = (1 + step) / (10 + step)
        assert warmed_decay(0.5, step) == decay
        expected = decay * expected + (1 - decay) * value
        torch.testing.assert_close(average.model[0].weight, expected)
        assert int(average.model[1].num_batches_tracked) == 7 * step  # copied, not averaged
    assert warmed_decay(0.5, 100) == 0.5
    state = average.state_dict()
    other = WeightAverage(model(), model(), decay=0.5)
    other.load_state_dict(state)
    assert other.updates == 3 and torch.equal(other.model[0].weight, average.model[0].weight)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="weight_average must be in"):
            WeightAverage(model(), trained, decay=bad)


def test_weight_average_is_validated_kept_in_best_and_resumed_exactly(prepared_tiny, tmp_path,
                                                                      monkeypatch):
    from avsep.training.averaging import warmed_decay

    # The trained weights before the first step and after each (channels-last, the default,
    # gives the model new tensors after the average is made: it must still follow them).
    snapshots: list[dict[str, torch.Tensor]] = []
    real_step = loop_module._Run._optimizer_step

    def spy(self, batch):
        if not snapshots:
            snapshots.append({k: v.clone() for k, v in self.separator.state_dict().items()})
        result = real_step(self, batch)
        snapshots.append({k: v.clone() for k, v in self.separator.state_dict().items()})
        return result

    monkeypatch.setattr(loop_module._Run, "_optimizer_step", spy)
    # With the audio tagger too, whose noise comes from the step's generator.
    config = tiny_config(prepared_tiny["solos"], "train.weight_average=0.9",
                         "model.kwargs.visual_class_loss=0.1", "model.kwargs.audio_tagging=0.1")
    train(config, tmp_path / "a", progress=False)
    monkeypatch.undo()
    trained, state = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    averaged = state["weight_average"]["weights"]
    assert state["weight_average"]["updates"] == 8 and len(snapshots) == 9
    for name, value in averaged.items():  # the running average by hand
        expected = snapshots[0][name]
        if value.is_floating_point():
            for update, weights in enumerate(snapshots[1:], start=1):
                decay = warmed_decay(0.9, update)
                expected = decay * expected + (1 - decay) * weights[name]
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6, msg=name)
        else:
            assert torch.equal(value, snapshots[-1][name]), name
    best, best_state = load_checkpoint(tmp_path / "a" / "best.pt")
    assert best_state["step"] == 8 and "weight_average" not in best_state
    differs = False
    for name, value in best.state_dict().items():
        assert torch.equal(value, averaged[name]), name  # best.pt holds the average
        differs |= not torch.equal(value, trained.state_dict()[name])
    assert differs  # ... which is not the trained weights

    # Killed after step 6 (mid-segment), resumed: the same losses and average as
    # uninterrupted.
    train(config, tmp_path / "b", progress=False, until_step=6)
    train(config, tmp_path / "b", progress=False)
    a, b = train_losses(tmp_path / "a"), train_losses(tmp_path / "b")
    assert [b[step] for step in (7, 8)] == [a[step] for step in (7, 8)]
    _, resumed = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for name, value in averaged.items():
        assert torch.equal(resumed["weight_average"]["weights"][name], value), name
