"""A model ready for inference: the separator, its clip geometry and its device.

The clip geometry (window length, frames per clip, their stride, image size) is what the
model was trained with: it is read from the checkpoint's training config (`data.clip`, with
`avsep.run_config.run_config_from_dict`), and defaults to the Sound of Pixels values for a
model given directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from avsep.checkpoint import load_checkpoint, training_config
from avsep.devices import resolve_device
from avsep.geometry import ClipSpec
from avsep.models import Separator


@dataclass
class InferenceModel:
    """A separator in eval mode on `device`, with the clip geometry it was trained with.

    Attributes:
        model: the separator.
        spec: window length (`clip_samples`), `num_frames`, `frame_stride`, `fps`,
            `image_size` of its visual input; `sample_rate` is the model's.
        device: where it runs.
        source: the checkpoint path, or "<model>" when given as an object.
    """

    model: Separator
    spec: ClipSpec
    device: torch.device
    source: str


def prepare_model(
    model: Separator | str | Path | InferenceModel,
    device: str | torch.device = "auto",
    spec: ClipSpec | None = None,
) -> InferenceModel:
    """Load a checkpoint (or take a model object) and put it in eval mode on `device`.

    Args:
        model: a checkpoint path, a separator, or an already prepared model (returned as is
            unless `spec` is given).
        device: "auto", "cpu", "cuda", ...
        spec: clip geometry overriding the checkpoint's.

    Raises:
        CheckpointError: the checkpoint cannot be loaded, or (without `spec`) its training
            config cannot be read back (`avsep.checkpoint.training_config`).
    """
    if isinstance(model, InferenceModel):
        return model if spec is None else dataclasses.replace(model, spec=spec)
    resolved = resolve_device(device)
    if isinstance(model, (str, Path)):
        separator, payload = load_checkpoint(model, map_location="cpu")
        if spec is None:
            trained = training_config(payload, model).data.clip
            spec = dataclasses.replace(trained, sample_rate=separator.sample_rate)
        source = str(model)
    else:
        separator = model
        spec = spec or ClipSpec(sample_rate=separator.sample_rate)
        source = "<model>"
    if spec.sample_rate != separator.sample_rate:
        raise ValueError(
            f"clip spec sample rate {spec.sample_rate} Hz differs from the model's "
            f"{separator.sample_rate} Hz"
        )
    return InferenceModel(separator.to(resolved).eval(), spec, resolved, source)
