"""The run config: one typed tree from a preset to a checkpoint and back, configs of earlier
versions read by one rule, and the sample rate checked before training starts."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from avsep.cli import main as cli_main
from avsep.config import ConfigError, to_dict
from avsep.geometry import SAMPLE_RATE, ClipSpec
from avsep.presets import preset_names, resolve_preset
from avsep.run_config import (
    FLAT_CLIP_KEYS,
    RETIRED_MEASUREMENT,
    RunConfig,
    load_run_config,
    run_config_from_dict,
)
from avsep.shard_format import ShardFormatError
from avsep.training import loop as loop_module
from avsep.training import train
from tests.test_train import TINY_OVERRIDES, tiny_config

OLD_LAYOUT = {"data": {"image_size": 96, "num_frames": 2, "frame_stride": 5,
                       "clip_samples": 32767, "resize_short_side": 100, "color_jitter": 0.5}}


def test_every_preset_reads_back_from_what_it_records():
    for name in preset_names():
        config = load_run_config(resolve_preset(name))
        recorded = json.loads(json.dumps(to_dict(config)))  # what a checkpoint keeps
        assert run_config_from_dict(recorded) == config, name
        assert "clip" in recorded["data"] and not FLAT_CLIP_KEYS & set(recorded["data"])


def test_the_clip_is_a_clip_spec_set_by_its_nested_keys():
    config = load_run_config(None, ["data.clip.image_size=96", "data.clip.num_frames=2"])
    assert config.data.clip == ClipSpec(image_size=96, num_frames=2)
    assert run_config_from_dict(to_dict(config)).data.clip == config.data.clip
    assert run_config_from_dict(None).data.clip == ClipSpec() == RunConfig().data.clip
    with pytest.raises(ConfigError, match="data.clip.image_sise"):
        load_run_config(None, ["data.clip.image_sise=96"])


def test_flat_clip_keys_of_earlier_configs_mean_the_nested_ones(tmp_path):
    expected = ClipSpec(image_size=96, num_frames=2, frame_stride=5, clip_samples=32767,
                        resize_short_side=100, color_jitter=0.5)
    # A checkpoint's recorded config, a user's YAML file and --set overrides alike.
    assert run_config_from_dict(OLD_LAYOUT).data.clip == expected
    preset = tmp_path / "mine.yaml"
    preset.write_text(yaml.safe_dump(OLD_LAYOUT))
    assert load_run_config(preset).data.clip == expected
    overrides = [f"data.{key}={value}" for key, value in OLD_LAYOUT["data"].items()]
    assert load_run_config(None, overrides).data.clip == expected
    # An override by the earlier name replaces the preset's nested value, in order.
    assert load_run_config(resolve_preset("demo"), ["data.image_size=64"]).data.clip.image_size == 64
    # Both names with the same value are one setting; with different values, an error.
    both = {"data": {"image_size": 96, "clip": {"image_size": 96}}}
    assert run_config_from_dict(both).data.clip.image_size == 96
    both["data"]["clip"]["image_size"] = 64
    with pytest.raises(ConfigError, match="data.image_size=96 and data.clip.image_size=64"):
        run_config_from_dict(both)


def test_retired_options_are_dropped_at_their_default_and_refused_otherwise():
    for key, off in (("silent_sources", 0), ("off_screen_audio", 0.0), ("off_screen_noise", 0)):
        assert run_config_from_dict({"data": {key: off}}) == RunConfig()
        assert load_run_config(None, [f"data.{key}={off}"]) == RunConfig()
        with pytest.raises(ConfigError, match=f"data.{key}=1: this option was retired") as error:
            run_config_from_dict({"data": {key: 1}})
        assert RETIRED_MEASUREMENT in str(error.value)
        with pytest.raises(ConfigError, match="retired"):
            load_run_config(None, [f"data.{key}=0.5"])


def test_a_recorded_config_is_checked_like_a_preset():
    # `avsep import-sop` records where the weights came from: provenance, not a setting.
    assert run_config_from_dict({"imported_from": ["a.pth"]}) == RunConfig()
    assert run_config_from_dict({}) == run_config_from_dict(None) == RunConfig()
    with pytest.raises(ConfigError, match="unknown config key data.removed_setting"):
        run_config_from_dict({"data": {"removed_setting": 3}})
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer"):
        run_config_from_dict({"train": {"batch_size": "eighty"}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        run_config_from_dict(["data"])  # type: ignore[arg-type]


def test_typed_lists_are_checked():
    config = load_run_config(None, ["data.curriculum=[[0, 2], [15, 3]]",
                                    "optim.lr_milestones=[1, 2]"])
    assert config.data.curriculum == [(0, 2), (15, 3)] and config.optim.lr_milestones == [1, 2]
    with pytest.raises(ConfigError, match=r"data.curriculum\[0\]: expected 2 items"):
        load_run_config(None, ["data.curriculum=[[0, 2, 4]]"])
    with pytest.raises(ConfigError, match=r"optim.lr_milestones\[0\]: expected an integer"):
        load_run_config(None, ["optim.lr_milestones=[ten]"])


# ------------------------------------------------------------------------------ sample rate
def _with_header_rate(shard: Path, rate: int) -> None:
    """Rewrite the local shard `shard` with every sample's json saying `rate` Hz."""
    members = []
    with tarfile.open(shard) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read()
            if info.name.endswith(".json"):
                data = json.dumps({**json.loads(data), "sample_rate": rate}).encode()
            members.append((info.name, data))
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("split", ["train", "val"])
def test_shards_at_another_rate_stop_training_before_the_first_step(
        prepared_tiny, tmp_path, monkeypatch, capsys, split):
    shards = tmp_path / "shards"
    shutil.copytree(prepared_tiny["solos"], shards)
    first = min((shards / split).glob("*.tar"))
    _with_header_rate(first, 22050)

    def no_step(self, batch):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(loop_module._Run, "_optimizer_step", no_step)
    expected = (f"data: shard {first} has audio at 22050 Hz, the model expects "
                f"{SAMPLE_RATE} Hz")
    with pytest.raises(ShardFormatError) as error:
        train(tiny_config(shards), tmp_path / "run", progress=False)
    assert str(error.value) == expected
    assert not (tmp_path / "run").exists()  # nothing written either

    code = cli_main(["train", "--dataset", "solos", "--data", str(shards),
                     "--run-dir", str(tmp_path / "run"),
                     *[arg for item in TINY_OVERRIDES for arg in ("--set", item)]])
    assert code == 2
    assert capsys.readouterr().err == f"error: {expected}\n"


def test_a_clip_rate_other_than_the_models_is_refused(prepared_tiny, tmp_path):
    config = tiny_config(prepared_tiny["solos"], "data.clip.sample_rate=22050")
    with pytest.raises(ConfigError, match="data.clip.sample_rate is 22050 Hz; the model works "
                                          f"at {SAMPLE_RATE} Hz"):
        train(config, tmp_path / "run", progress=False)
