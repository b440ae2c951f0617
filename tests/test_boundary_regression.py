"""The model boundary against stored outputs (tests/make_boundary_reference.py made them with
fixed tiny models and inputs): masks, separated waveforms, the training loss and the
pixel-wise heat must not move when the code around the nets is reorganised. The script
itself must still make the stored file (else it could not be regenerated when a change is
meant to move the numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from make_boundary_reference import main as make_boundary_reference

from avsep import create_model
from avsep.models.localization import Localizer

REFERENCE = Path(__file__).with_name("data") / "boundary_reference.pt"
# Masks lie in [0, 1]; float32 convolutions differ by ~1e-5 between CPU kernels (a mask of
# the stored file moved by 1.3e-5 on another Xeon), a moved boundary by far more.
TOLERANCES = {
    "loss": {"rtol": 1e-5, "atol": 1e-7},
    "masks": {"rtol": 1e-4, "atol": 1e-4},
    "separated": {"rtol": 1e-4, "atol": 1e-6},
    "pixel_energies": {"rtol": 1e-4, "atol": 1e-6},
}


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(REFERENCE, weights_only=True)


def _model(entry: dict):
    model = create_model(entry["name"], **entry["kwargs"]).eval()
    model.load_state_dict(entry["state_dict"])
    return model


@pytest.mark.parametrize("key", ["sop", "mhunet"])
def test_the_boundary_gives_the_stored_outputs(reference, key):
    entry, data = reference["models"][key], reference["inputs"]
    model = _model(entry)
    condition = data["frames"] if model.condition_kind == "frames" else data["classes"]
    expected = entry["outputs"]
    with torch.no_grad():
        objective = model(data["mix"], data["sources"], condition)
        separated = model.separate(data["mix"], condition)
        from_outputs = model.reconstruct(objective.outputs, objective.spec, data["mix"].shape[1])
    torch.testing.assert_close(objective.loss, expected["loss"], **TOLERANCES["loss"])
    torch.testing.assert_close(model.mask_activation(objective.outputs), expected["masks"],
                               **TOLERANCES["masks"])
    torch.testing.assert_close(separated, expected["separated"], **TOLERANCES["separated"])
    # Validation rebuilds the waveforms from the training pass's outputs (nets run once).
    torch.testing.assert_close(from_outputs, expected["separated"], **TOLERANCES["separated"])
    if "pixel_energies" in expected:
        heat = Localizer(model).pixel_energies(data["mix"], data["frames"][:, 0])
        torch.testing.assert_close(heat, expected["pixel_energies"],
                                   **TOLERANCES["pixel_energies"])


def test_the_reference_file_is_what_its_script_describes(reference):
    # A guard against regenerating the file with other inputs by accident.
    data = reference["inputs"]
    assert data["mix"].shape == (2, 8191) and data["frames"].dtype == torch.uint8
    torch.testing.assert_close(data["mix"], data["sources"].sum(dim=1))
    assert {k: e["name"] for k, e in reference["models"].items()} == {
        "sop": "avsep_unittest", "mhunet": "mhunet_unittest"}


def test_the_script_regenerates_the_stored_file(reference, tmp_path):
    # The script run as its command line would, into a temporary file: it must still run
    # against the current model API and make what is stored. Inputs and weights come from
    # seeded generators (float32 draws may differ in the last bits between CPUs' vector
    # paths); the outputs move between CPU kernels as in the test above.
    out = tmp_path / "boundary_reference.pt"
    with torch.random.fork_rng():  # the script seeds the global generator
        make_boundary_reference(["--out", str(out)])
    fresh = torch.load(out, weights_only=True)
    assert fresh.keys() == reference.keys()
    assert fresh["inputs"].keys() == reference["inputs"].keys()
    for name, expected in reference["inputs"].items():
        _assert_same(fresh["inputs"][name], expected, f"inputs.{name}", rtol=1e-5, atol=1e-6)
    assert fresh["models"].keys() == reference["models"].keys()
    for key, stored in reference["models"].items():
        entry = fresh["models"][key]
        assert entry.keys() == stored.keys()
        assert entry["name"] == stored["name"]
        # Stored kwargs predate arguments added since (at their defaults): the same model.
        assert create_model(stored["name"], **stored["kwargs"]).model_kwargs == entry["kwargs"]
        assert entry["state_dict"].keys() == stored["state_dict"].keys()
        for name, expected in stored["state_dict"].items():
            _assert_same(entry["state_dict"][name], expected, f"{key}.state_dict.{name}",
                         rtol=1e-5, atol=1e-6)
        assert entry["outputs"].keys() == stored["outputs"].keys()
        for name, expected in stored["outputs"].items():
            _assert_same(entry["outputs"][name], expected, f"{key}.outputs.{name}",
                         **TOLERANCES[name])


def _assert_same(actual: torch.Tensor, expected: torch.Tensor, what: str, **tolerance) -> None:
    """Same dtype and shape; integer tensors equal, floating ones within `tolerance`."""
    assert (actual.dtype, actual.shape) == (expected.dtype, expected.shape), what
    if expected.is_floating_point():
        torch.testing.assert_close(actual, expected, **tolerance, msg=lambda m: f"{what}: {m}")
    else:
        assert torch.equal(actual, expected), what
