"""The training presets that ship with avsep (package data: avsep/configs/<name>.yaml).

`sop` is the original recipe, `mhunet` the Solos paper's MHU-Net, `demo` the small CPU
model of `avsep demo`. They are found through the installed package, so `--config demo`
works from any directory and after a regular (non-editable) install.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def presets_dir() -> Path:
    """The folder of the shipped presets."""
    return Path(str(resources.files("avsep") / "configs"))


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(path.stem for path in presets_dir().glob("*.yaml"))


def resolve_preset(name: str | Path) -> Path:
    """A preset name ('sop') or a YAML file path -> the YAML file.

    Raises:
        FileNotFoundError: the file does not exist, or no preset has that name.
    """
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        return path
    candidate = presets_dir() / f"{name}.yaml"
    if not candidate.is_file():
        raise FileNotFoundError(f"no config preset {name!r} (known: {', '.join(preset_names())})")
    return candidate
