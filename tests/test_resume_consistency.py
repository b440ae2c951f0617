"""Resuming a run: which settings may change, and what a refused or failed resume leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from avsep import create_model
from avsep.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from avsep.cli import main as cli_main
from avsep.config import ConfigError, to_dict
from avsep.faults import InputError
from avsep.run_config import FLAT_CLIP_KEYS, RunConfig
from avsep.training import loop as loop_module
from avsep.training import train
from avsep.training.optim import build_optimizer, build_scheduler
from avsep.training.resume import RESUME_SAFE, ResumeConfigError, resume_changes
from tests.test_train import TINY_OVERRIDES, tiny_config


def _flat_keys(tree: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            keys |= _flat_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_every_safe_key_is_a_setting_and_the_rest_are_refused():
    # A misspelt entry would silently refuse the setting it meant to allow.
    settings = _flat_keys(to_dict(RunConfig())) | {"model.kwargs.pretrained"}
    assert RESUME_SAFE <= settings, sorted(RESUME_SAFE - settings)
    for refused in ("model.name", "data.clip.image_size", "data.num_sources", "data.mixing",
                    "optim.optimizer", "optim.momentum", "train.seed", "train.batch_size",
                    "train.checkpoint_every"):
        assert refused in settings and refused not in RESUME_SAFE


def test_resume_changes_compare_the_built_model_and_default_missing_settings():
    config = tiny_config(Path("shards"))
    model = create_model(config.model.name, **config.model.kwargs)
    recorded = to_dict(config)
    del recorded["data"]["fixed_mixtures"]  # a setting added after the checkpoint
    # The layout of earlier configs: the clip geometry flat under `data`, and a retired
    # option at its default.
    clip = recorded["data"].pop("clip")
    recorded["data"].update({k: clip[k] for k in FLAT_CLIP_KEYS}, silent_sources=0)
    kwargs = dict(model.model_kwargs)
    del kwargs["audio_gate_locality"]  # a model argument added after the checkpoint
    payload = {"model_name": model.model_name, "model_kwargs": kwargs, "config": recorded}
    assert resume_changes(config, model, payload) == {}
    changed = tiny_config(Path("elsewhere"), "model.kwargs.ngf=4", "optim.lr_sound=0.5",
                          "data.fixed_mixtures=3", "data.clip.image_size=48")
    other = create_model(changed.model.name, **changed.model.kwargs)
    assert resume_changes(changed, other, payload) == {
        "model.kwargs.ngf": (8, 4), "optim.lr_sound": (0.001, 0.5),
        "data.fixed_mixtures": (0, 3), "data.clip.image_size": (32, 48),
        "data.path": ("shards", "elsewhere")}
    # A setting this avsep does not know, or a retired one in use, is not passed over.
    for unknown in ({"removed_setting": 3}, {"off_screen_audio": 0.5}):
        payload["config"] = {**recorded, "data": {**recorded["data"], **unknown}}
        with pytest.raises(ConfigError, match=next(iter(unknown))):
            resume_changes(config, model, payload)


def test_refused_resume_changes_nothing_and_a_corrupt_checkpoint_is_one_line(
        prepared_tiny, tmp_path, capsys):
    run_dir = tmp_path / "run"
    common = ["train", "--dataset", "solos", "--data", str(prepared_tiny["solos"]),
              "--run-dir", str(run_dir),
              *[arg for item in TINY_OVERRIDES + ["train.steps_per_epoch=2",
                                                  "train.checkpoint_every=2"]
                for arg in ("--set", item)]]
    assert cli_main(common) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}

    # The model, the clip geometry and the seed cannot change; the lr could, but is not
    # applied either when anything is refused. (`data.image_size`, the clip key's earlier
    # name, still sets data.clip.image_size.)
    code = cli_main(common + ["--set", "model.kwargs.ngf=16", "--set", "data.image_size=48",
                              "--set", "train.seed=7", "--set", "optim.lr_sound=0.01"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot resume "), err
    for named in ("model.kwargs.ngf 8 -> 16", "data.clip.image_size 32 -> 48",
                  "train.seed 1234 -> 7", "another --run-dir"):
        assert named in err
    assert "lr_sound" not in err
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before

    # A checkpoint cut short (a full disk, a killed copy): one line naming the file.
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(before["checkpoint.pt"][: len(before["checkpoint.pt"]) // 2])
    code = cli_main(common)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and "internal" not in err, err
    assert err.startswith(f"error: cannot resume from {checkpoint}: truncated or corrupt: "
                          "the archive's end is missing")
    assert "Restore" in err and "delete it" in err and f"train.init_from={run_dir / 'best.pt'}" in err
    assert (run_dir / "config.yaml").read_bytes() == before["config.yaml"]


def test_a_checkpoint_without_training_state_is_not_resumed(prepared_tiny, tmp_path):
    config = tiny_config(prepared_tiny["solos"])
    save_checkpoint(tmp_path / "checkpoint.pt", create_model(config.model.name,
                                                             **config.model.kwargs))
    with pytest.raises(CheckpointError, match="holds no training state") as info:
        train(config, tmp_path, progress=False)
    assert isinstance(info.value, InputError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_resume_applies_new_learning_rates_and_milestones_as_a_fresh_run_has_them(
        prepared_tiny, tmp_path, monkeypatch, capsys):
    # Milestones at steps 2 and 6; stopped at step 4 (after the first).
    base = ["train.epochs=4", "train.steps_per_epoch=2", "train.checkpoint_every=2",
            "optim.lr_milestones=[1, 3]", "optim.lr_decay=0.5"]
    train(tiny_config(prepared_tiny["solos"], *base), tmp_path, progress=False, until_step=4)
    # Resumed with other rates and milestones at steps 2, 4 (the resume's own step) and 6.
    new = tiny_config(prepared_tiny["solos"], *base, "optim.lr_sound=0.01",
                      "optim.lr_frame=0.002", "optim.lr_milestones=[1, 2, 3]")
    seen: dict[int, list[float]] = {}
    real_step = loop_module._Run._optimizer_step

    def spy(self, batch):
        assert self.scheduler.last_epoch == self.step
        seen[self.step] = [group["lr"] for group in self.optimizer.param_groups]
        return real_step(self, batch)

    monkeypatch.setattr(loop_module._Run, "_optimizer_step", spy)
    capsys.readouterr()
    train(new, tmp_path, progress=False)
    assert sorted(seen) == [4, 5, 6, 7]

    # What a run of the new config started from scratch has at those steps (the
    # scheduler alone decides the rates).
    fresh_optimizer = build_optimizer(create_model(new.model.name, **new.model.kwargs), new)
    fresh = build_scheduler(fresh_optimizer, new)
    expected = {}
    for step in range(8):
        expected[step] = [group["lr"] for group in fresh_optimizer.param_groups]
        fresh_optimizer.step()
        fresh.step()
    assert {step: seen[step] for step in seen} == {step: expected[step] for step in seen}
    names = [group["name"] for group in fresh_optimizer.param_groups]
    assert dict(zip(names, seen[4]))["sound"] == 0.01 * 0.5 * 0.5  # two milestones passed

    _, state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 8
    assert state["scheduler"]["base_lrs"] == [
        {"frame": 0.002, "synthesizer": 0.001, "sound": 0.01}[name] for name in names]
    assert state["config"]["optim"]["lr_sound"] == 0.01
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["optim"]["lr_sound"] == 0.01 and saved["optim"]["lr_milestones"] == [1, 2, 3]
    history = [json.loads(line)
               for line in (tmp_path / "config_history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["step"] == 4
    assert history[0]["changed"] == {
        "optim.lr_frame": {"old": 0.001, "new": 0.002},
        "optim.lr_milestones": {"old": [1, 3], "new": [1, 2, 3]},
        "optim.lr_sound": {"old": 0.001, "new": 0.01}}
    assert ("resume: changed settings" in capsys.readouterr().err)
    # The new values are now the run's: only what differs from them is named.
    with pytest.raises(ResumeConfigError, match=r"changed settings: optim.momentum 0.9 -> 0.5 "
                                                r"\(the checkpoint"):
        train(tiny_config(prepared_tiny["solos"], *base, "optim.lr_sound=0.01",
                          "optim.lr_frame=0.002", "optim.lr_milestones=[1, 2, 3]",
                          "optim.momentum=0.5"), tmp_path, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 8
