"""Writes tests/data/boundary_reference.pt: fixed tiny models, fixed inputs, and what the model
boundary made of them (masks, separated waveforms, training loss, pixel-wise heat).

`tests/test_boundary_regression.py` checks the current code against this file, so a change of
the model boundary that moves any number shows up. Run from the repository root:

    .venv/bin/python tests/make_boundary_reference.py [--out PATH]

(`--out` writes elsewhere; `tests/test_boundary_regression.py` regenerates the file into a
temporary one and compares, so a script that no longer runs, or no longer makes the stored
numbers, fails the suite.)

The stored file was made where oneDNN ran its AVX2 convolution kernels: with
`ONEDNN_MAX_CPU_ISA=AVX2` this script remakes every tensor of it bit for bit (checked on an
AVX-512 machine, torch 2.11.0); with the AVX-512 kernels masks and waveforms differ in the
last bits (up to 1.2e-7) and the heat by up to 1.2e-7 of its value. Models record the constructor arguments added since as well
(at their defaults), so `kwargs` holds more keys than the stored file's.

The file was made by the code before the boundary owned its objective (separators that only
gave mask logits, the step that built targets and picked the loss); regenerate it only for a
change that is meant to move the numbers, and say so in the commit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avsep import create_model
from avsep.audio import loss_weight
from avsep.losses import MaskLoss
from avsep.masks import ground_truth_masks
from avsep.models.localization import Localizer

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
    """What the pre-boundary API made of `data` (the model in eval mode).

    The frames are given as uint8: the pre-boundary code normalised them with
    `avsep.models.vision.FrameNormalize` before the nets, which the model now does itself (and it
    refuses float frames), so the numbers are the same.
    """
    frames = data["frames"]
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
            out["pixel_energies"] = Localizer(model).pixel_energies(data["mix"], frames[:, 0])
    return out


def make_reference() -> dict:
    """The payload of the reference file: inputs, and per model its weights and outputs."""
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
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT,
                        help="the file to write (default: tests/data/boundary_reference.pt)")
    out = parser.parse_args(argv).out
    payload = make_reference()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
