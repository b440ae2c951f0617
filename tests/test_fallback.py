"""`fallback_confidence`: separation blends unsure sources' masks toward an even share."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import avsep
from avsep.models import SoundOfPixels
from avsep.models.confidence import blend_weights, fallback_logits, source_confidence

SAMPLES = (32 - 1) * 256  # 32 STFT frames: a multiple of 2**depth for the unittest model
KWARGS = {"visual_class_loss": 0.1, "num_classes": 5, "mask_type": "ratio",
          "complementary": True, "visual_activation": "none", "visual_pooling": "mean"}


def _pair(threshold: float, seed: int = 0) -> tuple[SoundOfPixels, SoundOfPixels]:
    """The same weights with the fallback off and on, in eval mode."""
    torch.manual_seed(seed)
    off = avsep.create_model("avsep_unittest", **KWARGS).eval()
    on = avsep.create_model("avsep_unittest", fallback_confidence=threshold, **KWARGS).eval()
    on.load_state_dict(off.state_dict())
    return off, on


def _inputs(batch: int = 2, sources: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    mix = torch.rand(batch, SAMPLES, generator=g) * 0.2 - 0.1
    frames = torch.randint(0, 256, (batch, sources, 3, 3, 48, 48), generator=g,
                           dtype=torch.uint8)
    return mix, frames


def _set_class_head(model: SoundOfPixels, bias: list[float]) -> None:
    """A class head that ignores the picture: its softmax is softmax(bias) for every source."""
    assert model.class_head is not None
    with torch.no_grad():
        model.class_head.weight.zero_()
        model.class_head.bias.copy_(torch.tensor(bias))


def test_confidence_and_weights_by_hand():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]]]))  # (1, 2, 3)
    assert torch.allclose(source_confidence(logits), torch.tensor([[0.7, 0.4]]))
    confidence = torch.tensor([[0.1, 0.2], [0.4, 0.9]])
    assert torch.allclose(blend_weights(confidence, 0.4), torch.tensor([[0.25, 0.5], [1, 1]]))
    assert torch.equal(blend_weights(confidence, 0.0), torch.ones(2, 2))
    # w * sigmoid(logit) + (1 - w) / N: w = 0 is the even share, w = 1 the logits bit for bit
    mask_logits = torch.randn(2, 3, 4, 5)
    weights = torch.tensor([[0.0, 0.5, 1.0], [1.0, 0.0, 0.25]])
    blended = torch.sigmoid(fallback_logits(mask_logits, weights))
    expected = weights[..., None, None] * torch.sigmoid(mask_logits) + (1 - weights[..., None, None]) / 3
    assert torch.allclose(blended, expected, atol=1e-6)
    assert torch.allclose(blended[0, 0], torch.full((4, 5), 1 / 3), atol=1e-6)
    kept = fallback_logits(mask_logits, weights)
    assert torch.equal(kept[0, 2], mask_logits[0, 2]) and torch.equal(kept[1, 0], mask_logits[1, 0])


def test_off_gives_the_original_masks_and_sure_sources_keep_theirs():
    mix, frames = _inputs()
    off, on = _pair(0.9)
    spec = off.spectrogram(mix)
    with torch.no_grad():
        original = off.parts(spec, frames).logits
        assert torch.equal(off.net_outputs(spec, frames), original)  # off: the original path
        assert torch.equal(off.fallback_weights(mix, frames), torch.ones(2, 2))
        # a class head sure of one class (top probability ~1 >= 0.9): the masks as trained
        _set_class_head(on, [20.0, 0, 0, 0, 0])
        assert torch.equal(on.fallback_weights(mix, frames), torch.ones(2, 2))
        assert torch.equal(on.net_outputs(spec, frames), original)
        assert torch.equal(on.separate(mix, frames), off.separate(mix, frames))


def test_an_unsure_source_is_blended_toward_the_even_share():
    mix, frames = _inputs()
    off, on = _pair(1.0)
    # a uniform class head: confidence 1/5 everywhere, so w = (1/5) / 1.0
    _set_class_head(on, [0.0] * 5)
    w = 0.2
    with torch.no_grad():
        assert torch.allclose(on.fallback_weights(mix, frames), torch.full((2, 2), w))
        spec = off.spectrogram(mix)
        masks = torch.sigmoid(off.parts(spec, frames).logits)
        by_hand = w * masks + (1 - w) / 2
        got = torch.sigmoid(on.net_outputs(spec, frames))
        assert torch.allclose(got, by_hand, atol=1e-6)
        # the same blend for a caller that runs the synthesizer itself (reused features)
        pooled = on.visual_features(frames)
        own = on.fallback(on.synthesizer(pooled, on.audio_components(spec["log_mag"])), pooled)
        assert torch.equal(own, on.net_outputs(spec, frames))
        # the separated waves: the blend is linear, so w * the model's + (1 - w) * mix / N
        expected = w * off.separate(mix, frames) + (1 - w) * mix.unsqueeze(1) / 2
        assert torch.allclose(on.separate(mix, frames), expected, atol=1e-5)
        # the even share itself (w = 0) gives the mixture scaled by 1/N
        even = on.reconstruct(fallback_logits(masks.logit(), torch.zeros(2, 2)), spec,
                              SAMPLES)
        assert torch.allclose(even, mix.unsqueeze(1).expand(-1, 2, -1) / 2, atol=1e-5)


def test_training_is_unchanged_with_the_fallback_on():
    mix, frames = _inputs(batch=3)
    sources = torch.stack([mix * 0.3, mix * 0.7], dim=1)
    labels = torch.tensor([[0, 1], [2, 3], [4, 0]])
    off, on = _pair(1.0)
    _set_class_head(off, [0.0] * 5)
    _set_class_head(on, [0.0] * 5)  # every source unsure: separation would blend
    for mode in ("train", "eval"):
        off.train(mode == "train")
        on.train(mode == "train")
        got, want = on(mix, sources, frames, labels=labels), off(mix, sources, frames,
                                                                   labels=labels)
        assert torch.equal(got.loss, want.loss) and torch.equal(got.outputs, want.outputs)


def test_the_option_is_checked_and_stored():
    with pytest.raises(ValueError, match=r"fallback_confidence must be in \[0, 1\]"):
        avsep.create_model("avsep_unittest", fallback_confidence=1.5, **KWARGS)
    with pytest.raises(ValueError, match=r"fallback_confidence must be in \[0, 1\]"):
        avsep.create_model("avsep_unittest", fallback_confidence=-0.1, **KWARGS)
    with pytest.raises(ValueError, match="needs mask_type 'ratio' and visual_class_loss"):
        avsep.create_model("avsep_unittest", fallback_confidence=0.4,
                           **{**KWARGS, "mask_type": "binary"})
    with pytest.raises(ValueError, match="needs mask_type 'ratio' and visual_class_loss"):
        avsep.create_model("avsep_unittest", fallback_confidence=0.4,
                           **{**KWARGS, "visual_class_loss": 0.0})
    model = avsep.create_model("avsep_unittest", fallback_confidence=0.4, **KWARGS)
    assert model.model_kwargs["fallback_confidence"] == 0.4
    assert dataclasses.replace(model.config, fallback_confidence=0.0).fallback_confidence == 0
