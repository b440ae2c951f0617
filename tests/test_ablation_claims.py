"""The study's claim judgements (benchmarks/ablation_claims.py) on hand-made results."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ablation
import ablation_claims as claims


def result(sdr: list[float], mixture_sdr: list[float] | None = None, **extra) -> dict:
    mixture_sdr = mixture_sdr or [0.0] * len(sdr)
    return {"pair_scores": {f"seg{i}/0": {"sdr": s, "mixture_sdr": m}
                      for i, (s, m) in enumerate(zip(sdr, mixture_sdr))}, **extra}


def test_paired_difference_by_hand():
    a, b = result([3.0, 5.0, 4.0]), result([1.0, 2.0, 3.0])
    mean, se, n = claims.paired_difference(a, b)
    # differences 2, 3, 1: mean 2, sample std 1, standard error 1 / sqrt(3)
    assert n == 3 and mean == pytest.approx(2.0) and se == pytest.approx(1 / math.sqrt(3))
    # only pairs both rows scored count, and NaN differences are left out
    c = result([10.0, float("nan")])
    assert claims.paired_difference(a, c)[2] == 1


@pytest.mark.parametrize(("a", "b", "verdict"), [
    ([3.0, 5.0, 4.0], [1.0, 2.0, 3.0], "held"),            # +2 +- 0.58
    ([1.0, 2.0, 3.0], [3.0, 5.0, 4.0], "not held"),        # the opposite
    ([1.0, 3.0, 2.0], [2.0, 2.0, 2.0], "not held"),        # 0 +- 0.58: no difference
])
def test_beats_judges_by_standard_errors(a, b, verdict):
    v = claims.beats("a", "b")({"a": result(a), "b": result(b)})
    assert v.verdict == verdict and "over 3 pairs" in v.measured


def test_a_missing_row_is_not_measured_and_all_of_takes_the_worst_part():
    good = {"a": result([3.0, 5.0, 4.0]), "b": result([1.0, 2.0, 3.0])}
    assert claims.beats("a", "c")(good).verdict == "not measured"
    both = claims.all_of(claims.beats("a", "b"), claims.beats("b", "a"))(good)
    assert both.verdict == "not held"
    assert claims.no_better("b", "a")(good).verdict == "held"
    assert claims.no_better("a", "b")(good).verdict == "not held"


def test_quiet_sources_subset_keeps_negative_mixture_sdr_only():
    a = result([5.0, 0.0, 6.0], mixture_sdr=[-3.0, 4.0, -1.0])
    b = result([1.0, 9.0, 2.0], mixture_sdr=[-3.0, 4.0, -1.0])
    mean, _, n = claims.paired_difference(a, b, claims.quieter_player)
    assert n == 2 and mean == pytest.approx(4.0)


def test_parameter_and_pes_claims():
    rows = {"small": {"audio_parameters": 35}, "large": {"audio_parameters": 100}}
    assert claims.fewer_parameters("small", "large", 0.55, 0.75)(rows).verdict == "held"
    rows["small"]["audio_parameters"] = 90
    assert claims.fewer_parameters("small", "large", 0.55, 0.75)(rows).verdict == "not held"
    def silent_row(pes: float, count: int, sdr: float = 3.0) -> dict:
        return {"silent_sources": {"model": {"pes": {"mean": pes, "count": count}}},
                **result([sdr, sdr])}

    silent = {"x": silent_row(-40.0, 6), "y": silent_row(-20.0, 6)}
    assert claims.lower_pes("x", "y")(silent).verdict == "held"
    assert claims.lower_pes("y", "x")(silent).verdict == "not held"
    assert claims.lower_pes("x", "z")(silent).verdict == "not measured"
    # one silent pair says nothing; neither can rows that do not separate
    few = {"x": silent_row(-40.0, 1), "y": silent_row(-20.0, 6)}
    assert "fewer than 5 silent pairs" in claims.lower_pes("x", "y")(few).why
    unseparated = {"x": silent_row(-40.0, 6, sdr=-1.0), "y": silent_row(-20.0, 6, sdr=0.0)}
    assert claims.lower_pes("x", "y")(unseparated).verdict == "not measured"


def test_rows_that_do_not_separate_are_not_compared():
    # both at or below the mixture (0 dB here): their difference is not a measurement
    low = {"a": result([-1.0, -2.0, -1.5]), "b": result([-5.0, -6.0, -5.5])}
    v = claims.beats("a", "b")(low)
    assert v.verdict == "not measured" and "no row separates" in v.why
    assert claims.no_better("a", "b")(low).verdict == "not measured"
    # one of them separates: the comparison stands (here the separating row wins)
    one = {"a": result([1.0, 2.0, 1.5]), "b": result([-5.0, -6.0, -5.5])}
    assert claims.beats("a", "b")(one).verdict == "held"
    assert claims.separates(result([1.0, -0.5], mixture_sdr=[0.0, 0.0]))
    assert not claims.separates(result([1.0, -0.5], mixture_sdr=[1.0, 0.0]))


def test_every_claim_names_rows_the_study_has():
    known = {row.name for row in ablation.ROWS}
    for claim in claims.CLAIMS:
        assert set(claim.rows) <= known, claim.statement
    assert len(known) == len(ablation.ROWS)  # names are unique


def test_every_row_builds_its_model(tmp_path):
    # A typo in a row's overrides would only show after hours of study.
    import warnings

    from avsep.models import create_model
    from avsep.presets import resolve_preset
    from avsep.run_config import load_run_config

    for row in ablation.ROWS:
        config = load_run_config(resolve_preset(row.preset), list(row.overrides))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            create_model(config.model.name, **config.model.kwargs)


def scored(row: str, preset: str, sdr: list[float], mixture: float, irm: float) -> dict:
    stats = {m: {"sdr": {"mean": v}} for m, v in
             (("model", sum(sdr) / len(sdr)), ("mixture", mixture), ("irm", irm))}
    return {"row": row, "preset": preset, "note": f"the {row} row", "overrides": [],
            "scores": stats, **result(sdr)}


def test_headline_names_the_best_row_and_its_gaps_by_hand():
    rows = [scored("demo", "demo", [2.0, 4.0, 3.0], mixture=0.5, irm=9.0),
            scored("wide", "demo", [5.0, 6.0, 7.0], mixture=0.5, irm=9.0),
            scored("mhunet", "mhunet", [1.0, 1.0, 1.0], mixture=0.5, irm=9.0)]
    text = ablation.headline(rows)
    # best: wide, mean 6 dB: +5.50 over the mixture, 3.00 below the IRM
    assert "**wide**" in text and "SDR 6.00 dB: +5.50 dB over the mixture" in text
    assert "3.00 dB below the ideal ratio mask (9.00)" in text
    # paired with demo: differences 3, 2, 4 -> mean 3, se 1/sqrt(3) = 0.58
    assert "wide - demo: +3.00 ± 0.58 dB SDR, paired over 3 pairs" in text
    assert "Best of each preset: demo: wide 6.00, mhunet: mhunet 1.00." in text
    assert ablation.headline([]) == "No row ran."
