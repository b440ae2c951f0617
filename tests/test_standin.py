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

    raw = tmp_path / "synthetic" / "tiny_without_lineart" / "raw"  # the demo's held-out fold
    raw.mkdir(parents=True)
    (raw / COMPLETE_MARKER).write_text(json.dumps({"preset": "tiny", "seed": 1}))
    assert main(["demo", "--root", str(tmp_path), "--preset", "tiny"]) == 2
    assert "holds a stand-in made with other settings" in capsys.readouterr().err


def test_validation_pieces_share_no_music_with_the_held_out_ones(tmp_path):
    from avsep.urmp_naming import boxes_file_name
    from avsep.workflows.standin import VALIDATION_SEED_OFFSET, ensure_validation_urmp
    from data_prep.synth import generate_urmp
    from data_prep.synth.music import pool_of
    from data_prep.synth.urmp import MANIFEST

    raw, shards = ensure_validation_urmp(tmp_path, "tiny", jobs=1)
    manifest = json.loads((raw / MANIFEST).read_text())
    assert manifest["music_pool"] == "solos" and manifest["seed"] == VALIDATION_SEED_OFFSET
    pieces = [entry["piece"] for entry in manifest["files"].values()]
    assert len(pieces) == 3 and {pool_of(p) for p in pieces} == {"solos"}
    for folder in manifest["files"]:  # every piece carries its players' boxes
        assert (raw / folder / boxes_file_name(folder)).is_file()
    assert sorted(shards.glob("*.tar"))
    # A second call reuses the pieces; pieces made otherwise are refused, not mixed.
    stamp = (raw / MANIFEST).stat().st_mtime_ns
    ensure_validation_urmp(tmp_path, "tiny", jobs=1)
    assert (raw / MANIFEST).stat().st_mtime_ns == stamp
    with pytest.raises(StandinMismatchError, match="validation pieces made with other"):
        ensure_validation_urmp(tmp_path, "tiny", seed=5, jobs=1)
    with pytest.raises(ValueError, match="music must be 'urmp' or 'solos'"):
        generate_urmp(tmp_path / "x", music="training")


def test_a_held_out_family_is_drawn_only_in_its_own_set_with_the_same_audio(tmp_path):
    from avsep.workflows.standin import HELD_OUT_NAME

    paths = ensure_standin(tmp_path, "tiny", jobs=1, held_out="shaded")
    solos = json.loads((paths.raw_solos / "synth_manifest.json").read_text())["files"]
    urmp = json.loads((paths.raw_urmp / "synth_manifest.json").read_text())["files"]
    unseen = json.loads((paths.raw_urmp_unseen / "synth_manifest.json").read_text())["files"]
    assert paths.raw_urmp_unseen == tmp_path / "raw" / HELD_OUT_NAME
    assert {f["family"] for f in solos.values()} <= {"classic", "lineart", "pictogram"}
    assert len({f["family"] for f in solos.values()}) > 1
    assert all(f["family"] != "shaded" for f in urmp.values())
    assert {f["family"] for f in unseen.values()} == {"shaded"}
    assert sorted(urmp) == sorted(unseen)
    for folder in urmp:  # the same pieces and the same audio, drawn otherwise
        mix = next((paths.raw_urmp / folder).glob("AuMix_*.wav")).read_bytes()
        assert next((paths.raw_urmp_unseen / folder).glob("AuMix_*.wav")).read_bytes() == mix
    assert sorted(paths.urmp_unseen_shards.glob("*.tar"))
    # The classic-only stand-in is another stand-in: refused in this folder, not mixed in.
    with pytest.raises(StandinMismatchError, match="other settings"):
        ensure_standin(tmp_path, "tiny", jobs=1)


def test_the_demo_names_an_unknown_family_before_making_anything(tmp_path, capsys):
    from avsep.cli import main

    assert main(["demo", "--root", str(tmp_path), "--preset", "tiny",
                 "--hold-out", "watercolour"]) == 2
    assert "unknown drawing family 'watercolour'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
