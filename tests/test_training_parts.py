"""The pieces of the training loop on their own: optimiser groups, schedule, clipping,
presets, and the numbers validation returns (checked against mir_eval)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avsep import create_model
from avsep.presets import resolve_preset
from avsep.run_config import RunConfig, load_run_config
from avsep.training.optim import build_optimizer, build_scheduler, max_grad_norm
from avsep.training.validate import validate

SMALL_SOP = ["model.kwargs.ngf=4", "model.kwargs.depth=3", "model.kwargs.num_channels=4",
             "model.kwargs.pretrained=false"]


def sop_config(*extra: str) -> RunConfig:
    return load_run_config(resolve_preset("sop"), [*SMALL_SOP, *extra])


def test_the_sop_preset_is_the_original_recipe():
    c = load_run_config(resolve_preset("sop"))
    assert (c.model.name, c.model.kwargs["mask_type"], c.model.kwargs["pretrained"]) == (
        "sop", "binary", True)
    assert (c.optim.optimizer, c.optim.momentum, c.optim.weight_decay) == ("sgd", 0.9, 1e-4)
    assert (c.optim.lr_sound, c.optim.lr_frame, c.optim.lr_synthesizer) == (1e-3, 1e-4, 1e-3)
    assert c.optim.lr_milestones == [40, 80] and c.optim.lr_decay == 0.1
    assert c.optim.grad_clip == 0 and max_grad_norm(c) == math.inf  # the original never clips
    assert c.train.best_metric == "loss"  # the original keeps the lowest validation loss
    assert (c.train.batch_size, c.data.num_sources) == (80, 2)


def test_the_mhunet_and_demo_presets_load_with_their_documented_choices():
    mhunet = load_run_config(resolve_preset("mhunet"))
    assert mhunet.model.name == "mhunet" and mhunet.data.curriculum[-1] == (80000, 7)
    assert (mhunet.data.mixing, mhunet.optim.optimizer, mhunet.optim.lr_sound) == (
        "peak", "adam", 1e-4)
    demo = load_run_config(resolve_preset("demo"))
    assert (demo.optim.grad_clip, demo.train.best_metric) == (5.0, "sdr")
    assert max_grad_norm(demo) == 5.0


def test_optimizer_groups_follow_the_original():
    """ResNet features at lr_frame; the synthesizer at lr_synthesizer; the U-Net and the
    vision net's last conv (the original's `net_frame.fc`) at lr_sound."""
    config = sop_config("optim.lr_sound=0.3", "optim.lr_frame=0.02", "optim.lr_synthesizer=0.5")
    model = create_model("sop", **config.model.kwargs)
    optimizer = build_optimizer(model, config)
    assert isinstance(optimizer, torch.optim.SGD)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert {k: g["lr"] for k, g in groups.items()} == {
        "frame": 0.02, "synthesizer": 0.5, "sound": 0.3}
    ids = {k: {id(p) for p in g["params"]} for k, g in groups.items()}
    assert ids["frame"] == {id(p) for p in model.vision.backbone.parameters()}
    assert ids["synthesizer"] == {id(p) for p in model.synthesizer.parameters()}
    projection = {id(p) for p in model.vision.projection.parameters()}
    assert projection <= ids["sound"]
    assert sum(len(s) for s in ids.values()) == len(list(model.parameters()))
    for group in optimizer.param_groups:
        assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-4)
    adam = build_optimizer(model, sop_config("optim.optimizer=adam"))
    assert isinstance(adam, torch.optim.Adam)


def test_learning_rates_drop_tenfold_at_the_milestone_epochs():
    config = sop_config("train.steps_per_epoch=10", "optim.lr_milestones=[2, 4]")
    model = create_model("sop", **config.model.kwargs)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config)
    lrs = []
    for _ in range(45):
        lrs.append({g["name"]: g["lr"] for g in optimizer.param_groups})
        optimizer.step()
        scheduler.step()
    for step, factor in [(0, 1.0), (19, 1.0), (20, 0.1), (39, 0.1), (40, 0.01), (44, 0.01)]:
        assert lrs[step]["sound"] == pytest.approx(1e-3 * factor), step
        assert lrs[step]["frame"] == pytest.approx(1e-4 * factor), step


def test_no_clipping_leaves_gradients_alone_and_still_measures_their_norm():
    weight = torch.nn.Parameter(torch.zeros(4))
    weight.grad = torch.tensor([3.0, 4.0, 0.0, 12.0])  # norm 13
    norm = torch.nn.utils.clip_grad_norm_([weight], max_grad_norm(sop_config()))
    assert float(norm) == pytest.approx(13.0)
    assert torch.equal(weight.grad, torch.tensor([3.0, 4.0, 0.0, 12.0]))
    norm = torch.nn.utils.clip_grad_norm_([weight], max_grad_norm(sop_config("optim.grad_clip=6.5")))
    assert float(norm) == pytest.approx(13.0)
    assert torch.allclose(weight.grad, torch.tensor([1.5, 2.0, 0.0, 6.0]), atol=1e-5)


class _Oracle(torch.nn.Module):
    """Returns the references plus a fixed, known perturbation as the separation."""

    def reconstruct(self, outputs, spec, length):
        assert outputs.shape[-1] == length
        return outputs


class _Step(torch.nn.Module):
    def __init__(self, separator: _Oracle) -> None:
        super().__init__()
        self.separator = separator

    def forward(self, separator, batch, device, autocast_dtype=None):
        sources = batch["audio"]
        objective = SimpleNamespace(loss=batch["loss"].mean(), outputs=sources + batch["noise"],
                                    spec=None)
        return SimpleNamespace(objective=objective, loss=objective.loss, mix=sources.sum(1),
                               sources=sources)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # mir_eval 0.8 deprecates the module
def test_validation_numbers_match_mir_eval():
    mir_eval = pytest.importorskip("mir_eval")
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(3, 2, 4000, generator=generator, dtype=torch.float64)
    noise = 0.3 * torch.randn(3, 2, 4000, generator=generator, dtype=torch.float64)
    losses = torch.tensor([0.1, 0.2, 0.6])
    val_set = {"audio": audio, "noise": noise, "loss": losses, "keys": [["a", "b"]] * 3}
    oracle = _Oracle()
    info = SimpleNamespace(rank=0, world_size=1, device=torch.device("cpu"))
    result = validate(oracle, _Step(oracle), val_set, info, batch_size=2)
    sdr, sir, sar, mix_sdr = [], [], [], []
    for refs, est in zip(audio.numpy(), (audio + noise).numpy()):
        s, i, a, _ = mir_eval.separation.bss_eval_sources(refs, est, compute_permutation=False)
        m, _, _, _ = mir_eval.separation.bss_eval_sources(
            refs, np.stack([refs.sum(0)] * 2), compute_permutation=False)
        sdr, sir, sar, mix_sdr = sdr + list(s), sir + list(i), sar + list(a), mix_sdr + list(m)
    assert result["count"] == 6 and result["skipped"] == 0
    assert result["sdr"] == pytest.approx(np.mean(sdr), abs=1e-6)
    assert result["sir"] == pytest.approx(np.mean(sir), abs=1e-6)
    assert result["sar"] == pytest.approx(np.mean(sar), abs=1e-6)
    assert result["sdr_mixture"] == pytest.approx(np.mean(mix_sdr), abs=1e-6)
    assert result["sdr_improvement"] == pytest.approx(np.mean(sdr) - np.mean(mix_sdr), abs=1e-6)
    # batches of 2 and 1 mixtures: the loss is the mean over mixtures, not over batches
    assert result["loss"] == pytest.approx((0.15 * 2 + 0.6) / 3)


def test_channels_last_changes_the_layout_not_the_arithmetic():
    """The loop converts the model to channels-last on every device (measured faster on CPU
    too); one training pass must give the same loss and gradients either way."""
    from avsep.training.step import MixAndSeparate

    torch.manual_seed(0)
    reference = create_model("sop", num_channels=4, ngf=4, depth=3, pretrained=False,
                             visual_activation="none", visual_norm="batch")
    converted = create_model("sop", num_channels=4, ngf=4, depth=3, pretrained=False,
                             visual_activation="none", visual_norm="batch")
    converted.load_state_dict(reference.state_dict())
    converted = converted.to(memory_format=torch.channels_last)
    assert converted.vision.projection.weight.is_contiguous(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    batch = {"audio": torch.randn(2, 2, 8191, generator=g) * 0.1,
             "frames": torch.randint(0, 256, (2, 2, 3, 1, 64, 64), generator=g,
                                     dtype=torch.uint8)}
    losses, grads = [], []
    for model in (reference, converted):
        step = MixAndSeparate(model).train()
        out = step(model, batch, torch.device("cpu"), generator=torch.Generator().manual_seed(2))
        out.loss.backward()
        losses.append(float(out.loss.detach()))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()
                                if p.grad is not None]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    difference = (grads[0] - grads[1]).abs().max() / grads[0].abs().max()
    assert float(difference) < 1e-4  # summation order differs between the layouts' kernels
