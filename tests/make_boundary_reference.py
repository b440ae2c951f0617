"""Writes tests/data/boundary_reference.pt: fixed tiny models, fixed inputs, and what the model
boundary made of them (masks, separated waveforms, training loss, pixel-wise heat).

`tests/test_boundary_regression.py` checks the current code against this file, so a change of
the model boundary that moves any number shows up. Run from the repository root:

    .venv/bin/python tests/make_boundary_reference.py

The file was made by the code before the boundary owned its objective (separators that only
gave mask logits, the step that built targets and picked the loss); regenerate it only for a
change that is meant to move the numbers, and say so in the commit.
"""

from __future__ import annotations

from pathlib import Path

import torch

from avsep import create_model
from avsep.audio import loss_weight
from avsep.losses import MaskLoss
from avsep.masks import ground_truth_masks
from avsep.mixing import FrameNormalize

OUT = Path(__file__).with_name("data") / "boundary_reference.pt"
SAMPLES = 8191  # 32 STFT frames: a multiple of the tiny U-Nets' 2**3
MODELS = {"sop": "avsep_unittest", "mhunet": "mhunet_unittest"}


def inputs() -> dict[str, torch.Tensor]:
    """Two mixtures of two sources each, their uint8 frames and class indices."""
    g = torch.Generator().manual_seed(20261201)
    sources = 0.2 * torch.randn(2, 2, SAMPLES, generator=g)
    frames = torch.randint(0, 256, (2, 2, 3, 3, 48, 48), generator=g, dtype=torch.uint8)
    return {"sources": sources, "mix": sources.sum(dim=1), "frames": frames,
            "classes": torch.tensor([[0, 3], [5, 1]])}


def reference_outputs(model, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the pre-boundary API made of `data` (the model in eval mode)."""
    frames = FrameNormalize()(data["frames"])
    condition = frames if model.condition_kind == "frames" else data["classes"]
    with torch.no_grad():
        spec = model.spectrogram(data["mix"])
        logits = model.mask_logits(spec, condition)
        target = ground_truth_masks(model.warped_magnitudes(data["sources"]),
                                    spec["warped_mag"], model.mask_type, model.complementary)
        weight = loss_weight(spec["warped_mag"]) if model.weighted_loss else None
        out = {
            "masks": model.mask_activation(logits),
            "loss": MaskLoss.for_model(model)(logits.float(), target, weight),
            "separated": model.separate(data["mix"], condition),
        }
        if model.condition_kind == "frames":
            out["pixel_energies"] = model.pixel_energies(data["mix"], frames[:, 0])
    return out


def main() -> None:
    data = inputs()
    payload: dict = {"inputs": data, "models": {}}
    for key, name in MODELS.items():
        torch.manual_seed(0)
        model = create_model(name).eval()
        payload["models"][key] = {
            "name": name,
            "kwargs": model.model_kwargs,
            "state_dict": model.state_dict(),
            "outputs": reference_outputs(model, data),
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
