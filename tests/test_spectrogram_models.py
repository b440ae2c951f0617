"""The seeds' spectrogram networks: blocks and networks (shapes, parameters by hand), the
class-conditioned separator's objective by hand (direct and mask outputs, magnitude and
complex-as-channels, M5 / M6 balancing), checkpoints and overfitting a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch
from overfit import first_and_last_loss

import avsep
from avsep.checkpoint import load_checkpoint, save_checkpoint
from avsep.models.blocks import conv2d
from avsep.models.spectrogram_unets import (
    TDC,
    TDF,
    TFC,
    TFCTDF,
    IntermediateBlockUNet,
    SpectrogramChannelsUNet,
)

SMALL = {"spectrogram_channels": {"depth": 3, "ngf": 4},
         "tfc_tdf": {"depth": 3, "channels": 4, "layers": 1, "growth": 4}}


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _batch(samples: int = 8191):
    g = torch.Generator().manual_seed(0)
    sources = torch.stack([0.3 * torch.randn(2, samples, generator=g),
                           0.05 * torch.randn(2, samples, generator=g)], dim=1)
    return sources.sum(1), sources, torch.tensor([[0, 3], [2, -1]])


def test_blocks_and_networks_keep_the_spectrogram_size():
    x = torch.randn(2, 3, 32, 16)
    assert TFC(3, 5, layers=2, growth=4)(x).shape == (2, 5, 32, 16)
    assert TDC(3, 5, layers=2, growth=4)(x).shape == (2, 5, 32, 16)
    assert TDF(3, 32, bottleneck=4)(x).shape == (2, 3, 32, 16)
    assert TFCTDF(3, 5, 32, layers=2, growth=4)(x).shape == (2, 5, 32, 16)
    assert SpectrogramChannelsUNet(3, 7, depth=3, ngf=4)(x).shape == (2, 7, 32, 16)
    assert (SpectrogramChannelsUNet(3, 7, depth=3, ngf=4)(x) >= 0).all()  # final ReLU
    for block in ("tfc", "tdf", "tdc", "tfc_tdf"):
        net = IntermediateBlockUNet(3, 6, 32, block, depth=2, channels=4, layers=1, growth=2)
        assert net(x).shape == (2, 6, 32, 16)
    with pytest.raises(ValueError, match="not a multiple of 2\\*\\*depth"):
        IntermediateBlockUNet(2, 2, 100, depth=3)


def test_parameter_counts_by_hand():
    # TDF over 32 bins, factor 4: two bias-free Linear layers and two BatchNorms.
    assert _params(TDF(3, 32, bottleneck=4)) == 32 * 8 + 8 * 32 + 2 * 2 * 3
    # TFC, 2 layers of growth 4 from 3 channels, to 5: dense 3x3 convs (no bias) + BN, 1x1.
    dense = (3 * 4 * 9 + 2 * 4) + (7 * 4 * 9 + 2 * 4)
    assert _params(TFC(3, 5, layers=2, growth=4)) == dense + 11 * 5 + 5
    # A depthwise-separable 3x3 conv from 8 to 16 channels: 8 * 9 + 8 * 16 + 16 (bias)
    # instead of 8 * 16 * 9 + 16.
    assert _params(conv2d(8, 16, 3, padding=1, separable=True)) == 8 * 9 + 8 * 16 + 16
    assert _params(conv2d(8, 16, 3, padding=1)) == 8 * 16 * 9 + 16


@pytest.mark.parametrize("name", ["avsep_unittest", "mhunet_unittest", "spectrogram_channels"])
def test_depthwise_separable_convolutions_cut_parameters_and_still_separate(name):
    plain = avsep.create_model(name, **SMALL.get(name, {}))
    separable = avsep.create_model(name, separable=True, **SMALL.get(name, {}))
    audio = "net" if name == "spectrogram_channels" else "audio_net"
    assert _params(getattr(separable, audio)) < 0.8 * _params(getattr(plain, audio))
    mix, _, classes = _batch()
    condition = (torch.randint(0, 256, (2, 2, 3, 3, 48, 48), dtype=torch.uint8)
                 if separable.condition_kind == "frames" else classes)
    assert separable.eval().separate(mix, condition).shape == (2, 2, mix.shape[1])


def test_direct_magnitudes_with_equal_weights_are_the_l1_of_the_paper():
    model = avsep.create_model("spectrogram_channels", balance="m5",
                               **SMALL["spectrogram_channels"]).eval()
    mix, sources, classes = _batch()
    with torch.no_grad():
        objective = model(mix, sources, classes)
        target = model.warped_magnitudes(sources)  # (B, N, Fw, Tf)
        estimate = objective.outputs[:, :, 0]
    keep = classes != -1
    per_source = (estimate - target).abs().mean(dim=(2, 3))
    assert float(objective.loss) == pytest.approx(float(per_source[keep].mean()), rel=1e-5)
    assert (objective.outputs[1, 1] == 0).all()  # an empty slot gets nothing


def test_balancing_weights_are_the_inverse_mean_norms_of_the_classes_seen():
    model = avsep.create_model("spectrogram_channels", **SMALL["spectrogram_channels"])
    mix, sources, classes = _batch()
    model.train()(mix, sources, classes)
    model.train()(mix, sources, classes)
    norms = sources.double().norm(dim=-1)
    mean_norm = {0: norms[0, 0], 3: norms[0, 1], 2: norms[1, 0]}  # two equal passes
    inverse = torch.tensor([1 / float(mean_norm[c]) for c in (0, 2, 3)])
    expected = inverse / inverse.mean()
    weights = model.class_weights()
    assert torch.allclose(weights[[0, 2, 3]], expected.float(), rtol=1e-5)
    assert weights[1] == 1.0  # a class never seen keeps weight 1
    assert weights[3] > weights[0]  # the quiet source counts more (the paper's point)
    equal = avsep.create_model("spectrogram_channels", balance="m5",
                               **SMALL["spectrogram_channels"])
    equal.train()(mix, sources, classes)
    assert torch.equal(equal.class_weights(), torch.ones(13))


def test_complex_masks_multiply_the_mixture_spectrum():
    model = avsep.create_model("tfc_tdf", output="mask", **SMALL["tfc_tdf"]).eval()
    mix = _batch()[0]
    spec = model.spectrogram(mix)
    b, f, t = spec["complex"].shape
    identity = torch.zeros(b, 2, 2, f, t)
    identity[:, :, 0] = 1.0  # mask 1 + 0j for both sources
    rotate = torch.zeros(b, 2, 2, f, t)
    rotate[:, :, 1] = 1.0  # mask 0 + 1j
    assert torch.allclose(model.estimate_spectra(identity, spec)[:, 0], spec["complex"])
    assert torch.allclose(model.estimate_spectra(rotate, spec)[:, 1], 1j * spec["complex"])
    # Direct complex output: the outputs are the spectrum; reconstruct inverts it.
    direct = avsep.create_model("tfc_tdf", **SMALL["tfc_tdf"]).eval()
    spectrum = torch.stack([spec["complex"].real, spec["complex"].imag], dim=1)[:, None]
    waves = direct.reconstruct(spectrum.expand(-1, 2, -1, -1, -1), spec, mix.shape[1])
    assert torch.allclose(waves[:, 0], mix, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_checkpoint_round_trip_keeps_the_balancing_statistics(name, tmp_path):
    model = avsep.create_model(name, **SMALL[name])
    mix, sources, classes = _batch()
    model.train()(mix, sources, classes)
    save_checkpoint(tmp_path / "m.pt", model, step=1)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert torch.equal(loaded.class_weights(), model.class_weights())
    model.eval()
    assert torch.equal(loaded.separate(mix, classes), model.separate(mix, classes))


def _tones(samples: int = 4095):
    """Two learnable sources per item: a steady tone and a short higher one."""
    t = torch.arange(samples) / 11025
    low = 0.3 * torch.sin(2 * math.pi * 440 * t)
    high = 0.1 * torch.sin(2 * math.pi * 1500 * t) * (t < 0.2)
    sources = torch.stack([torch.stack([low, high]), torch.stack([2 * high, 0.5 * low])])
    return sources.sum(1), sources, torch.tensor([[0, 3], [2, 5]])


@pytest.mark.parametrize("name, kwargs", [
    ("spectrogram_channels", {"depth": 3, "ngf": 8, "dropout": 0.0}),
    ("tfc_tdf", {"depth": 3, "channels": 8, "layers": 1, "growth": 8}),
    ("tfc_tdf", {"depth": 3, "channels": 8, "layers": 1, "growth": 8, "input": "magnitude",
                 "block": "tdc"}),
])
def test_a_tiny_batch_is_overfit(name, kwargs):
    torch.manual_seed(0)
    model = avsep.create_model(name, **kwargs).train()
    first, last = first_and_last_loss(model, *_tones(), steps=250, lr=3e-3)
    assert last < first / 4


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown input 'stereo'"):
        avsep.create_model("tfc_tdf", input="stereo")
    with pytest.raises(ValueError, match="unknown block 'rnn'"):
        avsep.create_model("tfc_tdf", block="rnn")
