"""The embedded stand-in: a folder made under other settings is refused, not mixed."""

from __future__ import annotations

import json

import pytest

from avsep.workflows.standin import COMPLETE_MARKER, StandinMismatchError, ensure_standin


def test_a_stand_in_made_with_other_settings_is_refused_with_the_fix(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / COMPLETE_MARKER).write_text(json.dumps({"preset": "tiny", "seed": 0}))
    with pytest.raises(StandinMismatchError, match=r"other settings.*Remove .* or choose"):
        ensure_standin(tmp_path, "tiny")
    assert sorted(p.name for p in raw.iterdir()) == [COMPLETE_MARKER]  # nothing generated


def test_the_cli_reports_the_mismatch_as_an_error(tmp_path, capsys):
    from avsep.cli import main

    raw = tmp_path / "synthetic" / "tiny" / "raw"
    raw.mkdir(parents=True)
    (raw / COMPLETE_MARKER).write_text(json.dumps({"preset": "tiny", "seed": 1}))
    assert main(["demo", "--root", str(tmp_path), "--preset", "tiny"]) == 2
    assert "holds a stand-in made with other settings" in capsys.readouterr().err
