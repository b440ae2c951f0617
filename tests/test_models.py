"""Model registry, SoP and MHU-Net separators: sizes, shapes, reconstruction, errors."""

from __future__ import annotations

import dataclasses
import urllib.error
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision

import avsep
from avsep.models import RetiredOptionError, SoundOfPixels
from avsep.models.localization import Gate, Localizer
from avsep.models.mhunet import EMPTY_LOGIT, MHUNetConfig
from avsep.models.synthesizer import Synthesizer
from avsep.models.unet import AudioUNet
from avsep.models.vision import DilatedResNetVision, ImageNetWeightsError

SAMPLES = (32 - 1) * 256  # 32 STFT frames: a multiple of 2**depth for the small models


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _mix(batch: int, samples: int = SAMPLES, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed)) * 0.1


def _frames(batch: int, sources: int, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (batch, sources, 3, 3, size, size), generator=g,
                         dtype=torch.uint8)


@pytest.fixture(scope="module")
def sop_default():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return avsep.create_model("sop", pretrained=False)


def test_registry_lists_and_rejects_unknown_names():
    assert {"sop", "mhunet", "avsep_unittest", "mhunet_unittest"} <= set(avsep.list_models())
    with pytest.raises(ValueError, match=r"unknown model 'sopp' \(known: .*sop"):
        avsep.create_model("sopp")
    with pytest.raises(ValueError, match="unknown argument.*nfg.*known: .*ngf"):
        avsep.create_model("sop", nfg=3)


def test_default_sop_has_the_original_parameter_counts(sop_default):
    assert _n_params(sop_default.audio_net) == 30_274_210
    assert _n_params(sop_default.vision) == 11_324_000
    assert _n_params(sop_default.synthesizer) == 33
    assert sop_default.condition_kind == "frames"
    assert (sop_default.mask_type, sop_default.loss_name) == ("binary", "bce")


def test_valid_num_samples_pads_to_whole_unet_blocks(sop_default):
    assert sop_default.frame_multiple == 128
    assert sop_default.valid_num_samples(65535) == 65535  # 256 frames
    assert sop_default.valid_num_samples(65000) == 255 * 256  # 254 -> 256 frames
    assert sop_default.valid_num_samples(70000) == 383 * 256  # 274 -> 384 frames


def test_default_unet_structure_and_init(sop_default):
    unet = sop_default.audio_net
    assert [block.conv.out_channels for block in unet.down] == [64, 128, 256, 512, 512, 512, 512]
    assert unet.down[0].norm is None and unet.down[-1].norm is None
    assert all(block.norm is not None for block in unet.down[1:-1])
    assert unet.up[0].conv.bias is not None and unet.up[0].norm is None
    assert unet.up[0].conv.out_channels == 32
    conv = torch.cat([m.weight.flatten() for m in unet.modules()
                      if isinstance(m, torch.nn.Conv2d)])
    assert abs(conv.std().item() - 0.001) < 2e-5 and abs(conv.mean().item()) < 1e-5
    bn = torch.cat([m.weight for m in unet.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 0.01 and 0.015 < bn.std().item() < 0.025


def test_unet_reaches_2x2_at_depth_7_and_validates_input():
    unet = AudioUNet(depth=7, ngf=4, out_channels=3)
    seen = {}

    def record(module, inputs, output):
        seen["bottom"] = output.shape

    unet.down[-1].register_forward_hook(record)
    assert unet(torch.randn(1, 1, 256, 256)).shape == (1, 3, 256, 256)
    assert seen["bottom"][2:] == (2, 2)
    with pytest.raises(ValueError, match=r"multiples of 128.*\(1, 1, 256, 100\)"):
        unet(torch.randn(1, 1, 256, 100))


def test_unet_without_skips_is_the_plain_auto_encoder_of_the_same_depth():
    with_skips = AudioUNet(depth=4, ngf=4, out_channels=3)
    plain = AudioUNet(depth=4, ngf=4, out_channels=3, skips=False)
    x = torch.randn(2, 1, 32, 32)
    assert plain(x).shape == with_skips(x).shape == (2, 3, 32, 32)
    # Each decoder below the innermost reads c_i channels instead of 2 c_i (c = 4, 8, 16, 32):
    # 3x3 convs lose 9 * c_i * c_{i-1} weights for i = 1, 2 and 9 * c_0 * K for i = 0.
    lost = 9 * (8 * 4 + 16 * 8) + 9 * 4 * 3
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(with_skips) - count(plain) == lost
    assert [block.conv.in_channels for block in plain.up] == [4, 8, 16, 32]
    sop = avsep.create_model("sop", num_channels=4, ngf=4, depth=4, vision_arch="tiny",
                             skips=False)
    assert sop.model_kwargs["skips"] is False and sop.audio_net.skips is False


def test_vision_net_dilates_only_layer4_and_pools_max_then_sigmoid(sop_default):
    vision = sop_default.vision
    backbone = vision.backbone
    assert backbone.layer4[0].conv1.stride == (1, 1) and backbone.layer4[0].conv1.dilation == (1, 1)
    assert backbone.layer4[0].downsample[0].stride == (1, 1)
    assert backbone.layer4[0].conv2.dilation == (2, 2) and backbone.layer4[1].conv1.dilation == (2, 2)
    assert backbone.layer3[0].conv1.stride == (2, 2) and backbone.layer3[0].conv2.dilation == (1, 1)
    vision.eval()
    frames = torch.randn(1, 3, 2, 224, 224)
    with torch.no_grad():
        out = vision(frames)
        raw = vision.feature_map(frames)
    assert out.spatial.shape == (1, 32, 14, 14) and out.pooled.shape == (1, 32)
    assert torch.allclose(out.pooled, torch.sigmoid(raw.amax(dim=(2, 3, 4))))
    assert torch.allclose(out.pooled, out.spatial.amax(dim=(2, 3)))


@pytest.mark.parametrize("activation", ["none", "relu"])
def test_visual_batch_norm_is_a_batchnorm_of_the_pooled_vectors(activation):
    vision = DilatedResNetVision(8, arch="tiny", activation=activation, norm="batch")
    reference = torch.nn.BatchNorm1d(8)
    frames = torch.randn(6, 3, 2, 48, 48, generator=torch.Generator().manual_seed(2))
    act = torch.relu if activation == "relu" else (lambda x: x)
    with torch.no_grad():
        for _ in range(3):  # training mode: batch statistics, running statistics updated
            out = vision.train()(frames)
            raw = vision.feature_map(frames)
            expected = reference.train()(act(raw.amax(dim=(2, 3, 4))))
            assert torch.allclose(out.pooled, expected, atol=1e-5)
        assert torch.allclose(vision.norm.running_mean, reference.running_mean, atol=1e-6)
        vision.norm.weight.uniform_(0.5, 2.0)
        vision.norm.bias.normal_()
        reference.load_state_dict(vision.norm.state_dict())
        out = vision.eval()(frames)
        raw = vision.feature_map(frames)
        # Evaluation: the pooled vector is the running-statistics BatchNorm of the max, and
        # each location goes through the same affine map, so (with positive scales) the best
        # location still equals the pooled vector.
        assert torch.allclose(out.pooled, reference.eval()(act(raw.amax(dim=(2, 3, 4)))),
                              atol=1e-5)
        assert torch.allclose(out.pooled, out.spatial.amax(dim=(2, 3)), atol=1e-5)
    with pytest.raises(ValueError, match="unknown visual norm 'layer'"):
        DilatedResNetVision(8, arch="tiny", norm="layer")
    with pytest.raises(ValueError, match="unknown visual activation 'tanh'"):
        DilatedResNetVision(8, arch="tiny", activation="tanh")


def test_mean_pooling_makes_mask_logits_the_mean_of_every_locations_logits():
    with pytest.raises(ValueError, match="unknown visual pooling 'median'"):
        avsep.create_model("avsep_unittest", visual_pooling="median")
    model = avsep.create_model("avsep_unittest", visual_pooling="mean", visual_norm="batch",
                               visual_activation="none")
    assert model.model_kwargs["visual_pooling"] == "mean"
    spec = model.spectrogram(_mix(2))
    frames = _frames(2, 2)
    with torch.no_grad():
        model.train()(_mix(2), torch.rand(2, 2, SAMPLES) * 0.1, frames)  # move the statistics
        model.eval()
        logits = model.mask_logits(spec, frames)
        audio = model.audio_components(spec["log_mag"])
        for i in range(2):
            # By hand: the synthesizer at every location of source i's frames (alone, in
            # evaluation), then the mean over the locations: the separation's logits.
            spatial = model.vision(model.normalize_frames(frames[:, i])).spatial
            per_location = model.synthesizer.pixelwise(spatial, audio)  # (B, h, w, Fw, Tf)
            assert torch.allclose(logits[:, i], per_location.mean(dim=(1, 2)), atol=1e-5)
    # The default is the original max.
    default = avsep.create_model("avsep_unittest").eval()
    with torch.no_grad():
        out = default.vision(default.normalize_frames(frames[:, 0]))
        assert torch.allclose(out.pooled, out.spatial.amax(dim=(2, 3)), atol=1e-6)


def test_visual_norm_survives_a_checkpoint_round_trip(tmp_path):
    from avsep.checkpoint import load_checkpoint, save_checkpoint

    model = avsep.create_model("avsep_unittest", visual_activation="none", visual_norm="batch")
    model.train().mask_logits(model.spectrogram(_mix(3)), _frames(3, 2))  # moves the running statistics
    save_checkpoint(tmp_path / "m.pt", model, step=1)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert loaded.model_kwargs["visual_norm"] == "batch"
    assert torch.equal(loaded.vision.norm.running_var, model.vision.norm.running_var)
    model.eval(), loaded.eval()
    assert torch.allclose(loaded.separate(_mix(2), _frames(2, 2)),
                          model.separate(_mix(2), _frames(2, 2)), atol=1e-6)


def _offline_hub(monkeypatch, tmp_path):
    """torchvision's cache in tmp_path, and no network: a download attempt fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("AVSEP_RESNET18_WEIGHTS", raising=False)

    def no_network(url, *args, **kwargs):
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        if cached.is_file():  # what torch.hub does with a cached file: load it, no network
            return torch.load(cached, map_location="cpu", weights_only=True)
        raise urllib.error.URLError(f"offline: {url}")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    return Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth"


def test_pretrained_vision_uses_torchvisions_cache(tmp_path, monkeypatch):
    cache = _offline_hub(monkeypatch, tmp_path)
    reference = torchvision.models.resnet18(weights=None)
    cache.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cache)
    vision = DilatedResNetVision(8, pretrained=True)
    assert torch.equal(vision.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_pretrained_vision_without_weights_is_an_error_that_says_what_to_do(
        tmp_path, monkeypatch):
    cache = _offline_hub(monkeypatch, tmp_path)
    with pytest.raises(ImageNetWeightsError, match="could not be downloaded") as info:
        DilatedResNetVision(8, pretrained=True)
    message = str(info.value)
    assert str(cache) in message and "pretrained=false" in message
    DilatedResNetVision(8, pretrained=False)  # the user's explicit choice: no weights needed


def test_an_explicitly_named_weights_file_must_exist_and_load(tmp_path, monkeypatch):
    _offline_hub(monkeypatch, tmp_path)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    monkeypatch.setenv("AVSEP_RESNET18_WEIGHTS", str(path))
    vision = DilatedResNetVision(8, pretrained=True)
    assert torch.equal(vision.backbone.conv1.weight, reference.conv1.weight)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ImageNetWeightsError, match=r"named by \$AVSEP_RESNET18_WEIGHTS"):
        DilatedResNetVision(8, pretrained=True)
    monkeypatch.delenv("AVSEP_RESNET18_WEIGHTS")
    with pytest.raises(ImageNetWeightsError, match="named by weights_path\\) does not exist"):
        DilatedResNetVision(8, pretrained=True, weights_path=str(tmp_path / "missing.pth"))


def test_synthesizer_matches_the_inner_product_formula():
    synth = Synthesizer(4)
    assert torch.equal(synth.alpha, torch.ones(4)) and torch.equal(synth.beta, torch.zeros(1))
    with torch.no_grad():
        synth.alpha.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        synth.beta.fill_(0.3)
    visual = torch.randn(2, 3, 4)
    audio = torch.randn(2, 4, 5, 6)
    expected = torch.einsum("bnk,k,bkft->bnft", visual, synth.alpha, audio) + 0.3
    assert torch.allclose(synth(visual, audio), expected, atol=1e-5)
    visual_map = torch.randn(2, 4, 3, 2)
    pixel = synth.pixelwise(visual_map, audio)
    assert pixel.shape == (2, 3, 2, 5, 6)
    assert torch.allclose(pixel[1, 2, 0], synth(visual_map[1:2, :, 2, 0][:, None], audio[1:2])[0, 0],
                          atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3])
def test_sop_shapes(batch):
    model = avsep.create_model("avsep_unittest").eval()
    mix, frames = _mix(batch), _frames(batch, 2)
    spec = model.spectrogram(mix)
    assert spec["complex"].shape == (batch, 512, 32) and spec["complex"].is_complex()
    assert spec["mag"].shape == (batch, 512, 32)
    assert spec["warped_mag"].shape == spec["log_mag"].shape == (batch, 1, 256, 32)
    assert model.mask_logits(spec, frames).shape == (batch, 2, 256, 32)
    objective = model(mix, torch.stack([mix, mix], 1), frames)
    assert objective.outputs.shape == (batch, 2, 256, 32) and objective.loss.shape == ()
    assert model.warped_magnitudes(torch.stack([mix, mix], 1)).shape == (batch, 2, 256, 32)
    assert model.separate(mix, frames).shape == (batch, 2, SAMPLES)
    localizer = Localizer(model)
    assert localizer.pixelwise_masks(mix, frames[:, 0]).shape == (batch, 3, 3, 512, 32)
    assert localizer.pixel_energies(mix, frames[:, 0]).shape == (batch, 3, 3)
    assert localizer.pixel_energies(mix, frames[:, 0], per_frame=True).shape == (batch, 3, 3, 32)


def test_small_resnet_sop_runs_at_112_pixels():
    model = avsep.create_model("sop", ngf=4, depth=4, num_channels=8, pretrained=False).eval()
    out = model.separate(_mix(2, 65535), _frames(2, 2, size=112))
    assert out.shape == (2, 2, 65535)
    images = model.normalize_frames(_frames(1, 1, size=112)[:, 0])
    assert model.vision(images).spatial.shape == (1, 8, 7, 7)


@pytest.mark.parametrize("batch", [1, 3])
def test_mhunet_shapes(batch):
    model = avsep.create_model("mhunet_unittest").eval()
    classes = torch.tensor([[0, 12, 4], [3, 3, -1], [7, 1, 2]])[:batch]
    logits = model.mask_logits(model.spectrogram(_mix(batch)), classes)
    assert logits.shape == (batch, 3, 256, 32)
    assert model.separate(_mix(batch, 5000), classes).shape == (batch, 3, 5000)


def test_default_mhunet_structure():
    model = avsep.create_model("mhunet")
    assert model.condition_kind == "classes" and len(model.audio_net.decoders) == 13
    assert (model.mask_type, model.complementary, model.loss_name) == ("ratio", True, "mse")
    assert [level[0].out_channels for level in model.audio_net.encoder.levels] == [
        16, 32, 64, 128, 256, 512]
    assert model.class_names[12] == "Violin"


def test_mhunet_runs_the_decoder_of_each_requested_class():
    model = avsep.create_model("mhunet_unittest").eval()
    log_mag = model.spectrogram(_mix(2))["log_mag"]
    classes = torch.tensor([[5, 2, 5], [2, -1, 9]])
    with torch.no_grad():
        logits = model.mask_logits(log_mag, classes)
        net = model.audio_net
        x = net.input_norm(log_mag)
        features = net.encoder(x)
        direct = {c: net.decoders[c](x, features)[:, 0] for c in (2, 5, 9)}
    assert torch.allclose(logits[0, 0], direct[5][0], atol=1e-5)
    assert torch.allclose(logits[0, 1], direct[2][0], atol=1e-5)
    assert torch.equal(logits[0, 0], logits[0, 2])  # same class, same mask
    assert torch.allclose(logits[1, 0], direct[2][1], atol=1e-5)
    assert torch.allclose(logits[1, 2], direct[9][1], atol=1e-5)
    assert (logits[1, 1] == EMPTY_LOGIT).all()
    masks = model.mask_activation(logits)
    assert torch.allclose(masks.sum(dim=1), torch.ones(2, 256, 32), atol=1e-5)
    assert masks[1, 1].max() < 1e-6


def test_complementary_mhunet_estimates_add_up_to_the_mixture():
    model = avsep.create_model("mhunet_unittest").eval()
    mix = _mix(2, 9000)
    estimates = model.separate(mix, torch.tensor([[0, 1, 2], [4, 8, 11]]))
    assert torch.allclose(estimates.sum(dim=1), mix, atol=1e-4)


@pytest.mark.parametrize("beta, expect_mixture", [(0.1, True), (-0.1, False)])
def test_sop_binary_masks_are_thresholded_at_one_half(beta, expect_mixture):
    # With alpha = 0 every mask equals sigmoid(beta): just above or below the threshold.
    model = avsep.create_model("avsep_unittest").eval()
    with torch.no_grad():
        model.synthesizer.alpha.zero_()
        model.synthesizer.beta.fill_(beta)
    mix = _mix(2, 7000)
    estimates = model.separate(mix, _frames(2, 2))
    expected = mix if expect_mixture else torch.zeros_like(mix)
    for n in range(2):
        assert torch.allclose(estimates[:, n], expected, atol=1e-5)


def test_sop_ratio_variant_trains_with_l1_and_keeps_soft_masks():
    model = avsep.create_model("avsep_unittest", mask_type="ratio").eval()
    assert model.loss_name == "l1"
    with torch.no_grad():
        model.synthesizer.alpha.zero_()
    estimates = model.separate(_mix(1, 7000), _frames(1, 2))
    assert torch.allclose(estimates[:, 0], 0.5 * _mix(1, 7000), atol=1e-5)  # sigmoid(0) = 0.5


def test_the_training_pass_is_the_original_objective_and_reaches_every_parameter():
    model = avsep.create_model("avsep_unittest").train()
    sources = torch.stack([_mix(2, SAMPLES, seed=3), 0.3 * _mix(2, SAMPLES, seed=4)], dim=1)
    mix, frames = sources.sum(1), _frames(2, 2)
    objective = model(mix, sources, frames)
    objective.loss.backward()
    assert torch.isfinite(objective.loss)
    assert all(p.grad is not None for p in model.parameters())
    # The original's equations: binary targets mag_n > 0.5 |mix| on the warped axis, BCE of
    # sigmoid(logits) weighted by clamp(log1p(|mix|), 1e-3, 10).
    with torch.no_grad():
        spec = model.spectrogram(mix)
        source_mags = model.warped_magnitudes(sources)
        target = (source_mags > 0.5 * spec["warped_mag"]).float()
        weight = torch.log1p(spec["warped_mag"]).clamp(1e-3, 10).expand_as(target)
        masks = torch.sigmoid(model.mask_logits(spec, frames))
        expected = F.binary_cross_entropy(masks, target, weight=weight)
    torch.testing.assert_close(objective.loss.detach(), expected, rtol=1e-4, atol=1e-6)
    assert objective.outputs.shape == (2, 2, 256, 32)


def test_model_kwargs_rebuild_the_same_architecture():
    model = avsep.create_model("avsep_unittest", mask_type="ratio")
    rebuilt = avsep.create_model(model.model_name, **model.model_kwargs)
    assert rebuilt.mask_type == "ratio"
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()}


def test_wrong_shapes_give_clear_errors():
    sop = avsep.create_model("avsep_unittest").eval()
    mhu = avsep.create_model("mhunet_unittest").eval()
    with pytest.raises(ValueError, match=r"frames \(batch=2, sources, 3.*got shape \(2, 3, 3, 48, 48\)"):
        sop.separate(_mix(2), _frames(2, 1)[:, 0])
    with pytest.raises(ValueError, match=r"expected mix \(batch, samples\), got shape \(7936,\)"):
        sop.separate(_mix(1)[0], _frames(1, 1))
    with pytest.raises(ValueError, match=r"multiple of 8, got shape \(1, 1, 256, 30\)"):
        sop.mask_logits(torch.zeros(1, 1, 256, 30), _frames(1, 1))
    with pytest.raises(ValueError, match=r"class indices .*got shape \(2,\)"):
        mhu.separate(_mix(2), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"in \[0, 13\) or -1"):
        mhu.separate(_mix(1), torch.tensor([[13]]))
    with pytest.raises(ValueError, match="must be integers"):
        mhu.separate(_mix(1), torch.tensor([[1.0]]))
    with pytest.raises(ValueError, match="frames must be uint8 RGB"):
        sop.separate(_mix(1), _frames(1, 2).float())


@pytest.mark.parametrize("name", ["avsep_unittest", "mhunet_unittest"])
def test_stft_settings_are_model_arguments_kept_by_checkpoints(name, tmp_path):
    # The seeds' 2048 / 512 at 44.1 kHz: 1025 linear bins, still 256 warped ones for the nets.
    from avsep.checkpoint import load_checkpoint, save_checkpoint

    model = avsep.create_model(name, n_fft=2048, hop_length=512, sample_rate=44100).eval()
    condition = _frames(2, 2) if model.condition_kind == "frames" else torch.tensor([[0, 1]] * 2)
    mix = _mix(2, 20000)
    assert model.spectrogram(mix)["complex"].shape == (2, 1025, 1 + 20000 // 512)
    assert model.separate(mix, condition).shape == (2, 2, 20000)
    save_checkpoint(tmp_path / "m.pt", model, step=1)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert (loaded.n_fft, loaded.hop_length, loaded.sample_rate) == (2048, 512, 44100)
    assert torch.allclose(loaded.eval().separate(mix, condition), model.separate(mix, condition),
                          atol=1e-6)
    with pytest.raises(ValueError, match="even n_fft"):
        avsep.create_model(name, n_fft=1023)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_separation_on_gpu_matches_cpu():
    model = avsep.create_model("avsep_unittest").eval()
    mix, frames = _mix(2), _frames(2, 2)
    cpu = model.separate(mix, frames)
    gpu = model.cuda().separate(mix.cuda(), frames.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


def test_visual_class_loss_adds_the_cross_entropy_of_the_pooled_visual_vectors():
    with pytest.raises(ValueError, match="visual_class_loss >= 0"):
        avsep.create_model("avsep_unittest", visual_class_loss=-1.0)
    assert not avsep.create_model("avsep_unittest").uses_labels  # the original: no labels
    torch.manual_seed(0)
    model = avsep.create_model("avsep_unittest", visual_class_loss=0.5,
                               visual_activation="none").train()
    assert model.uses_labels and model.model_kwargs["visual_class_loss"] == 0.5
    plain = avsep.create_model("avsep_unittest", visual_activation="none").train()
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("class_head")})
    mix, sources, frames = _mix(2), torch.rand(2, 2, SAMPLES) * 0.05, _frames(2, 2)
    labels = torch.tensor([[3, 5], [12, -1]])  # -1: a clip of unknown class, left out
    with torch.no_grad():
        got = model(mix, sources, frames, labels=labels).loss
        separation = plain(mix, sources, frames).loss
        # By hand: the head on each source's pooled vector (train mode: batch statistics),
        # cross-entropy over the three known clips.
        logits = model.class_head(model.visual_features(frames))  # (B, N, C)
        picked = torch.stack([logits[0, 0], logits[0, 1], logits[1, 0]])
        by_hand = -(picked.log_softmax(-1)[torch.arange(3), torch.tensor([3, 5, 12])]).mean()
    assert torch.allclose(got, separation + 0.5 * by_hand, atol=1e-5)
    with pytest.raises(ValueError, match=r"needs labels \(batch, sources\) = \(2, 2\)"):
        model(mix, sources, frames)
    with pytest.raises(ValueError, match="class index 13 is out of the class head's 13"):
        model(mix, sources, frames, labels=torch.tensor([[13, 0], [0, 0]]))
    with pytest.raises(ValueError, match="got \\(2, 3\\)"):
        model(mix, sources, frames, labels=torch.zeros(2, 3, dtype=torch.long))
    # Evaluation has no auxiliary term and needs no labels (same running statistics).
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("class_head")})
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.allclose(model(mix, sources, frames).loss,
                              plain(mix, sources, frames).loss, atol=1e-6)


def test_visual_class_head_survives_a_checkpoint_round_trip(tmp_path):
    from avsep.checkpoint import load_checkpoint, save_checkpoint

    model = avsep.create_model("avsep_unittest", visual_class_loss=0.1, num_classes=5)
    save_checkpoint(tmp_path / "m.pt", model, step=1)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert loaded.class_head is not None and loaded.class_head.out_features == 5
    assert torch.equal(loaded.class_head.weight, model.class_head.weight)


def _resnet18_trunk_parameters(widths: list[int]) -> int:
    """Parameters of a ResNet-18 trunk (conv1 .. layer4, no fc) with layer channels `widths`,
    counted by hand: 7x7 stem, two 3x3 BasicBlocks per layer, a 1x1 projection where the
    channels or the stride change, two parameters per BatchNorm channel."""
    total = 3 * widths[0] * 49 + 2 * widths[0]
    c_in = widths[0]
    for c in widths:
        total += c_in * c * 9 + 2 * c + c * c * 9 + 2 * c  # first block
        if c_in != c:
            total += c_in * c + 2 * c  # its downsampling projection
        total += 2 * (c * c * 9 + 2 * c)  # second block
        c_in = c
    return total


# ------------------------------------------------------------------ audio tagger and gate
def test_heard_targets_by_hand():
    from avsep.models.tagger import HEARD_SHARE, heard_targets

    # Two mixtures of two sources over 3 frames. Mixture 0: class 2 loud everywhere, class 5
    # at exactly the heard share in frame 1 and just below it in frame 2. Mixture 1 has an
    # unknown clip: its targets cannot say what is absent.
    mix = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]])
    source = torch.tensor([[[0.9, 0.9, 0.9], [0.0, HEARD_SHARE, HEARD_SHARE * 0.99]],
                           [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])
    targets, known = heard_targets(source, mix, torch.tensor([[2, 5], [1, -1]]), 6)
    assert targets.shape == (2, 6, 3) and known.tolist() == [True, False]
    expected = torch.zeros(6, 3)
    expected[2] = 1.0
    expected[5, 1] = 1.0
    assert torch.equal(targets[0], expected)
    assert targets[1, 1].tolist() == [1.0, 0.0, 0.0]  # a silent frame is never heard
    # Two clips of one class: heard where either is.
    both, _ = heard_targets(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.ones(1, 2),
                            torch.tensor([[3, 3]]), 4)
    assert both[0, 3].tolist() == [1.0, 1.0] and both.sum() == 2
    with pytest.raises(ValueError, match=r"expected labels \(batch, sources\) = \(2, 2\)"):
        heard_targets(source, mix, torch.tensor([2, 5]), 6)


def test_audio_tagging_trains_its_own_tagger_and_gates_the_location_masks(tmp_path):
    from avsep.checkpoint import load_checkpoint, save_checkpoint
    from avsep.models.tagger import AudioTagger, heard_targets

    with pytest.raises(ValueError, match="needs the class head of visual_class_loss"):
        avsep.create_model("avsep_unittest", audio_tagging=0.1)
    with pytest.raises(ValueError, match="audio_tagging >= 0"):
        avsep.create_model("avsep_unittest", audio_tagging=-1.0, visual_class_loss=0.1)
    with pytest.raises(ValueError, match=r"expected a log-magnitude \(batch, 1, freq, frames\)"):
        AudioTagger(3)(torch.zeros(2, 256, 8))
    torch.manual_seed(0)
    kwargs = {"visual_class_loss": 0.1, "num_classes": 5, "mask_type": "ratio",
              "complementary": True, "visual_activation": "none", "visual_pooling": "mean"}
    model = avsep.create_model("avsep_unittest", audio_tagging=0.5, audio_gate_locality=0.5,
                               **kwargs).train()
    plain = avsep.create_model("avsep_unittest", **kwargs).train()
    plain.load_state_dict(model.state_dict(), strict=False)
    mix_sources = torch.rand(3, 2, SAMPLES) * 0.1 - 0.05
    mix, frames, labels = mix_sources.sum(1), _frames(3, 2), torch.tensor([[0, 1], [2, 3], [4, 0]])
    assert model.tagger(model.spectrogram(mix)["log_mag"]).shape == (3, 5, 32)

    # The training loss: the plain model's, plus the weight times the tagger's BCE against
    # the classes heard in each frame and against nothing for a white-noise item (a quarter
    # batch, at least 1) at a mixture's RMS times U[0.5, 1.5), from the model's own
    # generator (replayed here).
    got = model(mix, mix_sources, frames, labels=labels).loss
    separation = plain(mix, mix_sources, frames, labels=labels).loss
    with torch.no_grad():
        spec = model.spectrogram(mix)
        power = model.warped_magnitudes(mix_sources).square().sum(dim=2)
        targets, _ = heard_targets(power, spec["warped_mag"].square().sum(dim=2)[:, 0],
                                   labels, 5)
        g = torch.Generator().manual_seed(0)
        which, gain = torch.randint(0, 3, (1,), generator=g), 0.5 + torch.rand(1, generator=g)
        noise = torch.randn(1, SAMPLES, generator=g) * mix[which].square().mean().sqrt() * gain
        tagger = AudioTagger(5)
        tagger.load_state_dict(model.tagger.state_dict())
        tagger.train()
        logits = tagger(torch.cat([spec["log_mag"], model.spectrogram(noise)["log_mag"]]))
        by_hand = F.binary_cross_entropy_with_logits(
            logits, torch.cat([targets, torch.zeros(1, 5, 32)]))
    assert torch.allclose(got, separation + 0.5 * by_hand, rtol=1e-5)
    # Given the step's generator, the noise is drawn from it (the same seed, the same loss;
    # another seed, another) and the model's own generator is left alone.
    own_state = model._noise_rng.get_state()
    seeded = [model(mix, mix_sources, frames, labels=labels,
                    generator=torch.Generator().manual_seed(seed)).loss for seed in (5, 5, 6)]
    assert torch.equal(seeded[0], seeded[1]) and not torch.equal(seeded[0], seeded[2])
    assert torch.equal(model._noise_rng.get_state(), own_state)
    # The tagger's loss trains only the tagger: no gradient reaches the separation nets.
    spec = model.spectrogram(mix)
    tag_loss = model.tagging_loss(mix, model.mask_targets(spec, mix_sources), spec, labels)
    grads = torch.autograd.grad(tag_loss, [*model.audio_net.parameters(),
                                           *model.vision.parameters(),
                                           *model.tagger.parameters()], allow_unused=True)
    n_sep = len(list(model.audio_net.parameters())) + len(list(model.vision.parameters()))
    assert all(g is None for g in grads[:n_sep]) and all(g is not None for g in grads[n_sep:])

    # Inference: each location's energy, frame by frame, is its ungated energy times the
    # square of its gate. A location's own gate is g_l = sum_c softmax(class_head(v))_c *
    # sigmoid(tagger)_c, the picture's g = max_l g_l; the gate is g * (g_l / g) ** locality.
    # Separation is not gated.
    save_checkpoint(tmp_path / "m.pt", model, step=1)
    model, _ = load_checkpoint(tmp_path / "m.pt")
    model.eval()
    clip, shown = mix[:2], frames[:2, 0]
    gated = Localizer(model).pixel_energies(clip, shown, per_frame=True)  # (B, h, w, Tf)
    masks = Localizer(model).pixelwise_masks(clip, shown)
    off = Localizer(model, Gate(enabled=False))
    ungated = off.pixel_energies(clip, shown, per_frame=True)
    ungated_masks = off.pixelwise_masks(clip, shown)
    assert not off.gated and Localizer(model).gated
    assert model.model_kwargs["audio_gate_locality"] == Localizer(model).locality == 0.5
    assert Localizer(avsep.create_model("avsep_unittest", audio_tagging=0.1,
                                        visual_class_loss=0.1)
                     ).locality == 0.0  # the picture's gate by default
    with torch.no_grad():
        spatial = model.vision(model.normalize_frames(shown)).spatial  # (B, K, h, w)
        h, w = spatial.shape[2:]
        shown_class = torch.softmax(model.class_head(spatial.permute(0, 2, 3, 1)), dim=-1)
        heard = torch.sigmoid(model.tagger(model.spectrogram(clip)["log_mag"]))  # (B, C, Tf)
        own = torch.einsum("bhwc,bct->bhwt", shown_class, heard)[..., :gated.shape[-1]]
        picture = own.amax(dim=(1, 2), keepdim=True)
    assert gated.shape == ungated.shape == (2, h, w, gated.shape[-1])
    gate = picture * (own / picture).sqrt()
    assert torch.allclose(gated, ungated * gate.square(), rtol=1e-4, atol=1e-12)
    assert torch.allclose(masks, ungated_masks * gate.unsqueeze(3), rtol=1e-4, atol=1e-7)
    assert bool((own < 1).all()) and bool((own > 0).all()) and bool((own < picture).any())
    for locality, expected in ((1.0, own), (0.0, picture.expand_as(own))):
        localizer = Localizer(model, Gate(locality=locality))
        assert torch.allclose(localizer.pixel_energies(clip, shown, per_frame=True),
                              ungated * expected.square(), rtol=1e-4, atol=1e-12)
    with pytest.raises(ValueError, match=r"audio_gate_locality must be in \[0, 1\]"):
        avsep.create_model("avsep_unittest", audio_tagging=0.1, visual_class_loss=0.1,
                           audio_gate_locality=1.5)
    with pytest.raises(ValueError, match=r"locality must be in \[0, 1\]"):
        Gate(locality=-0.5)


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25])
def test_vision_width_scales_every_layer_of_the_resnet(width):
    from avsep.models.vision import DilatedResNet18

    trunk = DilatedResNet18(width)
    widths = [round(c * width) for c in (64, 128, 256, 512)]
    assert sum(p.numel() for p in trunk.parameters()) == _resnet18_trunk_parameters(widths)
    assert trunk.out_channels == widths[-1]
    # the same parameter names as torchvision's ResNet-18 (checkpoints, ImageNet loading)
    assert trunk.state_dict().keys() == DilatedResNet18().state_dict().keys()
    # output stride 16, layer4 dilated at every width
    assert trunk.layer4[1].conv1.dilation == (2, 2)
    assert trunk(torch.randn(1, 3, 96, 160)).shape == (1, widths[-1], 6, 10)


def test_vision_width_one_is_the_original_resnet18():
    from avsep.models.vision import DilatedResNet18

    original = torchvision.models.resnet18(weights=None)
    trunk = DilatedResNet18(1.0)
    expected = {k: v.shape for k, v in original.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in trunk.state_dict().items()} == expected
    assert sum(p.numel() for p in trunk.parameters()) == 11_176_512  # 11,689,512 minus fc


def test_vision_width_needs_resnet18_from_scratch():
    with pytest.raises(ValueError, match="ImageNet weights exist for width 1.0 only"):
        DilatedResNetVision(8, pretrained=True, width=0.5)
    with pytest.raises(ValueError, match="needs arch 'resnet18'"):
        DilatedResNetVision(8, arch="tiny", width=0.5)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        DilatedResNetVision(8, width=1.5)


def test_vision_width_survives_a_checkpoint_round_trip(tmp_path):
    from avsep.checkpoint import load_checkpoint, save_checkpoint

    model = avsep.create_model("sop", num_channels=4, ngf=4, depth=3, vision_width=0.125,
                               pretrained=False,
                               visual_activation="none", visual_norm="batch")
    assert model.vision.backbone.out_channels == 64
    save_checkpoint(tmp_path / "m.pt", model, step=1)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert loaded.model_kwargs["vision_width"] == 0.125
    model.eval(), loaded.eval()
    frames = torch.randint(0, 256, (1, 2, 3, 1, 64, 64), dtype=torch.uint8)
    assert torch.allclose(loaded.separate(_mix(1), frames), model.separate(_mix(1), frames),
                          atol=1e-6)


def test_each_model_is_built_from_its_typed_config_and_rebuilds_from_its_kwargs():
    for name in avsep.list_models():
        model = avsep.create_model(name, **({"pretrained": False} if name == "sop" else {}))
        config = model.config
        assert isinstance(config, type(model).config_class)
        assert list(model.model_kwargs) == avsep.models.model_arguments(name)
        assert model.model_kwargs == dataclasses.asdict(config)
        assert avsep.models.model_config(name, **model.model_kwargs) == config
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.n_fft = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"unknown argument\(s\) ngff .*known: .*ngf"):
        avsep.create_model("avsep_unittest", ngff=3)
    with pytest.raises(TypeError, match="is built from a SoundOfPixelsConfig"):
        SoundOfPixels(MHUNetConfig())  # type: ignore[arg-type]


def test_retired_options_load_at_their_off_value_and_are_an_error_otherwise(tmp_path):
    from avsep.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    retired = {"side_by_side": 0.0, "off_screen_loss": 0.0, "off_screen_locations": 0,
               "output_activation": "sigmoid", "audio_backbone": "unet",
               "weights_path": "/somewhere/r18.pth"}  # any path: it never shaped the weights
    model = avsep.create_model("avsep_unittest", **retired)  # an old config still builds
    assert not set(retired) & set(model.model_kwargs)
    for key, value in (("side_by_side", 0.5), ("audio_backbone", "tfc_tdf"),
                       ("output_activation", "relu")):
        with pytest.raises(RetiredOptionError, match=rf"{key}=.* was retired .*docs/results/"):
            avsep.create_model("avsep_unittest", **{key: value})
    # A checkpoint written before the options were retired holds them at their off value.
    path = save_checkpoint(tmp_path / "old.pt", model, step=1)
    payload = torch.load(path, weights_only=False)
    payload["model_kwargs"] |= retired
    torch.save(payload, path)
    loaded, _ = load_checkpoint(path)
    assert loaded.model_kwargs == model.model_kwargs
    payload["model_kwargs"]["off_screen_loss"] = 0.1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="off_screen_loss=0.1 was retired"):
        load_checkpoint(path)
