"""Import the original Sound of Pixels release (three state dicts) into an avsep model.

The release ships `frame_best.pth`, `sound_best.pth` and `synthesizer_best.pth`, state dicts
of the original modules:

- frame net (`ResnetDilated`): `features.<i>.*`, a Sequential of torchvision ResNet-18's
  children without avgpool/fc (0 conv1, 1 bn1, 2 relu, 3 maxpool, 4-7 layer1-4), and
  `fc.*`, the 3x3 conv 512 -> K;
- sound net (`Unet`): `bn0.*` and `unet_block.*`, nested `UnetBlock`s whose layers sit in a
  Sequential `model`: outermost [0 down conv, 1 inner block, 2 relu, 3 upsample, 4 up conv],
  middle [0 lrelu, 1 down conv, 2 bn, 3 inner block, 4 relu, 5 upsample, 6 up conv, 7 bn],
  innermost [0 lrelu, 1 down conv, 2 relu, 3 upsample, 4 up conv, 5 bn];
- synthesizer (`InnerProd`): `scale` (K,) and `bias` (1,).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from avsep.checkpoint import load_torch_file
from avsep.faults import InputError
from avsep.models import SoundOfPixels, create_model

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# Added to BatchNorm after the original was written: absent from older files, harmless.
_OPTIONAL_SUFFIX = "num_batches_tracked"
_FRAME_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3",
                   "7": "layer4"}


class SopWeightsError(InputError, ValueError):
    """Files that are not the original release's three state dicts; names the file."""


def _level_prefix(level: int) -> str:
    """Original key prefix of the Sequential of U-Net level `level` (0 = outermost)."""
    if level == 0:
        return "unet_block.model."
    return "unet_block.model.1." + "model.3." * (level - 1) + "model."


def sound_key_map(depth: int) -> dict[str, str]:
    """avsep `audio_net.*` key -> original `Unet` key, for a U-Net of `depth` levels."""
    keys = {f"audio_net.input_norm.{s}": f"bn0.{s}" for s in _BN}
    outer = _level_prefix(0)
    keys["audio_net.down.0.conv.weight"] = outer + "0.weight"
    keys["audio_net.up.0.conv.weight"] = outer + "4.weight"
    keys["audio_net.up.0.conv.bias"] = outer + "4.bias"
    for level in range(1, depth):
        p = _level_prefix(level)
        keys[f"audio_net.down.{level}.conv.weight"] = p + "1.weight"
        if level < depth - 1:
            up_conv, up_norm = "6", "7"
            for s in _BN:
                keys[f"audio_net.down.{level}.norm.{s}"] = f"{p}2.{s}"
        else:
            up_conv, up_norm = "4", "5"
        keys[f"audio_net.up.{level}.conv.weight"] = f"{p}{up_conv}.weight"
        for s in _BN:
            keys[f"audio_net.up.{level}.norm.{s}"] = f"{p}{up_norm}.{s}"
    return keys


def _frame_key(original: str) -> str | None:
    parts = original.split(".", 2)
    if parts[0] == "fc" and len(parts) == 2:
        return f"vision.projection.{parts[1]}"
    if parts[0] == "features" and len(parts) == 3 and parts[1] in _FRAME_CHILDREN:
        return f"vision.backbone.{_FRAME_CHILDREN[parts[1]]}.{parts[2]}"
    return None


def _strip_module(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a DataParallel `module.` prefix if every key has it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _sound_depth(sound: dict[str, torch.Tensor], name: str) -> int:
    if _level_prefix(0) + "0.weight" not in sound:
        raise SopWeightsError(f"{name}: not a SoP sound net (no {_level_prefix(0)}0.weight)")
    depth = 1
    while _level_prefix(depth) + "1.weight" in sound:
        depth += 1
    return depth


def convert_sop_state_dicts(
    frame: dict[str, torch.Tensor],
    sound: dict[str, torch.Tensor],
    synthesizer: dict[str, torch.Tensor],
    names: tuple[str, str, str] = ("frame net", "sound net", "synthesizer"),
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Map the original state dicts onto avsep's SoP module names.

    Returns:
        (model kwargs for `create_model("sop", ...)`, avsep state dict).

    Raises:
        SopWeightsError listing missing keys, unexpected keys and shape mismatches.
    """
    frame, sound, synthesizer = (_strip_module(s) for s in (frame, sound, synthesizer))
    frame_name, sound_name, synth_name = names
    if "scale" not in synthesizer:
        raise SopWeightsError(f"{synth_name}: not a SoP InnerProd synthesizer (no 'scale' entry)")
    depth = _sound_depth(sound, sound_name)
    kwargs: dict[str, Any] = {
        "num_channels": int(synthesizer["scale"].shape[0]),
        "ngf": int(sound[_level_prefix(0) + "0.weight"].shape[0]),
        "depth": depth,
        "vision_arch": "resnet18",
        "pretrained": False,
        "mask_type": "binary",
    }

    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    sound_map = {orig: ours for ours, orig in sound_key_map(depth).items()}
    for key, value in sound.items():
        if key in sound_map:
            mapped[sound_map[key]] = value
        else:
            unexpected.append(f"{sound_name}: {key}")
    for key, value in frame.items():
        ours = _frame_key(key)
        if ours is None:
            unexpected.append(f"{frame_name}: {key}")
        else:
            mapped[ours] = value
    for key, value in synthesizer.items():
        ours = {"scale": "synthesizer.alpha", "bias": "synthesizer.beta"}.get(key)
        if ours is None:
            unexpected.append(f"{synth_name}: {key}")
        else:
            mapped[ours] = value

    reference = create_model("sop", initialise=False, **kwargs).state_dict()
    missing = [k for k in reference if k not in mapped and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected += [f"(mapped) {k}" for k in mapped if k not in reference]
    mismatched = [
        f"{k}: file {tuple(mapped[k].shape)} vs model {tuple(reference[k].shape)}"
        for k in mapped if k in reference and mapped[k].shape != reference[k].shape
    ]
    if missing or unexpected or mismatched:
        lines = [f"cannot import SoP weights ({', '.join(names)}):"]
        for title, items in (("missing", missing), ("unexpected", unexpected),
                             ("shape mismatch", mismatched)):
            if items:
                lines.append(f"{title} ({len(items)}): " + "; ".join(items[:5])
                             + (" ..." if len(items) > 5 else "") + ".")
        raise SopWeightsError(" ".join(lines))
    for key, value in reference.items():  # e.g. num_batches_tracked of old files
        mapped.setdefault(key, value)
    return kwargs, {k: v.to(reference[k].dtype) for k, v in mapped.items()}


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    state = load_torch_file(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SopWeightsError(f"{path}: expected a state dict of tensors (the original release's "
                              "frame_best.pth, sound_best.pth or synthesizer_best.pth)")
    return state


def import_sop(
    frame_path: str | os.PathLike, sound_path: str | os.PathLike,
    synthesizer_path: str | os.PathLike,
) -> SoundOfPixels:
    """Build an avsep `sop` model (eval mode) from the three original weight files."""
    paths = [Path(p) for p in (frame_path, sound_path, synthesizer_path)]
    frame, sound, synth = (_load_state(p) for p in paths)
    kwargs, state = convert_sop_state_dicts(
        frame, sound, synth, names=(str(paths[0]), str(paths[1]), str(paths[2]))
    )
    model = create_model("sop", **kwargs)
    assert isinstance(model, SoundOfPixels)  # the class registered as "sop"
    model.load_state_dict(state, strict=True)
    return model.eval()
