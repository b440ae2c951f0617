"""Model registry: `create_model(name, **overrides)` and `list_models()`.

Each registered name is a separator class plus default kwargs; overrides replace defaults,
so a small CPU demo model is e.g. `create_model("sop", ngf=16, depth=5, pretrained=False)`.

- `sop`: The Sound of Pixels at the original size (ImageNet init of the ResNet if the
  weights are found offline).
- `mhunet`: multi-head U-Net, one decoder per Solos class, complementary ratio masks.
- `spectrogram_channels`, `tfc_tdf`: the seeds' spectrogram networks (class-conditioned;
  blocks, input, output and balancing are kwargs, see `avsep.models.spectrogram_separator`).
- `htmd_net`, `conv_tasnet`, `wave_unet`: the time-domain separators of the HTMD-Net seed
  (class-conditioned, one waveform per class; see `avsep.models.time_domain`).
- `avsep_unittest`, `mhunet_unittest`: tiny random-weight models for tests and CLI smoke
  runs (seconds on a CPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from avsep.faults import UsageError
from avsep.models.mhunet import MHUNetConfig, MHUNetSeparator
from avsep.models.separator import Separator, SeparatorConfig
from avsep.models.sop import SoundOfPixels, SoundOfPixelsConfig
from avsep.models.spectrogram_separator import SpectrogramConfig, SpectrogramSeparator
from avsep.models.time_domain import TimeDomainConfig, TimeDomainSeparator

RETIRED_RESULTS = "docs/results/2026-12-07-retired-options.md"
# Options that were removed, with the value that meant "off". A checkpoint or config that
# holds one at that value still loads (the option is dropped); any other value is an error
# that points to the measurements. `ANY_VALUE`: an option that never shaped the weights
# (where they were initialised from), dropped whatever its value.
ANY_VALUE: Any = object()
RETIRED: dict[type[Separator], dict[str, Any]] = {
    SoundOfPixels: {"side_by_side": 0.0, "off_screen_loss": 0.0, "off_screen_locations": 0,
                    "output_activation": "sigmoid", "audio_backbone": "unet",
                    "weights_path": ANY_VALUE},
}


class RetiredOptionError(UsageError):
    """A model option that avsep no longer has was asked for (or a checkpoint used it)."""

@dataclass(frozen=True)
class ModelSpec:
    cls: type[Separator]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {
    "sop": ModelSpec(
        SoundOfPixels, {"pretrained": True},
        "Sound of Pixels: dilated ResNet-18, 7-level U-Net (ngf 64), K = 32, binary masks",
    ),
    "mhunet": ModelSpec(
        MHUNetSeparator, {},
        "MHU-Net: shared encoder, 13 class decoders, complementary ratio masks, MSE",
    ),
    "spectrogram_channels": ModelSpec(
        SpectrogramSeparator, {"arch": "spectrogram_channels"},
        "Spectrogram-Channels U-Net: one direct magnitude spectrogram per class, "
        "balanced L1 (M6)",
    ),
    "tfc_tdf": ModelSpec(
        SpectrogramSeparator, {"arch": "intermediate", "block": "tfc_tdf", "input": "complex"},
        "U-Net of TFC-TDF blocks on complex-as-channels spectrograms, one complex "
        "spectrogram per class",
    ),
    "htmd_net": ModelSpec(
        TimeDomainSeparator, {"arch": "htmd"},
        "HTMD-Net: Conv-TasNet masking network + Wave-U-Net denoiser (LSTM bottleneck), "
        "deep supervision, one waveform per class",
    ),
    "conv_tasnet": ModelSpec(
        TimeDomainSeparator, {"arch": "convtasnet", "stacks": 3, "layers": 8},
        "Conv-TasNet (3 stacks of 8 dilated conv blocks, N = H = 512), one waveform per class",
    ),
    "wave_unet": ModelSpec(
        TimeDomainSeparator, {"arch": "waveunet", "unet_filters": 24, "lstm": False},
        "Wave-U-Net (12 levels, 24 filters per level), one waveform per class",
    ),
    "avsep_unittest": ModelSpec(
        SoundOfPixels,
        {"num_channels": 4, "ngf": 4, "depth": 3, "vision_arch": "tiny", "pretrained": False},
        "tiny random SoP-structured model for tests",
    ),
    "mhunet_unittest": ModelSpec(
        MHUNetSeparator, {"ngf": 4, "depth": 3, "dropout": 0.0},
        "tiny random MHU-Net for tests",
    ),
}


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def model_description(name: str) -> str:
    return _spec(name).description


def _spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r} (known: {', '.join(list_models())})"
        ) from None


def model_arguments(name: str) -> list[str]:
    """The configuration fields of the registered model `name` (e.g. to see whether it
    takes `num_classes`)."""
    return [f.name for f in dataclasses.fields(_spec(name).cls.config_class)]


def retired_arguments(name: str) -> list[str]:
    """The retired options that a config of the registered model `name` may still hold."""
    return sorted(RETIRED.get(_spec(name).cls, {}))


def model_config(name: str, **overrides: Any) -> SeparatorConfig:
    """The typed configuration of the registered model `name`: its defaults with
    `overrides` replacing them. Retired options at their "off" value are dropped."""
    spec = _spec(name)
    overrides = _without_retired(spec.cls, overrides)
    known = model_arguments(name)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(
            f"model {name!r}: unknown argument(s) {', '.join(unknown)} "
            f"(known: {', '.join(known)})"
        )
    return spec.cls.config_class(**{**spec.defaults, **overrides})


def _without_retired(cls: type[Separator], kwargs: dict[str, Any]) -> dict[str, Any]:
    retired = RETIRED.get(cls, {})
    for key in sorted(set(kwargs) & set(retired)):
        if retired[key] is not ANY_VALUE and kwargs[key] != retired[key]:
            raise RetiredOptionError(
                f"model option {key}={kwargs[key]!r} was retired (measured not to help; "
                f"see {RETIRED_RESULTS}); only {retired[key]!r} is still accepted")
    return {k: v for k, v in kwargs.items() if k not in retired}


def create_model(name: str, *, initialise: bool = True, **overrides: Any) -> Separator:
    """Build the registered model `name`, with `overrides` replacing its default config.

    The returned separator records `model_name` and its `config` (`model_kwargs`), so
    `create_model(model.model_name, **model.model_kwargs)` rebuilds the architecture.
    `initialise=False` skips initialisation from outside weights (ImageNet) that the config
    may ask for: the caller loads weights itself (a checkpoint).
    """
    return _spec(name).cls(model_config(name, **overrides), name, initialise)


__all__ = [
    "MHUNetConfig", "MHUNetSeparator", "RetiredOptionError", "Separator", "SeparatorConfig",
    "SoundOfPixels", "SoundOfPixelsConfig", "SpectrogramConfig", "SpectrogramSeparator",
    "TimeDomainConfig", "TimeDomainSeparator", "create_model", "list_models",
    "model_arguments", "model_config", "model_description", "retired_arguments",
]
