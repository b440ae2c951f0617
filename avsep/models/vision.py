"""The SoP vision net: a dilated ResNet-18 mapping frames to K visual channels per location.

ResNet-18 without avgpool/fc, with only layer4 dilated (its stride-2 convs set to stride 1;
its first 3x3 conv keeps dilation 1, the later 3x3 convs get dilation 2, exactly as the
original's `_nostride_dilate`), so the output stride is 16 (224x224 -> 14x14). A 3x3 conv
("projection", the original's `fc`) maps 512 -> K channels.
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torchvision
from torch import nn

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ImageNet (IMAGENET1K_V1) weights
WEIGHTS_ENV = "AVSEP_RESNET18_WEIGHTS"
# The statistics torchvision's ImageNet weights were trained with (RGB, [0, 1] scale).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameNormalize(nn.Module):
    """uint8 RGB frames (..., 3, T, H, W) -> float, scaled to [0, 1] and ImageNet-normalised."""

    mean: torch.Tensor  # buffers (register_buffer)
    std: torch.Tensor

    def __init__(self, mean: tuple[float, float, float] = IMAGENET_MEAN,
                 std: tuple[float, float, float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(3, 1, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() < 4 or frames.shape[-4] != 3:
            raise ValueError(f"frames must be (..., 3, T, H, W), got shape {tuple(frames.shape)}")
        return (frames.float() / 255.0 - self.mean) / self.std


class VisualFeatures(NamedTuple):
    """Outputs of `DilatedResNetVision` for one clip of frames per batch item.

    pooled: (B, K) activation (sigmoid by default) of the max over time, then the max (or
        mean) over (height, width), then the optional BatchNorm: the SoP visual vector.
    spatial: (B, K, h, w) the same of the max over time: one K-vector per location.
    """

    pooled: torch.Tensor
    spatial: torch.Tensor


class ImageNetWeightsError(RuntimeError):
    """The ImageNet weights that `pretrained=True` asks for cannot be had."""


def _weights_help() -> str:
    cache = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    return (f"place {RESNET18_FILE} (from {url}) at {cache}, or name a copy with "
            f"${WEIGHTS_ENV}; or set model.kwargs.pretrained=false to train from random weights")


def load_imagenet_state(explicit: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet ResNet-18 state dict (torchvision's IMAGENET1K_V1) for `pretrained=True`.

    A file named explicitly (`explicit`, else $AVSEP_RESNET18_WEIGHTS) must exist and load.
    Otherwise torchvision's own mechanism is used: its cache (torch.hub.get_dir()/checkpoints,
    i.e. $TORCH_HOME), and a download into it when the machine is online.

    Raises:
        ImageNetWeightsError: the named file is missing or unreadable, or the weights are
            neither cached nor downloadable; the message says which file to put where.
    """
    named = explicit or os.environ.get(WEIGHTS_ENV)
    if named:
        where = "weights_path" if explicit else f"${WEIGHTS_ENV}"
        path = Path(named)
        if not path.is_file():
            raise ImageNetWeightsError(f"{path} (named by {where}) does not exist")
        try:
            state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu",
                                                        weights_only=True)
            return state
        except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
            raise ImageNetWeightsError(
                f"{path} (named by {where}) is not a readable state dict: {exc}") from None
    try:
        downloaded: dict[str, torch.Tensor] = (
            torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False))
        return downloaded
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:  # URLError is an OSError
        raise ImageNetWeightsError(
            f"the ImageNet ResNet-18 weights (pretrained=true, as the original) are not in "
            f"torchvision's cache and could not be downloaded ({exc}): {_weights_help()}"
        ) from None


def _dilate_layer4(layer: nn.Sequential) -> None:
    """Remove layer4's stride and dilate its 3x3 convs (the original's dilate_scale=16)."""
    for module in layer.modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if module.stride == (2, 2):
            module.stride = (1, 1)
            # The strided conv keeps dilation 1 (dilate // 2 in the original).
        elif module.kernel_size == (3, 3):
            module.dilation = (2, 2)
            module.padding = (2, 2)


class DilatedResNet18(nn.Module):
    """ResNet-18 trunk (conv1 .. layer4) with layer4 dilated: (N, 3, H, W) -> (N, C, H/16, W/16),
    C = 512 * width.

    Args:
        width: multiplier of every layer's channels (1.0: the original ResNet-18, 64 .. 512
            channels). A narrower trunk (0.5: 32 .. 256 channels, about a quarter of the
            multiply-adds and parameters) is for training from scratch on a small budget;
            ImageNet weights exist only for 1.0.

    Parameter names follow torchvision's ResNet, so ImageNet state dicts load directly.
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if width == 1.0:
            resnet = torchvision.models.resnet18(weights=None)
        else:
            resnet = _narrow_resnet18(width)
        self.conv1, self.bn1, self.relu, self.maxpool = (
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        )
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        )
        self.out_channels = resnet.layer4[-1].conv2.out_channels
        _dilate_layer4(self.layer4)

    def load_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision ResNet-18 state dict (its fc is dropped)."""
        self.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")},
                             strict=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        features: torch.Tensor = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return features


def _narrow_resnet18(width: float) -> torchvision.models.ResNet:
    """torchvision's ResNet-18 with every layer's channels times `width` (at least 8), built
    from its own BasicBlock and initialised as torchvision initialises ResNets."""
    from torchvision.models.resnet import BasicBlock, conv1x1

    if not 0.0 < width <= 1.0:
        raise ValueError(f"vision width must be in (0, 1], got {width}")
    planes = [max(8, round(c * width)) for c in (64, 128, 256, 512)]
    resnet = torchvision.models.resnet18(weights=None)
    resnet.conv1 = nn.Conv2d(3, planes[0], 7, stride=2, padding=3, bias=False)
    resnet.bn1 = nn.BatchNorm2d(planes[0])
    inplanes = planes[0]
    for index, (out, stride) in enumerate(zip(planes, (1, 2, 2, 2)), start=1):
        downsample = None
        if stride != 1 or inplanes != out:
            downsample = nn.Sequential(conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))
        layer = nn.Sequential(BasicBlock(inplanes, out, stride, downsample), BasicBlock(out, out))
        setattr(resnet, f"layer{index}", layer)
        inplanes = out
    resnet.fc = nn.Linear(inplanes, 1000)
    for module in resnet.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return resnet


class TinyBackbone(nn.Module):
    """A few-thousand-parameter stand-in for the ResNet (output stride 16) for fast tests."""

    out_channels = 32

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, 8, 16, 32, 32]
        for c_in, c_out in itertools.pairwise(channels):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.layers(images)
        return features


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "relu": torch.relu, "none": lambda x: x}


class DilatedResNetVision(nn.Module):
    """Frames -> K visual channels, pooled (SoP vector) and per location.

    Args:
        num_channels: K, the number of visual/audio channels the synthesizer combines.
        arch: "resnet18" (the original) or "tiny" (test-only stand-in).
        pretrained: initialise the ResNet from ImageNet weights, as the original does (see
            `load_imagenet_state`: torchvision's cache or download); when they cannot be
            had, construction fails with `ImageNetWeightsError` saying what to do.
        weights_path: an explicit ImageNet ResNet-18 state-dict file.
        activation: applied to the pooled and the per-location features: "sigmoid" (the
            original's default `img_activation`), "relu" or "none" (other choices the
            original offers). Without ImageNet features a sigmoid tends to saturate to the
            same 0/1 vector for every image early in training (no gradient reaches the
            vision net any more); "none" avoids that when training from scratch.
        norm: "none" (the original) or "batch": a BatchNorm over the K channels of the
            pooled vectors, after the activation. From scratch, the pooled vectors of
            different instruments first differ by little next to what they share, so the
            synthesizer sees nearly the same vector for every source; centring and scaling
            them across the batch makes those differences count from the first steps
            (whether that pays depends on the budget: docs/results/
            2026-12-07-demo-preset-reasons.md). Per-location vectors are normalised
            with the same running statistics, so localization compares locations on the
            scale training used.
        pooling: "max" (the original's default) or "mean" (its "avgpool") over the
            locations (after the max over time). With "mean" and a BatchNorm, the pooled
            vector is exactly the mean of the normalised location vectors (the norm is
            affine per channel), so localization reads the parts of what separation uses.
        width: channel multiplier of the ResNet-18 (1.0: the original; see
            `DilatedResNet18`).

    Shapes:
        forward(frames (B, 3, T, H, W)) -> VisualFeatures(pooled (B, K), spatial (B, K, h, w))
        with h = ceil(H / 16), w = ceil(W / 16) (14 x 14 for 224 x 224).
    """

    def __init__(
        self,
        num_channels: int = 32,
        arch: str = "resnet18",
        pretrained: bool = False,
        weights_path: str | None = None,
        activation: str = "sigmoid",
        norm: str = "none",
        pooling: str = "max",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown visual activation {activation!r} "
                             f"(known: {', '.join(_ACTIVATIONS)})")
        if norm not in ("none", "batch"):
            raise ValueError(f"unknown visual norm {norm!r} (known: 'none', 'batch')")
        if pooling not in ("max", "mean"):
            raise ValueError(f"unknown visual pooling {pooling!r} (known: 'max', 'mean')")
        self.pooling = pooling
        self.activation = _ACTIVATIONS[activation]
        self.norm = nn.BatchNorm1d(num_channels) if norm == "batch" else None
        if width != 1.0 and (arch != "resnet18" or pretrained):
            raise ValueError(f"vision width {width} needs arch 'resnet18' trained from scratch "
                             "(pretrained=False): ImageNet weights exist for width 1.0 only")
        if arch == "resnet18":
            self.backbone: nn.Module = DilatedResNet18(width)
            if pretrained:
                self._init_from_imagenet(weights_path)
        elif arch == "tiny":
            self.backbone = TinyBackbone()
        else:
            raise ValueError(f"unknown vision arch {arch!r} (known: 'resnet18', 'tiny')")
        self.projection = nn.Conv2d(self.backbone.out_channels, num_channels, 3, padding=1)
        self.num_channels = num_channels

    def _init_from_imagenet(self, weights_path: str | None) -> None:
        state = load_imagenet_state(weights_path)
        assert isinstance(self.backbone, DilatedResNet18)  # only ResNet-18 has ImageNet weights
        try:
            self.backbone.load_imagenet(state)
        except (RuntimeError, KeyError) as exc:
            raise ImageNetWeightsError(
                f"the ImageNet weights do not fit ResNet-18 ({' '.join(str(exc).split())[:300]})"
            ) from None

    def feature_map(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw projected features before pooling and sigmoid, (B, K, T, h, w)."""
        if frames.dim() != 5 or frames.shape[1] != 3:
            raise ValueError(
                f"vision input: expected frames (batch, 3, time, height, width), "
                f"got shape {tuple(frames.shape)}"
            )
        b, c, t, h, w = frames.shape
        images = frames.transpose(1, 2).reshape(b * t, c, h, w)
        features = self.image_features(images)
        return features.reshape(b, t, *features.shape[1:]).transpose(1, 2)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Raw projected features of single images, (M, 3, H, W) -> (M, K, h, w).

        Every image goes through the nets on its own (there is no batch statistic in eval
        mode), so features computed once per frame can be reused by every clip that shows
        the frame (`avsep.inference.separate` does, for overlapping windows).
        """
        features: torch.Tensor = self.projection(self.backbone(images))
        return features

    def forward(self, frames: torch.Tensor) -> VisualFeatures:
        return self.pool_feature_map(self.feature_map(frames))

    def pool_feature_map(self, features: torch.Tensor) -> VisualFeatures:
        """`VisualFeatures` of raw features (B, K, T, h, w) (`feature_map`'s output)."""
        over_time = features.amax(dim=2)
        # Activation after pooling, as the original (for max they commute: all are monotonic).
        pooled = self.activation(self._pool(over_time))
        spatial = self.activation(over_time)
        if self.norm is not None:
            pooled = self.norm(pooled)
            spatial = self._normalize_locations(spatial)
        return VisualFeatures(pooled=pooled, spatial=spatial)

    def _pool(self, over_time: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) -> (B, K), the max or mean over locations (`pooling`)."""
        return over_time.amax(dim=(2, 3)) if self.pooling == "max" else over_time.mean(dim=(2, 3))

    def _normalize_locations(self, spatial: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) -> the same, normalised with the pooled vectors' running statistics
        (batch statistics of single locations would differ from the pooled ones training saw)."""
        norm = self.norm
        # Called only with a norm (forward checks); BatchNorm1d tracks running statistics by
        # default, so they exist.
        assert norm is not None and norm.running_var is not None
        assert norm.running_mean is not None
        shape = (1, -1, 1, 1)
        scale = (norm.running_var + norm.eps).rsqrt() * norm.weight
        return (spatial - norm.running_mean.view(shape)) * scale.view(shape) + norm.bias.view(shape)
