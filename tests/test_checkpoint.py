"""Checkpoint round trips through weights_only loading and the registry."""

from __future__ import annotations

import os
import signal
import stat
import tarfile
from pathlib import Path

import pytest
import torch
import torchvision

import avsep
import avsep.checkpoint as checkpoint_module
from avsep.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from avsep.faults import InputError


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
    with pytest.raises(FileNotFoundError, match="missing.pt: checkpoint not found") as missing:
        load_checkpoint(tmp_path / "missing.pt")
    assert isinstance(missing.value, CheckpointError) and isinstance(missing.value, InputError)
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)
    raw_state = tmp_path / "raw.pt"
    torch.save(avsep.create_model("avsep_unittest").state_dict(), raw_state)
    with pytest.raises(ValueError, match="raw.pt: not an avsep checkpoint"):
        load_checkpoint(raw_state)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match=r"garbage.pt: truncated or corrupt: its data is "
                                              r"not a PyTorch checkpoint's \(Unsupported"):
        load_checkpoint(garbage)
    shard = tmp_path / "shard.pt"  # e.g. a data shard given as --checkpoint
    with tarfile.open(shard, "w") as tar:
        tar.add(garbage, arcname="a.json")
    with pytest.raises(CheckpointError, match="shard.pt: not an avsep checkpoint: a file in "
                                              "torch's legacy .tar format"):
        load_checkpoint(shard)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: truncated or corrupt: the file is empty"):
        load_checkpoint(empty)


def test_truncated_checkpoints_are_named_as_such_at_any_length(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pt", avsep.create_model("avsep_unittest"), step=3)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    # torch raises RuntimeError or OSError(EINVAL) depending on where the file ends.
    for length in (10, 100, len(data) // 3, len(data) // 2, len(data) - 1):
        cut.write_bytes(data[:length])
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(cut)
        assert str(info.value) == (f"{cut}: truncated or corrupt: the archive's end is missing "
                                   f"(the file was cut short at {length} bytes)")


class _Foreign:
    """Pickles as a call of `open` (a file made on load would show the call ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_with_python_objects_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "ran"
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "avsep-checkpoint", "version": 1, "payload": _Foreign(marker)},
               foreign)
    with pytest.raises(CheckpointError, match=r"foreign.pt: not an avsep checkpoint: it holds "
                                              r"Python objects \([\w.]*open\) that are not "
                                              r"loaded, for safety"):
        load_checkpoint(foreign)
    assert not marker.exists()


def test_newer_incomplete_and_unfitting_checkpoints_are_refused(tmp_path):
    model = avsep.create_model("avsep_unittest")
    path = save_checkpoint(tmp_path / "ckpt.pt", model, step=3)
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "version": 99}, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer.pt: checkpoint version 99 is newer"):
        load_checkpoint(tmp_path / "newer.pt")
    torch.save({k: v for k, v in payload.items() if k != "state_dict"}, tmp_path / "part.pt")
    with pytest.raises(CheckpointError, match="part.pt: truncated or corrupt: an avsep "
                                              "checkpoint without its state_dict entries"):
        load_checkpoint(tmp_path / "part.pt")
    other = {k: v for k, v in payload["state_dict"].items()}
    other.pop(next(iter(other)))
    torch.save({**payload, "state_dict": other}, tmp_path / "unfit.pt")
    with pytest.raises(ValueError, match="unfit.pt: weights do not fit model 'avsep_unittest'"):
        load_checkpoint(tmp_path / "unfit.pt")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_checkpoints_get_the_usual_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "ckpt.pt", avsep.create_model("avsep_unittest"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_save_removes_what_a_killed_save_left(tmp_path, monkeypatch):
    # A real SIGKILL in the middle of torch.save (no handler can clean up after it), in a
    # forked copy of this process.
    model = avsep.create_model("avsep_unittest")
    target = tmp_path / "ckpt.pt"

    def killed(payload, f):
        f.write(b"x" * 1000)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(checkpoint_module.torch, "save", killed)
    pid = os.fork()
    if pid == 0:  # the child never returns to pytest
        try:
            save_checkpoint(target, model)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    monkeypatch.undo()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".ckpt.pt.") and left[0].endswith(".tmp")
    # Temporaries of other names, and look-alikes, are not this target's: they stay.
    others = [".best.pt.abcd1234.tmp", ".ckpt.pt.bak.abcd1234.tmp", ".ckpt.pt.abc.tmp",
              "ckpt.pt.abcd1234.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
    (tmp_path / ".ckpt.pt.0a1b2c3d.tmp").write_bytes(b"stale")  # another earlier one
    save_checkpoint(target, model, step=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt.pt", *others])
    assert read_checkpoint(target)["step"] == 5
