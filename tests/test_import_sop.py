"""`avsep import-sop`: original-layout state dicts -> avsep model with the same masks.

The original Sound of Pixels modules are rebuilt here, following the public repository's
module tree (`Unet` of nested `UnetBlock`s with Sequential `model`s and in-place
activations, `ResnetDilated` wrapping torchvision's ResNet-18 as `features` + `fc`,
`InnerProd` with `scale` and `bias`), so their state dicts have the release's exact keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from avsep.checkpoint import load_checkpoint
from avsep.cli import main
from avsep.import_sop import convert_sop_state_dicts, sound_key_map


class OriginalUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None,
                 outermost=False, innermost=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        inner_out = inner_nc if innermost else 2 * inner_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=False)
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        if outermost:
            layers = [down_conv, submodule, nn.ReLU(True), upsample,
                      nn.Conv2d(inner_out, outer_nc, 3, padding=1)]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), upsample,
                      nn.Conv2d(inner_out, outer_nc, 3, padding=1, bias=False),
                      nn.BatchNorm2d(outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.BatchNorm2d(inner_nc), submodule,
                      nn.ReLU(True), upsample,
                      nn.Conv2d(inner_out, outer_nc, 3, padding=1, bias=False),
                      nn.BatchNorm2d(outer_nc)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        # The in-place LeakyReLU at model[0] also changes x before it is concatenated.
        return torch.cat([x, self.model(x)], 1)


class OriginalUnet(nn.Module):
    def __init__(self, fc_dim, num_downs, ngf):
        super().__init__()
        block = OriginalUnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = OriginalUnetBlock(ngf * 8, ngf * 8, submodule=block)
        block = OriginalUnetBlock(ngf * 4, ngf * 8, submodule=block)
        block = OriginalUnetBlock(ngf * 2, ngf * 4, submodule=block)
        block = OriginalUnetBlock(ngf, ngf * 2, submodule=block)
        block = OriginalUnetBlock(fc_dim, ngf, input_nc=1, submodule=block, outermost=True)
        self.bn0 = nn.BatchNorm2d(1)
        self.unet_block = block

    def forward(self, x):
        return self.unet_block(self.bn0(x))


class OriginalResnetDilated(nn.Module):
    def __init__(self, fc_dim):
        super().__init__()
        resnet = torchvision.models.resnet18(weights=None)
        for m in resnet.layer4.modules():  # dilate_scale 16: layer4 only, dilation 2
            if isinstance(m, nn.Conv2d):
                if m.stride == (2, 2):
                    m.stride = (1, 1)
                    if m.kernel_size == (3, 3):
                        m.dilation, m.padding = (1, 1), (1, 1)
                elif m.kernel_size == (3, 3):
                    m.dilation, m.padding = (2, 2), (2, 2)
        self.features = nn.Sequential(*list(resnet.children())[:-2])
        self.fc = nn.Conv2d(512, fc_dim, kernel_size=3, padding=1)

    def forward_multiframe(self, x, pool=True):
        b, c, t, h, w = x.shape
        x = self.fc(self.features(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)))
        x = x.view(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)
        if not pool:
            return x
        return nn.functional.adaptive_max_pool3d(x, 1).view(b, -1)


class OriginalInnerProd(nn.Module):
    def __init__(self, fc_dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(fc_dim))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, feat_img, feat_sound):
        b, c = feat_sound.shape[:2]
        z = torch.bmm((feat_img.view(b, 1, c) * self.scale), feat_sound.view(b, c, -1))
        return z.view(b, 1, *feat_sound.shape[2:]) + self.bias

    def forward_pixelwise(self, feats_img, feat_sound):
        b, c, hi, wi = feats_img.shape
        img = feats_img.view(b, c, hi * wi).transpose(1, 2)
        z = torch.bmm(img * self.scale, feat_sound.view(b, c, -1))
        return z.view(b, hi, wi, *feat_sound.shape[2:]) + self.bias


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Weights and BatchNorm statistics far from their init, so a wrong mapping shows.

    Conv weights get a fan-in scaled spread so activations (and masks) vary by O(1).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            noise = torch.randn(tensor.shape, generator=g)
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.5)
            elif tensor.dim() == 4:
                tensor.copy_(noise * (2.0 / tensor[0].numel()) ** 0.5)
            elif name.endswith(("weight", "scale")):
                tensor.copy_(1 + 0.3 * noise)
            else:
                tensor.copy_(0.1 * noise)
    return module.eval()


K, NGF, DEPTH = 8, 8, 5


@pytest.fixture(scope="module")
def original():
    frame = _randomise(OriginalResnetDilated(K), 1)
    with torch.no_grad():  # keep pooled visual features O(1), where the sigmoid is sensitive
        frame.fc.weight.mul_(0.02)
    sound = _randomise(OriginalUnet(K, DEPTH, NGF), 2)
    synth = _randomise(OriginalInnerProd(K), 3)
    return frame, sound, synth


def _save(tmp_path, original):
    paths = []
    for name, net in zip(("frame_best.pth", "sound_best.pth", "synthesizer_best.pth"), original):
        # The release predates PyTorch's zip format: write the legacy format it uses.
        torch.save(net.state_dict(), tmp_path / name, _use_new_zipfile_serialization=False)
        paths.append(str(tmp_path / name))
    return paths


def test_imported_model_gives_the_original_masks(tmp_path, original, capsys):
    frame, sound, synth = original
    out = tmp_path / "sop.pt"
    assert main(["import-sop", *_save(tmp_path, original), "--out", str(out)]) == 0
    assert "depth=5" in capsys.readouterr().out
    model, payload = load_checkpoint(out)
    assert payload["model_kwargs"]["ngf"] == NGF and payload["model_kwargs"]["num_channels"] == K

    g = torch.Generator().manual_seed(4)
    mix = torch.randn(2, 31 * 256, generator=g) * 0.1
    frames = torch.randint(0, 256, (2, 2, 3, 3, 64, 64), generator=g, dtype=torch.uint8)
    # The original's transform: ToTensor (/255) then Normalize with ImageNet's statistics.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    images = (frames.float() / 255 - mean) / std
    log_mag = model.spectrogram(mix)["log_mag"]
    with torch.no_grad():
        ours = model.mask_activation(model.mask_logits(log_mag, frames))
        feat_sound = sound(log_mag.clone())
        theirs = torch.cat([
            torch.sigmoid(synth(torch.sigmoid(frame.forward_multiframe(images[:, n])), feat_sound))
            for n in range(2)], dim=1)
        # The per-pixel path against the original's forward_pixelwise on the same features.
        spatial = torch.sigmoid(frame.forward_multiframe(images[:, 0], pool=False).amax(dim=2))
        pixel_theirs = synth.forward_pixelwise(spatial, feat_sound)
        pixel_ours = model.synthesizer.pixelwise(model.vision(images[:, 0]).spatial,
                                                 model.audio_net(log_mag))
    assert ours.shape == theirs.shape == (2, 2, 256, 32)
    assert (ours - theirs).abs().max() < 1e-4
    assert (pixel_ours - pixel_theirs).abs().max() < 1e-4


def test_default_size_key_layout_matches_the_original():
    with torch.device("meta"):
        keys = set(OriginalUnet(32, 7, 64).state_dict())
    assert set(sound_key_map(7).values()) == keys


def test_dataparallel_prefix_and_old_files_without_num_batches_tracked(original):
    frame, sound, synth = (net.state_dict() for net in original)
    sound = {f"module.{k}": v for k, v in sound.items() if not k.endswith("num_batches_tracked")}
    kwargs, state = convert_sop_state_dicts(frame, sound, synth)
    assert kwargs["depth"] == DEPTH
    assert torch.equal(state["audio_net.input_norm.weight"], sound["module.bn0.weight"])


def test_mismatched_files_list_missing_unexpected_and_shapes(original):
    frame, sound, synth = (dict(net.state_dict()) for net in original)
    del frame["fc.bias"]
    frame["extra.weight"] = torch.zeros(1)
    sound["unet_block.model.4.weight"] = torch.zeros(K, 2 * NGF, 5, 5)
    with pytest.raises(ValueError) as info:
        convert_sop_state_dicts(frame, sound, synth, names=("f.pth", "s.pth", "y.pth"))
    message = str(info.value)
    assert "missing (1): vision.projection.bias" in message
    assert "unexpected (1): f.pth: extra.weight" in message
    assert "audio_net.up.0.conv.weight: file (8, 16, 5, 5) vs model (8, 16, 3, 3)" in message


def test_cli_reports_a_missing_file_and_never_writes_over_an_input(original, tmp_path, capsys):
    assert main(["import-sop", "a.pth", "b.pth", "c.pth", "--out", str(tmp_path / "x")]) == 2
    assert "a.pth: checkpoint not found" in capsys.readouterr().err
    files = _save(tmp_path, original)
    before = Path(files[1]).read_bytes()
    for extra in ([], ["--overwrite"]):
        assert main(["import-sop", *files, "--out", files[1], *extra]) == 2
        assert "is one of the weight files" in capsys.readouterr().err
    assert Path(files[1]).read_bytes() == before
    out = tmp_path / "sop.pt"
    assert main(["import-sop", *files, "--out", str(out)]) == 0
    assert main(["import-sop", *files, "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["import-sop", *files, "--out", str(out), "--overwrite"]) == 0
