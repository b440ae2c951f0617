"""Session fixtures shared by the test files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class SynthTinyRun:
    """The `tiny` stand-in made once per session, and what making it cost."""

    solos: Path
    urmp: Path
    wall_seconds: float
    summaries: dict


@pytest.fixture(scope="session")
def synth_tiny_run(tmp_path_factory) -> SynthTinyRun:
    from data_prep.synth import RunOptions, generate

    root = tmp_path_factory.mktemp("synth_tiny")
    start = time.perf_counter()
    summaries = generate(root, "tiny", RunOptions(seed=0, jobs=2, progress=False))
    wall = time.perf_counter() - start
    return SynthTinyRun(root / "solos", root / "urmp", wall, summaries)


@pytest.fixture(scope="session")
def synth_tiny(synth_tiny_run) -> dict[str, Path]:
    """Root folders of the `tiny` stand-in (seed 0): {"solos": Path, "urmp": Path}."""
    return {"solos": synth_tiny_run.solos, "urmp": synth_tiny_run.urmp}


@pytest.fixture(scope="session")
def prepared_tiny(synth_tiny, tmp_path_factory) -> dict[str, Path]:
    """The `tiny` stand-in prepared once per session: {"solos": OUT, "urmp": OUT}.

    Solos uses --val-fraction 0.25 (so that val is not empty) and two worker processes;
    URMP runs in this process. Tests that re-run preparation compare against these.
    """
    from data_prep.prepare.settings import PrepareSettings
    from data_prep.prepare.solos import prepare_solos
    from data_prep.prepare.urmp import prepare_urmp

    root = tmp_path_factory.mktemp("prepared_tiny")
    settings = PrepareSettings(val_fraction=0.25)
    assert prepare_solos(synth_tiny["solos"], root / "solos", settings, jobs=2) == 0
    assert prepare_urmp(synth_tiny["urmp"], root / "urmp", jobs=0) == 0
    return {"solos": root / "solos", "urmp": root / "urmp"}
