"""The presets ship inside the package and load from anywhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avsep.presets import preset_names, resolve_preset
from avsep.run_config import load_run_config

ROOT = Path(__file__).resolve().parent.parent


def test_presets_resolve_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"demo", "mhunet", "sop", "htmd_net", "conv_tasnet", "wave_unet", "spectrogram_channels",
            "tfc_tdf"} <= set(preset_names())
    assert load_run_config(resolve_preset("sop")).model.name == "sop"
    assert load_run_config(resolve_preset("mhunet")).model.name == "mhunet"
    with pytest.raises(FileNotFoundError, match="known: .*demo, .*mhunet, sop"):
        resolve_preset("nosuch")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_preset("mine.yaml")


def test_the_wheel_carries_the_presets(tmp_path):
    """What a regular `pip install .` installs: the presets are in the wheel."""
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info into the tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "work", "runs", "wandb", "build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("avsep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"avsep/configs/{name}.yaml" for name in preset_names()} <= names
    assert "data_prep/solos_ids.json" in names
