"""Checkpoint round trips through weights_only loading and the registry."""

from __future__ import annotations

import pytest
import torch
import torchvision

import avsep
from avsep.checkpoint import load_checkpoint, save_checkpoint


def _inputs(batch: int = 2):
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(batch, 31 * 256, generator=g) * 0.1
    frames = torch.randint(0, 256, (batch, 2, 3, 3, 48, 48), generator=g, dtype=torch.uint8)
    return mix, frames


def _trained_a_little(model: torch.nn.Module, condition: torch.Tensor, mix: torch.Tensor):
    """One SGD step so that weights and BatchNorm statistics differ from a fresh model."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    sources = torch.stack([mix, 0.5 * mix], dim=1)
    model(sources.sum(dim=1), sources, condition).loss.backward()
    optimizer.step()
    return optimizer


@pytest.mark.parametrize("name", ["avsep_unittest", "mhunet_unittest"])
def test_save_then_weights_only_load_gives_identical_outputs(tmp_path, name):
    model = avsep.create_model(name)
    mix, frames = _inputs()
    condition = frames if model.condition_kind == "frames" else torch.tensor([[0, 5], [7, 2]])
    optimizer = _trained_a_little(model, condition, mix)
    path = save_checkpoint(tmp_path / "run" / "ckpt.pt", model, step=17,
                           config={"train": {"lr": 0.1}}, optimizer=optimizer.state_dict(),
                           best_val_loss=0.25)
    raw = torch.load(path, weights_only=True)  # only plain types inside
    assert raw["model_name"] == name and raw["step"] == 17
    assert list(tmp_path.joinpath("run").iterdir()) == [path]  # no temporary file left

    loaded, payload = load_checkpoint(path)
    assert not loaded.training
    assert payload["config"] == {"train": {"lr": 0.1}} and payload["best_val_loss"] == 0.25
    model.eval()
    assert torch.equal(model.separate(mix, condition), loaded.separate(mix, condition))
    restored = torch.optim.SGD(loaded.parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(payload["optimizer"])
    assert torch.equal(restored.state_dict()["state"][0]["momentum_buffer"],
                       optimizer.state_dict()["state"][0]["momentum_buffer"])


def test_saving_over_an_existing_checkpoint_replaces_it(tmp_path):
    path = tmp_path / "ckpt.pt"
    model = avsep.create_model("avsep_unittest")
    save_checkpoint(path, model, step=1)
    save_checkpoint(path, model, step=2)
    assert load_checkpoint(path)[1]["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_loading_never_looks_for_imagenet_weights_again(tmp_path, monkeypatch):
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    monkeypatch.setenv("AVSEP_RESNET18_WEIGHTS", str(weights))
    model = avsep.create_model("sop", ngf=4, depth=3, num_channels=4)
    path = save_checkpoint(tmp_path / "sop.pt", model)
    weights.unlink()  # loading would fail if it looked for the weights again
    loaded, _ = load_checkpoint(path)
    assert loaded.model_kwargs["pretrained"] is True  # recorded as built
    assert torch.equal(loaded.vision.backbone.conv1.weight, model.vision.backbone.conv1.weight)


def test_only_plain_types_are_accepted(tmp_path):
    model = avsep.create_model("avsep_unittest")
    with pytest.raises(TypeError, match=r"checkpoint.config.when is a .*object"):
        save_checkpoint(tmp_path / "x.pt", model, config={"when": object()})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", model, step=1, state_dict={})
    assert not list(tmp_path.iterdir())


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    raw_state = tmp_path / "raw.pt"
    torch.save(avsep.create_model("avsep_unittest").state_dict(), raw_state)
    with pytest.raises(ValueError, match="raw.pt: not an avsep checkpoint"):
        load_checkpoint(raw_state)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt: not a readable checkpoint"):
        load_checkpoint(garbage)
