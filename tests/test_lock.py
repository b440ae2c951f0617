"""requirements.lock agrees with pyproject.toml, and the project's venv holds exactly the lock."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
REFRESH = "refresh it with `bash scripts/lock.sh`"
# Installed by the tools themselves, not by the lock.
NOT_LOCKED = {"pip", "avsep"}


def lock_entries() -> list[tuple[str, str, str, str]]:
    """(name, version, marker, annotation) of every line of the lock."""
    entries = []
    for line in LOCK.read_text().splitlines():
        body, _, note = line.partition("#")
        if not body.strip():
            continue
        spec, _, marker = body.partition(";")
        name, version = (part.strip() for part in spec.split("=="))
        entries.append((canonicalize_name(name), version, marker.strip(), note.strip()))
    return entries


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def test_every_locked_version_satisfies_pyproject():
    locked: dict[str, list[str]] = {}
    for name, version, _, _ in lock_entries():
        locked.setdefault(name, []).append(version)
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is in pyproject.toml but not locked; {REFRESH}"
        for version in locked[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements.lock has {name}=={version}, which pyproject.toml's "
                f"'{requirement}' excludes; {REFRESH}"
            )


def test_the_lock_has_no_direct_dependency_that_pyproject_dropped():
    direct = {name for name, _, _, note in lock_entries() if "avsep (pyproject.toml)" in note}
    declared = {canonicalize_name(r.name) for r in project_requirements()}
    assert direct == declared, f"lock and pyproject.toml list different dependencies; {REFRESH}"


def test_the_torch_trio_is_one_matched_set():
    versions = {name: version for name, version, _, _ in lock_entries()}
    torch_minor = versions["torch"].rsplit(".", 1)[0]
    assert torch_minor == versions["torchaudio"].rsplit(".", 1)[0]
    assert versions["torchaudio"] != "2.11.1"  # needs symbols torch 2.11.0 lacks
    # torchvision 0.N pairs with torch 2.(N - 15)
    assert int(versions["torchvision"].split(".")[1]) - 15 == int(torch_minor.split(".")[1])


@pytest.mark.skipif(Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
                    reason="checks the project's own .venv (made by scripts/setup.sh)")
def test_the_venv_holds_exactly_the_lock():
    wanted = {name: version for name, version, marker, _ in lock_entries()
              if not marker or Marker(marker).evaluate()}
    installed = {canonicalize_name(d.metadata["Name"]): d.version
                 for d in importlib.metadata.distributions()}
    wrong = {name: (version, installed.get(name)) for name, version in wanted.items()
             if installed.get(name) is None
             or not SpecifierSet(f"=={version}").contains(installed[name], prereleases=True)}
    extra = sorted(set(installed) - set(wanted) - NOT_LOCKED)
    assert not wrong, f"venv differs from the lock (locked, installed): {wrong}; run setup.sh"
    assert not extra, f"installed but not locked: {extra}; run bash scripts/setup.sh"
