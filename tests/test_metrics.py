"""Tests for avsep.metrics: BSS-eval against mir_eval (one or several estimate sets), SI-SDR by
hand, silence and summaries."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from avsep.metrics import (
    _solve,
    bss_eval_sources,
    bss_eval_sources_sets,
    is_silent,
    si_sdr,
    summarize,
)

try:  # the reference implementation; the tests that do not compare with it run without it
    import mir_eval.separation as mir_eval_separation
except ImportError:
    mir_eval_separation = None
needs_mir_eval = pytest.mark.skipif(mir_eval_separation is None, reason="needs mir_eval")

SAMPLE_RATE = 11025
TOLERANCE_DB = 0.01


def mir_eval_metrics(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """mir_eval's (SDR, SIR, SAR) as one array of shape (3, N)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the module is deprecated in mir_eval 0.8
        sdr, sir, sar, _ = mir_eval_separation.bss_eval_sources(
            references, estimates, compute_permutation=False
        )
    return np.stack([sdr, sir, sar])


def our_metrics(references: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Our (SDR, SIR, SAR) as one array of shape (3, ..., N)."""
    result = bss_eval_sources(torch.from_numpy(references), torch.from_numpy(estimates))
    return np.stack([result[name].numpy() for name in ("sdr", "sir", "sar")])


def degrade(rng: np.random.Generator, references: np.ndarray, leakage: float,
            noise: float) -> np.ndarray:
    """Realistic estimates (N, T): each reference through a short random FIR filter, plus
    `leakage` times the other sources (imperfect separation of the mixture) and white noise
    `noise` times the reference's RMS."""
    num_samples = references.shape[-1]
    mixture = references.sum(0)
    estimates = np.empty_like(references)
    for index, reference in enumerate(references):
        taps = 0.2 * rng.standard_normal(24) * np.exp(-np.arange(24) / 6)
        taps[0] = 1.0
        filtered = np.convolve(reference, taps)[:num_samples]
        rms = np.sqrt(np.mean(reference**2))
        estimates[index] = (
            filtered
            + leakage * (mixture - reference)
            + noise * rms * rng.standard_normal(num_samples)
        )
    return estimates


def harmonic_line(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """A music-like monophonic line (T,): notes of random pitch and length, each a decaying
    sum of harmonics with attack, vibrato and a faint noise floor."""
    line = np.zeros(num_samples)
    start = 0
    while start < num_samples:
        length = min(int(rng.uniform(0.15, 0.6) * SAMPLE_RATE), num_samples - start)
        time = np.arange(length) / SAMPLE_RATE
        f0 = rng.uniform(110.0, 880.0)
        vibrato = 1 + 0.006 * np.sin(2 * np.pi * rng.uniform(4, 7) * time)
        phase = 2 * np.pi * f0 * np.cumsum(vibrato) / SAMPLE_RATE
        envelope = np.minimum(1.0, time / 0.03) * np.exp(-time * rng.uniform(0.5, 4.0))
        rolloff = rng.uniform(0.4, 0.8)
        note = sum(
            rolloff**k * np.sin((k + 1) * phase + rng.uniform(0, 2 * np.pi))
            for k in range(10)
            if (k + 1) * f0 < SAMPLE_RATE / 2
        )
        line[start : start + length] = envelope * note
        start += length
    return line + 1e-4 * rng.standard_normal(num_samples)


def assert_close_to_mir_eval(references: np.ndarray, estimates: np.ndarray) -> None:
    expected = mir_eval_metrics(references, estimates)
    actual = our_metrics(references, estimates)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE_DB)


@needs_mir_eval
@pytest.mark.parametrize(
    ("num_sources", "num_samples", "seed"),
    [(2, 16000, 0), (2, 65535, 1), (3, 24000, 2), (2, 20011, 3)],
)
def test_matches_mir_eval_on_random_signals(num_sources: int, num_samples: int,
                                            seed: int) -> None:
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.1, 3.0, size=(num_sources, 1))
    references = scales * rng.standard_normal((num_sources, num_samples))
    estimates = degrade(rng, references, leakage=rng.uniform(0.05, 0.5), noise=0.3)
    assert_close_to_mir_eval(references, estimates)


@needs_mir_eval
@pytest.mark.parametrize(("num_sources", "seed"), [(2, 10), (3, 11)])
def test_matches_mir_eval_on_music_like_signals(num_sources: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    references = np.stack([harmonic_line(rng, 32768) for _ in range(num_sources)])
    estimates = degrade(rng, references, leakage=0.15, noise=0.05)
    assert_close_to_mir_eval(references, estimates)


@needs_mir_eval
def test_mixture_as_estimate_matches_mir_eval() -> None:
    """The unprocessed-mixture baseline: every estimate is the mixture itself.

    The mixture lies in the span of the references, so the artifact energy is float64
    round-off: SAR is only required to be huge (mir_eval reports ~250 dB, we saturate)."""
    rng = np.random.default_rng(12)
    references = np.stack([harmonic_line(rng, 16384) for _ in range(2)])
    estimates = np.repeat(references.sum(0, keepdims=True), 2, axis=0)
    expected = mir_eval_metrics(references, estimates)
    actual = our_metrics(references, estimates)
    np.testing.assert_allclose(actual[:2], expected[:2], rtol=0, atol=TOLERANCE_DB)
    assert (expected[2] > 140).all() and (actual[2] > 140).all()


@needs_mir_eval
def test_single_source_matches_mir_eval_with_infinite_sir() -> None:
    rng = np.random.default_rng(4)
    references = rng.standard_normal((1, 12000))
    estimates = degrade(rng, references, leakage=0.0, noise=0.5)
    actual = our_metrics(references, estimates)
    assert actual[1, 0] == math.inf
    assert_close_to_mir_eval(references, estimates)


def test_batched_equals_per_item() -> None:
    rng = np.random.default_rng(5)
    references = rng.standard_normal((2, 3, 2, 6000))
    estimates = np.stack([
        np.stack([degrade(rng, item, leakage=0.3, noise=rng.uniform(0.1, 1.0)) for item in row])
        for row in references
    ])
    batched = our_metrics(references, estimates)
    assert batched.shape == (3, 2, 3, 2)
    # 6 items in chunks of 4: the last chunk is partial.
    chunked = bss_eval_sources(
        torch.from_numpy(references), torch.from_numpy(estimates), chunk_size=4
    )
    np.testing.assert_allclose(chunked["sdr"].numpy(), batched[0], rtol=0, atol=1e-9)
    for row in range(2):
        for column in range(3):
            single = our_metrics(references[row, column], estimates[row, column])
            np.testing.assert_allclose(batched[:, row, column], single, rtol=0, atol=1e-9)


@needs_mir_eval
def test_float32_input_is_evaluated_in_float64() -> None:
    rng = np.random.default_rng(6)
    references = rng.standard_normal((2, 8000)).astype(np.float32)
    estimates = degrade(rng, references.astype(np.float64), 0.2, 0.2).astype(np.float32)
    result = bss_eval_sources(torch.from_numpy(references), torch.from_numpy(estimates))
    assert result["sdr"].dtype == torch.float64
    expected = mir_eval_metrics(references.astype(np.float64), estimates.astype(np.float64))
    actual = np.stack([result[name].numpy() for name in ("sdr", "sir", "sar")])
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE_DB)


@needs_mir_eval
def test_silent_reference_gives_nan_and_others_ignore_it() -> None:
    rng = np.random.default_rng(7)
    references = rng.standard_normal((3, 8000))
    estimates = degrade(rng, references, leakage=0.3, noise=0.3)
    references[1] = 0.0
    actual = our_metrics(references, estimates)
    assert np.isnan(actual[:, 1]).all()
    # mir_eval refuses the segment; without the silent source it scores the others alike.
    kept = [0, 2]
    expected = mir_eval_metrics(references[kept], estimates[kept])
    np.testing.assert_allclose(actual[:, kept], expected, rtol=0, atol=TOLERANCE_DB)


@needs_mir_eval
def test_silent_estimate_gives_nan_for_its_source_only() -> None:
    rng = np.random.default_rng(8)
    references = rng.standard_normal((2, 8000))
    estimates = degrade(rng, references, leakage=0.3, noise=0.3)
    expected = mir_eval_metrics(references, estimates)
    estimates[0] = 0.0
    actual = our_metrics(references, estimates)
    assert np.isnan(actual[:, 0]).all()
    np.testing.assert_allclose(actual[:, 1], expected[:, 1], rtol=0, atol=TOLERANCE_DB)


def test_perfect_estimate_saturates_at_float64_precision() -> None:
    references = torch.randn(2, 4000, generator=torch.Generator().manual_seed(9))
    result = bss_eval_sources(references, references.clone())
    assert torch.isfinite(result["sdr"]).all()
    assert (result["sdr"] > 140).all() and (result["sar"] > 140).all()


@pytest.mark.parametrize(
    ("references", "estimates", "message"),
    [
        (torch.zeros(2, 100), torch.zeros(3, 100), "same shape"),
        (torch.zeros(100), torch.zeros(100), r"\(\.\.\., N, T\)"),
        (torch.zeros(2, 0), torch.zeros(2, 0), "at least one source and one sample"),
        (torch.zeros(0, 10), torch.zeros(0, 10), "at least one source and one sample"),
        (torch.zeros(2, 100, dtype=torch.complex64), torch.zeros(2, 100), "must be real"),
        (np.zeros((2, 100)), torch.zeros(2, 100), "must be a torch.Tensor"),
    ],
    ids=["shape-mismatch", "one-dim", "no-samples", "no-sources", "complex", "numpy"],
)
def test_bad_input_is_rejected_clearly(references, estimates, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        bss_eval_sources(references, estimates)


def estimate_sets_of(rng: np.random.Generator, references: np.ndarray) -> np.ndarray:
    """Four estimate sets (4, ..., N, T) like an evaluation's methods: a rough model, the
    mixture itself, and two better estimates with little leakage."""
    flat = references.reshape(-1, *references.shape[-2:])
    sets = [
        [degrade(rng, item, leakage=0.4, noise=0.5) for item in flat],
        [np.repeat(item.sum(0, keepdims=True), item.shape[0], axis=0) for item in flat],
        [degrade(rng, item, leakage=0.1, noise=0.1) for item in flat],
        [degrade(rng, item, leakage=0.05, noise=0.2) for item in flat],
    ]
    return np.stack([np.stack(s).reshape(references.shape) for s in sets])


def assert_set_equals_separate(shared: np.ndarray, separate: np.ndarray, mixture: bool) -> None:
    """One set's shared metrics (3, ..., N) equal a separate call's. The mixture lies in the
    span of the references, so its SAR is float64 round-off: only required to be huge."""
    checked = 2 if mixture else 3
    np.testing.assert_allclose(shared[:checked], separate[:checked], rtol=0, atol=1e-9)
    if mixture:
        kept = ~np.isnan(separate[2])
        assert (shared[2][kept] > 140).all() and (separate[2][kept] > 140).all()
        assert np.array_equal(np.isnan(shared[2]), np.isnan(separate[2]))


def sets_metrics(references: np.ndarray, estimate_sets: np.ndarray,
                 chunk_size: int = 8) -> np.ndarray:
    """Our shared-factorisation (SDR, SIR, SAR) as one array of shape (3, M, ..., N)."""
    result = bss_eval_sources_sets(torch.from_numpy(references),
                                   torch.from_numpy(estimate_sets), chunk_size=chunk_size)
    return np.stack([result[name].numpy() for name in ("sdr", "sir", "sar")])


@pytest.mark.parametrize(("batch_shape", "num_sources", "chunk_size"),
                         [((3,), 2, 2), ((2, 1), 3, 8), ((), 1, 8)])
def test_sets_equal_separate_calls_per_set(batch_shape: tuple[int, ...], num_sources: int,
                                           chunk_size: int) -> None:
    rng = np.random.default_rng(20 + num_sources)
    references = rng.standard_normal((*batch_shape, num_sources, 5000))
    estimate_sets = estimate_sets_of(rng, references)
    shared = sets_metrics(references, estimate_sets, chunk_size)
    assert shared.shape == (3, 4, *batch_shape, num_sources)
    for m in range(4):
        separate = our_metrics(references, estimate_sets[m])
        assert_set_equals_separate(shared[:, m], separate, mixture=m == 1)
    if num_sources == 1:
        assert (shared[1] == math.inf).all()


@needs_mir_eval
def test_sets_match_mir_eval() -> None:
    rng = np.random.default_rng(24)
    references = np.stack([harmonic_line(rng, 16384) for _ in range(2)])
    estimate_sets = estimate_sets_of(rng, references)
    shared = sets_metrics(references, estimate_sets)
    for m in range(4):
        expected = mir_eval_metrics(references, estimate_sets[m])
        checked = 2 if m == 1 else 3  # the mixture's SAR is round-off in both
        np.testing.assert_allclose(shared[:checked, m], expected[:checked], rtol=0,
                                   atol=TOLERANCE_DB)


def test_silent_estimate_in_one_set_affects_only_that_set() -> None:
    rng = np.random.default_rng(25)
    references = rng.standard_normal((2, 2, 6000))
    estimate_sets = estimate_sets_of(rng, references)
    before = sets_metrics(references, estimate_sets)
    estimate_sets[2, 1, 0] = 0.0  # set 2, item 1, source 0
    after = sets_metrics(references, estimate_sets)
    silent = np.zeros(before.shape[1:], dtype=bool)
    silent[2, 1, 0] = True
    assert np.isnan(after[:, silent]).all()
    assert not np.isnan(after[:, ~silent]).any()
    # The mixture set (1) keeps its round-off SAR out of the comparison.
    compared = ~silent
    compared[1] = False
    np.testing.assert_allclose(after[:, compared], before[:, compared], rtol=0, atol=1e-9)
    np.testing.assert_allclose(after[:2, 1], before[:2, 1], rtol=0, atol=1e-9)


def test_silent_reference_gives_nan_in_every_set() -> None:
    rng = np.random.default_rng(26)
    references = rng.standard_normal((3, 6000))
    estimate_sets = estimate_sets_of(rng, references)
    references[1] = 0.0
    shared = sets_metrics(references, estimate_sets)
    assert np.isnan(shared[:, :, 1]).all()
    for m in range(4):
        separate = our_metrics(references, estimate_sets[m])
        # Set 1 is the mixture of the sources before one was silenced: no longer in the
        # span of the references, so its SAR is an ordinary number here.
        assert_set_equals_separate(shared[:, m], separate, mixture=False)


def test_empty_set_or_batch_axis_gives_empty_results() -> None:
    result = bss_eval_sources_sets(torch.ones(2, 3, 100), torch.ones(0, 2, 3, 100))
    assert {name: tuple(value.shape) for name, value in result.items()} == {
        "sdr": (0, 2, 3), "sir": (0, 2, 3), "sar": (0, 2, 3)}
    result = bss_eval_sources(torch.ones(0, 2, 100), torch.ones(0, 2, 100))
    assert [tuple(value.shape) for value in result.values()] == [(0, 2)] * 3


@pytest.mark.parametrize(
    ("references", "estimate_sets", "message"),
    [
        (torch.zeros(2, 100), torch.zeros(2, 100), r"estimate_sets must have shape \(M, \.\.\."),
        (torch.zeros(2, 100), torch.zeros(4, 3, 100),
         (r"\(M, \*references.shape\) = \(M, 2, 100\); got references \(2, 100\) and "
          r"estimate_sets \(4, 3, 100\)")),
        (torch.zeros(5, 2, 100), torch.zeros(5, 2, 100), r"\(M, 5, 2, 100\)"),
        (torch.zeros(100), torch.zeros(4, 100), r"references must have shape \(\.\.\., N, T\)"),
        (torch.zeros(2, 0), torch.zeros(4, 2, 0), "at least one source and one sample"),
        (torch.zeros(2, 100), torch.zeros(4, 2, 100, dtype=torch.complex64), "must be real"),
        (torch.zeros(2, 100), np.zeros((4, 2, 100)), "estimate_sets must be a torch.Tensor"),
    ],
    ids=["no-set-axis", "shape-mismatch", "batch-taken-as-sets", "one-dim", "no-samples",
         "complex", "numpy"],
)
def test_bad_sets_input_is_rejected_clearly(references, estimate_sets, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        bss_eval_sources_sets(references, estimate_sets)
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        bss_eval_sources_sets(torch.ones(2, 100), torch.ones(4, 2, 100), chunk_size=0)


def test_singular_system_falls_back_to_least_squares() -> None:
    """mir_eval falls back to lstsq when the Gram matrix is singular; so do we."""
    matrices = torch.tensor([[[2.0, 0.0], [0.0, 0.0]], [[2.0, 1.0], [1.0, 3.0]]],
                            dtype=torch.float64)
    rhs = torch.tensor([[[4.0], [0.0]], [[1.0], [2.0]]], dtype=torch.float64)
    solution = _solve(matrices, rhs)
    for index in range(2):
        expected = np.linalg.lstsq(matrices[index].numpy(), rhs[index].numpy(), rcond=None)[0]
        np.testing.assert_allclose(solution[index].numpy(), expected, atol=1e-12)


def test_batched_solve_is_right_with_several_threads() -> None:
    """Batched LU of 512 x 512 float64 systems returned corrupt pivots with MKL after
    torch.set_num_threads(2) (BSS-eval's 512-tap Gram matrices); the solve must not."""
    generator = torch.Generator().manual_seed(3)
    factors = torch.randn(4, 512, 1024, generator=generator, dtype=torch.float64)
    matrices = factors @ factors.transpose(-1, -2)
    rhs = torch.randn(4, 512, 3, generator=generator, dtype=torch.float64)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        solution = _solve(matrices, rhs)
    finally:
        torch.set_num_threads(previous)
    for index in range(4):
        expected = np.linalg.solve(matrices[index].numpy(), rhs[index].numpy())
        np.testing.assert_allclose(solution[index].numpy(), expected, rtol=1e-7, atol=1e-9)


def test_si_sdr_matches_hand_computation() -> None:
    rng = np.random.default_rng(13)
    references = rng.standard_normal((4, 3000))
    estimates = 0.7 * references + 0.4 * rng.standard_normal((4, 3000))
    expected = []
    for reference, estimate in zip(references, estimates):
        alpha = np.dot(estimate, reference) / np.dot(reference, reference)
        target = alpha * reference
        expected.append(10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2)))
    actual = si_sdr(torch.from_numpy(references), torch.from_numpy(estimates))
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=1e-10)


def test_si_sdr_small_exact_case_and_scale_invariance() -> None:
    # Estimate (1, 1) against reference (1, 0): target (1, 0), noise (0, 1), so 0 dB.
    value = si_sdr(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert value.item() == pytest.approx(0.0, abs=1e-12)
    references = torch.randn(2, 3, 500, generator=torch.Generator().manual_seed(14))
    estimates = references + 0.5 * torch.randn(2, 3, 500, generator=torch.Generator())
    scaled = si_sdr(references, 4.0 * estimates)
    assert scaled.shape == (2, 3)
    torch.testing.assert_close(scaled, si_sdr(references, estimates))


def test_si_sdr_silent_gives_nan() -> None:
    references = torch.stack([torch.zeros(100), torch.ones(100)])
    estimates = torch.stack([torch.ones(100), torch.zeros(100)])
    assert torch.isnan(si_sdr(references, estimates)).all()


def test_is_silent_uses_sum_of_absolute_samples() -> None:
    signals = torch.zeros(3, 1000)
    signals[1, :10] = -0.4e-6  # sum |x| = 4e-6 <= 1e-5
    signals[2, :10] = 2e-6  # sum |x| = 2e-5 > 1e-5
    assert is_silent(signals).tolist() == [True, True, False]
    assert is_silent(signals, threshold=1e-6).tolist() == [True, False, False]


def test_summarize_ignores_nan() -> None:
    values = torch.tensor([[1.0, math.nan, 4.0], [2.5, 7.0, math.nan]])
    kept = np.array([1.0, 4.0, 2.5, 7.0])
    summary = summarize(values)
    assert summary["count"] == 4
    assert summary["mean"] == pytest.approx(kept.mean())
    assert summary["std"] == pytest.approx(kept.std())
    assert summary["median"] == pytest.approx(np.median(kept))
    empty = summarize([math.nan])
    assert empty["count"] == 0 and math.isnan(empty["mean"])
