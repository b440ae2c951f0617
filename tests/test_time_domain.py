"""HTMD-Net, Conv-TasNet and Wave-U-Net: shapes, parameter counts, the deep-supervision
objective against a hand computation, checkpoints and overfitting a tiny batch (the whole
pipeline on the tiny stand-in is in test_seed_pipelines.py)."""

from __future__ import annotations

import pytest
import torch
from overfit import first_and_last_loss

import avsep
from avsep.checkpoint import load_checkpoint, save_checkpoint
from avsep.models.time_domain import ConvTasNet, WaveUNet

# Small enough for a CPU test, the same structure as the registered sizes.
SMALL = {"filters": 16, "kernel": 8, "bottleneck": 8, "hidden": 16, "layers": 3,
         "unet_depth": 4, "unet_filters": 4, "num_classes": 13}
NAMES = ["htmd_net", "conv_tasnet", "wave_unet"]


def _small(name: str, **extra):
    kwargs = {**SMALL, **extra}
    if name == "wave_unet":
        kwargs["lstm"] = False
    return avsep.create_model(name, **kwargs)


def _batch(length: int = 1000):
    g = torch.Generator().manual_seed(0)
    sources = 0.3 * torch.randn(2, 2, length, generator=g)
    return sources.sum(1), sources, torch.tensor([[0, 5], [12, -1]])


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_empty_slots(name):
    model = _small(name).eval()
    mix, sources, classes = _batch(1001)  # not a multiple of the nets' length: padded inside
    out = model.separate(mix, classes)
    assert out.shape == (2, 2, 1001)
    assert (out[1, 1] == 0).all()  # an empty slot is silent
    objective = model.train()(mix, sources, classes)
    assert objective.outputs.shape == (2, 2, 1001) and objective.loss.shape == ()
    objective.loss.backward()
    used = [p for n, p in model.named_parameters() if p.grad is not None]
    assert len(used) == len(list(model.parameters()))


def test_the_requested_class_gets_its_own_output():
    model = _small("conv_tasnet").eval()
    mix = _batch(1000)[0]
    with torch.no_grad():
        _, per_class = model.class_waveforms(mix)
        picked = model.separate(mix, torch.tensor([[3, 7], [7, 3]]))
    assert torch.equal(picked[0, 0], per_class[0, 3]) and torch.equal(picked[0, 1], per_class[0, 7])
    assert torch.equal(picked[1, 0], per_class[1, 7])


def test_parameter_counts_by_hand():
    # Conv-TasNet with N=4 filters, L=4, B=2, H=3, X=1 layer, 2 outputs, 1 input channel:
    encoder = 1 * 4 * 4  # no bias
    norm = 2 * 4
    bottleneck_in = 4 * 2 + 2
    block = (2 * 3 + 3) + 2 * 3 + (3 * 3 + 3) + 2 * 3 + (3 * 2 + 2)
    masks = 2 * (2 * 4) + 2 * 4
    decoder = 4 * 1 * 4
    net = ConvTasNet(1, 2, filters=4, kernel=4, bottleneck=2, hidden=3, layers=1)
    assert sum(p.numel() for p in net.parameters()) == (
        encoder + norm + bottleneck_in + block + masks + decoder)
    # Wave-U-Net, depth 1, 2 filters per level, 1 in, 1 out, no LSTM: widths 2, 4.
    down = 1 * 2 * 15 + 2
    bottom = 2 * 4 * 15 + 4
    up = (4 + 2) * 2 * 5 + 2
    out = (2 + 1) * 1 + 1
    unet = WaveUNet(1, 1, depth=1, filters=2)
    assert sum(p.numel() for p in unet.parameters()) == down + bottom + up + out
    # The registered sizes (printed by benchmarks/models.py): the slides give 10.3M for
    # Wave-U-Net, 4.5M for HTMD-Net (one output there, 13 class outputs here).
    counts = {name: sum(p.numel() for p in avsep.create_model(name).parameters())
              for name in NAMES}
    assert 10.0e6 < counts["wave_unet"] < 10.6e6
    assert 4.0e6 < counts["htmd_net"] < 5.5e6


def test_deep_supervision_is_the_weighted_sum_of_both_losses():
    mix, sources, classes = _batch(1000)
    keep = (classes != -1)[..., None]
    for losses, weights in ((("mse", "mse"), (0.5, 1.0)), (("mse", "mae"), (1.0, 0.1))):
        torch.manual_seed(0)
        model = _small("htmd_net", loss_masking=losses[0], loss_denoising=losses[1],
                       weight_masking=weights[0], weight_denoising=weights[1]).eval()
        with torch.no_grad():
            objective = model(mix, sources, classes)
            initial, final = model.class_waveforms(torch.nn.functional.pad(mix, (0, 24)))
        expected = 0.0
        for name, weight, per_class in zip(losses, weights, (initial, final)):
            estimate = per_class[:, :, :1000].gather(1, classes.clamp_min(0)[..., None]
                                                     .expand(-1, -1, 1000)) * keep
            error = (estimate - sources) * keep
            error = error.square() if name == "mse" else error.abs()
            expected += weight * float(error.sum() / (keep.sum() * 1000))
        assert float(objective.loss) == pytest.approx(expected, rel=1e-5)
    torch.manual_seed(0)
    without = _small("htmd_net", weight_masking=0.0).eval()
    with torch.no_grad():
        final_only = without(mix, sources, classes)
        estimate = without.separate(mix, classes)
    error = ((estimate - sources) * keep).square().sum() / (keep.sum() * 1000)
    assert float(final_only.loss) == pytest.approx(float(error), rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip(name, tmp_path):
    model = _small(name)
    mix, sources, classes = _batch()
    model.train()(mix, sources, classes)  # moves BatchNorm statistics
    save_checkpoint(tmp_path / "m.pt", model, step=3)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    model.eval()
    assert torch.equal(loaded.separate(mix, classes), model.separate(mix, classes))


@pytest.mark.parametrize("name", NAMES)
def test_a_tiny_batch_is_overfit(name):
    torch.manual_seed(0)
    model = _small(name, unet_filters=8).train()
    first, last = first_and_last_loss(model, *_batch(512), steps=300, lr=3e-3)
    assert last < first / 10


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown arch"):
        avsep.create_model("htmd_net", arch="tasnet")
    with pytest.raises(ValueError, match="unknown waveform loss"):
        avsep.create_model("htmd_net", loss_denoising="l2")
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 13\)"):
        _small("conv_tasnet").separate(torch.zeros(1, 100), torch.tensor([[13]]))
