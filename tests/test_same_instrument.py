"""Same-instrument data: mixtures of one class when asked for (`data.same_class_share`), and
URMP-layout stand-ins with a duet of two players of one instrument per chosen class.

The motion path these were made for was measured and removed (docs/same-instrument.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from avsep.config import ConfigError
from avsep.data.solos import MixtureGrouper
from avsep.presets import resolve_preset
from avsep.run_config import load_run_config
from data_prep.synth.presets import urmp_settings
from data_prep.synth.urmp import choose_instruments, player_counts


def test_same_class_mixtures_are_drawn_when_asked_for():
    clips = [{"video_id": f"v{i}", "class_index": i % 4} for i in range(400)]
    for share, low, high in ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.5, 0.3, 0.7)):
        groups = list(MixtureGrouper(2, same_class_share=share, seed=3)(clips))
        assert len(groups) >= 150
        for group in groups:
            assert len({c["video_id"] for c in group}) == 2
        same = sum(len({c["class_index"] for c in g}) == 1 for g in groups) / len(groups)
        assert low <= same <= high, (share, same)
    again = list(MixtureGrouper(2, same_class_share=0.5, seed=3)(clips))
    assert again == list(MixtureGrouper(2, same_class_share=0.5, seed=3)(clips))
    with pytest.raises(ValueError, match="same_class_share"):
        MixtureGrouper(2, same_class_share=-0.1)

def test_urmp_standin_plans_a_duet_per_same_instrument_class():
    settings = urmp_settings("bench", pieces=7, same_instrument=("Violin", "Cello", "Flute"))
    rng = np.random.default_rng(0)
    counts = player_counts(settings, rng)
    assert counts[:4] == [2, 2, 2, 2] and counts[4] == settings.max_players
    for number, name in zip((2, 3, 4), settings.same_instrument):
        assert choose_instruments(number, 2, rng, settings.same_instrument) == [name, name]
    picked = choose_instruments(5, 3, rng, settings.same_instrument)
    assert len(set(picked)) == 3
    # the default keeps the one violin duet of earlier stand-ins
    assert choose_instruments(2, 2, rng) == ["Violin", "Violin"]
    assert len(set(choose_instruments(3, 2, rng))) == 2
    with pytest.raises(ValueError, match="unknown instrument"):
        urmp_settings("bench", same_instrument=("Kazoo",))
    # stand-in folders record repr(settings): the default keeps the repr of earlier folders
    assert "same_instrument" not in repr(urmp_settings("bench"))
    assert "same_instrument=('Violin', 'Cello', 'Flute')" in repr(settings)
    assert urmp_settings("bench", same_instrument=["Violin"]) == urmp_settings("bench")

def test_synth_names_an_unknown_same_instrument_class(tmp_path, capsys):
    from avsep.cli import main as cli_main

    code = cli_main(["synth", "urmp", "--out", str(tmp_path / "u"), "--same-instrument",
                     "Violin", "Kazoo"])
    assert code == 2
    assert "unknown instrument(s) Kazoo" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_run_config_checks_the_same_class_share():
    demo = resolve_preset("demo")
    assert load_run_config(demo, ["data.same_class_share=0.5"]).data.same_class_share == 0.5
    with pytest.raises(ConfigError, match="same_class_share"):
        load_run_config(demo, ["data.same_class_share=1.5"])
