"""Separation metrics: batched BSS-eval (SDR, SIR, SAR), SI-SDR and helpers.

`bss_eval_sources` reproduces `mir_eval.separation.bss_eval_sources(references, estimates,
compute_permutation=False)` (BSS-eval v3, Vincent et al. 2006) in torch: batched over any
leading dimensions, on the tensors' device, in float64.

How it works. Each estimate is projected by least squares onto (a) its own reference and
(b) all references, each allowed a time-invariant FIR distortion of `FILTER_LENGTH` taps,
i.e. onto the span of the references delayed by 0 ... 511 samples. The normal equations use
Gram matrices of delayed references, built from FFT cross-correlations exactly as mir_eval
builds them. Unlike mir_eval, we never rebuild the signals: for filter coefficients `c`,
Gram matrix `G` and correlations `D = A^T e` (columns of `A` are the delayed references),
the energies mir_eval sums sample by sample are quadratic forms,

    ||A c||^2 = c^T G c,   ||e - A c||^2 = ||e||^2 - 2 c^T D + c^T G c,

so one batched factorisation of `G` per segment (shared by all of its estimates) and a few
matrix products give all three ratios.

Several estimate sets per segment (a model and its baselines, scored against the same
references) share more: `G` and the own-reference blocks depend on the references only, so
`bss_eval_sources_sets` stacks the right-hand sides of every set as extra columns of one
solve and factorises each segment once for all sets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = [
    "FILTER_LENGTH",
    "SILENCE_THRESHOLD",
    "bss_eval_sources",
    "bss_eval_sources_sets",
    "is_silent",
    "si_sdr",
    "summarize",
]

FILTER_LENGTH = 512
"""Taps of the distortion filter allowed on the references (mir_eval's fixed value)."""

SILENCE_THRESHOLD = 1e-5
"""Default of `is_silent`: a source is silent when the sum of its absolute samples is at most
this. It is The Sound of Pixels' evaluation rule (a segment is skipped unless every reference
and every estimate has `sum(|x|) > 1e-5`)."""


def bss_eval_sources(
    references: Tensor, estimates: Tensor, *, chunk_size: int = 8
) -> dict[str, Tensor]:
    """SDR, SIR and SAR of each estimated source, as mir_eval's `bss_eval_sources`.

    Matches `mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=False)`
    (estimate `n` is scored against reference `n`; there is no permutation search).

    Silence. mir_eval refuses a segment in which any reference or estimate is all zeros.
    Here the metrics of such a source are NaN (callers skip and count them); the other
    sources are still measured: a silent estimate affects only its own source, and a silent
    reference is left out of the interference subspace, giving what mir_eval returns for the
    segment without that source. Use `is_silent` to skip near-silent segments as well.

    Single source (N = 1). As in mir_eval, SIR is +inf (there is nothing to interfere).

    Precision. Energies are computed in float64. A residual that vanishes below float64
    resolution (an estimate that is exactly a filtered reference) is floored at
    `eps * ||estimate||^2`, so SDR and SAR saturate near +156 dB; mir_eval reports an
    arbitrary large number (a few hundred dB) in that case.

    Args:
        references: true sources, shape (..., N, T), real.
        estimates: estimated sources, same shape and device as `references`.
        chunk_size: items of the flattened batch evaluated at once. It bounds memory (about
            30 MB per item of 2 sources x 65535 samples, growing with N^2) and never changes
            the results; larger chunks can be faster on a GPU.

    Returns:
        `{"sdr": ..., "sir": ..., "sar": ...}`, each float64 of shape (..., N) on the
        inputs' device, in dB.
    """
    _check_pair(references, estimates, "bss_eval_sources")
    metrics = _bss_eval_batched(
        references, estimates.unsqueeze(0), chunk_size, "bss_eval_sources"
    )
    return {name: value.squeeze(0) for name, value in metrics.items()}


def bss_eval_sources_sets(
    references: Tensor, estimate_sets: Tensor, *, chunk_size: int = 8
) -> dict[str, Tensor]:
    """`bss_eval_sources` for several estimate sets of the same references at once.

    Set `m` gives what `bss_eval_sources(references, estimate_sets[m])` gives (equal up to
    float64 round-off), but every segment's Gram matrices are factorised once for all sets
    instead of once per set, which is most of the cost. Typical use: a model's estimates
    and its baselines (the mixture, ideal masks) scored on the same segments,
    `bss_eval_sources_sets(refs, torch.stack([model, mixture, ibm, irm]))`.

    Silence is handled per set as in `bss_eval_sources`: a silent estimate makes only its
    own source of its own set NaN; a silent reference makes its source NaN in every set.

    Args:
        references: true sources, shape (..., N, T), real.
        estimate_sets: M sets of estimates, shape (M, ..., N, T), on the references' device.
        chunk_size: reference items of the flattened batch evaluated at once, each with all
            M sets. Memory per item grows with M (about 20 MB plus 10 MB per set for 2
            sources x 65535 samples); results never depend on it.

    Returns:
        `{"sdr": ..., "sir": ..., "sar": ...}`, each float64 of shape (M, ..., N) on the
        inputs' device, in dB.
    """
    _check_sets(references, estimate_sets, "bss_eval_sources_sets")
    return _bss_eval_batched(references, estimate_sets, chunk_size, "bss_eval_sources_sets")


def si_sdr(references: Tensor, estimates: Tensor) -> Tensor:
    """Scale-invariant SDR (Le Roux, Wisdom, Erdogan, Hershey, ICASSP 2019), in dB.

    The reference is scaled by `alpha = <estimate, reference> / ||reference||^2` and
    SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - estimate||^2). Signals are not made
    zero-mean first (as in the paper's definition). Silent (all-zero) references or
    estimates give NaN.

    Args:
        references: true sources, shape (..., T), real.
        estimates: estimated sources, same shape and device.

    Returns:
        float64 tensor of shape (...,).
    """
    _check_pair(references, estimates, "si_sdr", min_dims=1)
    refs = references.to(torch.float64)
    ests = estimates.to(torch.float64)
    ref_energy = refs.square().sum(-1)
    alpha = (ests * refs).sum(-1) / ref_energy
    target = alpha.unsqueeze(-1) * refs
    noise = ests - target
    value = 10 * torch.log10(target.square().sum(-1) / noise.square().sum(-1))
    silent = (refs == 0).all(-1) | (ests == 0).all(-1)
    return value.masked_fill(silent, math.nan)


def is_silent(signals: Tensor, threshold: float = SILENCE_THRESHOLD) -> Tensor:
    """Whether each signal is (near-)silent: `sum(|x|) <= threshold` over the last axis.

    The default is The Sound of Pixels' rule (see `SILENCE_THRESHOLD`); it is a sum, not a
    mean, so it depends on the length. A segment should be skipped when any of its
    references or estimates is silent:
    `skip = is_silent(refs).any(-1) | is_silent(ests).any(-1)`.

    Args:
        signals: shape (..., T).
        threshold: largest sum of absolute samples still counted as silent.

    Returns:
        bool tensor of shape (...,).
    """
    if signals.ndim < 1:
        raise ValueError("is_silent expects signals of shape (..., T); got a 0-d tensor")
    return signals.abs().sum(-1, dtype=torch.float64) <= threshold


PES_EPS = 1e-12
INACTIVE_DB = -30.0


def silent_source_metrics(estimates: Tensor, mixtures: Tensor, inactive_db: float = INACTIVE_DB
                          ) -> tuple[Tensor, Tensor]:
    """How quiet the estimates of sources that are silent in the reference are.

    BSS-eval skips such segments; HTMD-Net's seed reports them with two figures:
    - PES (predicted energy at silence): 10 log10(sum_t e(t)^2 + 1e-12) dB of the estimate,
      lower is better;
    - activity agreement (the seed's "VAD"): whether the estimate is also judged silent, here
      when its energy is at least `-inactive_db` dB below the mixture's in the segment
      (avsep's rule; the seed does not state its detector). Averaged, the share of silent
      references whose estimate agrees.

    Args:
        estimates: (..., T) estimates of silent references; mixtures: (..., T) their mixtures.

    Returns:
        pes (...,) float64 dB and inactive (...,) bool.
    """
    energy = estimates.double().square().sum(-1)
    mixture_energy = mixtures.double().square().sum(-1)
    pes = 10.0 * torch.log10(energy + PES_EPS)
    inactive = energy <= mixture_energy * 10.0 ** (inactive_db / 10.0)
    return pes, inactive


def summarize(values: Tensor | Iterable[float]) -> dict[str, float | int]:
    """Mean, standard deviation (population, ddof = 0), median and count, ignoring NaNs.

    NaN marks a skipped (silent) source; +inf values (SIR of a single source) are kept and
    make the mean infinite, so summarise SIR over multi-source segments only.

    Args:
        values: any shape; flattened.

    Returns:
        `{"mean", "std", "median", "count"}`; the statistics are NaN when `count` is 0.
    """
    flat = torch.as_tensor(
        values if isinstance(values, Tensor) else list(values), dtype=torch.float64
    ).flatten().cpu()
    kept = flat[~torch.isnan(flat)]
    count = int(kept.numel())
    if count == 0:
        return {"mean": math.nan, "std": math.nan, "median": math.nan, "count": 0}
    return {
        "mean": kept.mean().item(),
        "std": kept.std(correction=0).item(),
        "median": kept.quantile(0.5).item(),
        "count": count,
    }


def _check_signal(tensor: Tensor, name: str, caller: str, layout: str, min_dims: int) -> None:
    """Raise a clear error unless `tensor` is a real tensor with at least `min_dims` axes."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{caller}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_complex():
        raise TypeError(f"{caller}: {name} must be real, got dtype {tensor.dtype}")
    if tensor.ndim < min_dims:
        raise ValueError(
            f"{caller}: {name} must have shape {layout}; got shape {tuple(tensor.shape)}"
        )


def _check_same_device_and_sizes(references: Tensor, other: Tensor, other_name: str,
                                 caller: str, min_dims: int, layout: str) -> None:
    """Raise unless `other` is on the references' device and no signal axis is empty."""
    if references.device != other.device:
        raise ValueError(
            f"{caller}: references are on {references.device} but {other_name} on "
            f"{other.device}"
        )
    if any(size == 0 for size in references.shape[-min_dims:]):
        raise ValueError(
            f"{caller}: need at least one source and one sample in {layout}; got shape "
            f"{tuple(references.shape)}"
        )


def _check_pair(references: Tensor, estimates: Tensor, caller: str, min_dims: int = 2) -> None:
    """Raise a clear error unless the two inputs are real tensors of one usable shape."""
    layout = "(..., N, T)" if min_dims == 2 else "(..., T)"
    _check_signal(references, "references", caller, layout, min_dims)
    _check_signal(estimates, "estimates", caller, layout, min_dims)
    if references.shape != estimates.shape:
        raise ValueError(
            f"{caller}: references and estimates must have the same shape {layout}; got "
            f"references {tuple(references.shape)} and estimates {tuple(estimates.shape)}"
        )
    _check_same_device_and_sizes(references, estimates, "estimates", caller, min_dims, layout)


def _check_sets(references: Tensor, estimate_sets: Tensor, caller: str) -> None:
    """Raise a clear error unless estimate_sets is (M, *references.shape), both real."""
    _check_signal(references, "references", caller, "(..., N, T)", 2)
    _check_signal(estimate_sets, "estimate_sets", caller, "(M, ..., N, T)", 3)
    if estimate_sets.shape[1:] != references.shape:
        raise ValueError(
            f"{caller}: estimate_sets must have shape (M, *references.shape) = "
            f"(M, {', '.join(str(size) for size in references.shape)}); got references "
            f"{tuple(references.shape)} and estimate_sets {tuple(estimate_sets.shape)}"
        )
    _check_same_device_and_sizes(references, estimate_sets, "estimate_sets", caller, 2,
                                 "(..., N, T)")


def _bss_eval_batched(
    references: Tensor, estimate_sets: Tensor, chunk_size: int, caller: str
) -> dict[str, Tensor]:
    """Checked inputs references (..., N, T) and estimate_sets (M, ..., N, T) -> metrics
    (M, ..., N), evaluated `chunk_size` reference items at a time."""
    if chunk_size < 1:
        raise ValueError(f"{caller}: chunk_size must be at least 1, got {chunk_size}")
    num_sets = estimate_sets.shape[0]
    *batch_shape, num_sources, num_samples = references.shape
    num_items = math.prod(batch_shape)
    flat_refs = references.reshape(num_items, num_sources, num_samples)
    # (B, M, N, T): the sets of one reference item side by side.
    flat_ests = estimate_sets.reshape(num_sets, num_items, num_sources, num_samples)
    flat_ests = flat_ests.transpose(0, 1)
    if num_items == 0 or num_sets == 0:
        empty = references.new_empty((num_sets, *batch_shape, num_sources), dtype=torch.float64)
        return {name: empty.clone() for name in ("sdr", "sir", "sar")}
    parts = [
        _bss_eval_flat(
            flat_refs[start : start + chunk_size].to(torch.float64),
            flat_ests[start : start + chunk_size].to(torch.float64),
        )
        for start in range(0, num_items, chunk_size)
    ]
    return {
        name: torch.cat([part[name] for part in parts])  # (B, M, N)
        .transpose(0, 1)
        .reshape(num_sets, *batch_shape, num_sources)
        for name in ("sdr", "sir", "sar")
    }


def _bss_eval_flat(refs: Tensor, ests: Tensor) -> dict[str, Tensor]:
    """BSS-eval for a flat batch: refs float64 (B, N, T) and M estimate sets per item, ests
    float64 (B, M, N, T) -> metrics (B, M, N). Each item's matrices are factorised once."""
    batch, num_sets, num_sources, _ = ests.shape
    taps = FILTER_LENGTH
    silent_ref = (refs == 0).all(-1)  # (B, N)
    silent_est = (ests == 0).all(-1)  # (B, M, N)

    ref_corr, est_corr = _lagged_correlations(refs, ests, taps)
    gram = _reference_gram(ref_corr, silent_ref, taps)
    delay = torch.arange(taps, device=refs.device)
    source_index = torch.arange(num_sources, device=refs.device)
    own_gram = gram.reshape(batch, num_sources, taps, num_sources, taps)
    own_gram = own_gram[:, source_index, :, source_index].transpose(0, 1)  # (B, N, taps, taps)

    # Right-hand sides: <s_i delayed by a, e_mn> = est_corr_min[-a]. The columns of all sets
    # sit side by side (column m * N + n), so that one solve per matrix serves every set.
    rhs_blocks = est_corr[..., taps - 1 - delay]  # (B, M, N_ref, N_est, taps)
    rhs = rhs_blocks.permute(0, 2, 4, 1, 3).reshape(
        batch, num_sources * taps, num_sets * num_sources
    )
    own_rhs = rhs_blocks[:, :, source_index, source_index]  # (B, M, N, taps)

    own_coef = _solve(own_gram, own_rhs.permute(0, 2, 3, 1))  # (B, N, taps, M)
    # Own coefficients placed in the full coefficient layout: block n of column (m, n).
    own_coef_full = torch.zeros(
        batch, num_sources, taps, num_sets, num_sources, dtype=refs.dtype, device=refs.device
    )
    own_coef_full[:, source_index, :, :, source_index] = own_coef.transpose(0, 1)
    own_coef_full = own_coef_full.reshape(batch, num_sources * taps, num_sets * num_sources)
    # With one source both projections are the same; reuse it so that the interference is
    # exactly zero (SIR = +inf) as in mir_eval.
    all_coef = own_coef_full if num_sources == 1 else _solve(gram, rhs)  # (B, N*taps, M*N)

    est_energy = ests.square().sum(-1).reshape(batch, -1)  # (B, M*N)
    own_energy = _quadratic_form(gram, own_coef_full)  # ||P_own||^2
    all_energy = _quadratic_form(gram, all_coef)  # ||P_all||^2
    interference = _quadratic_form(gram, all_coef - own_coef_full)  # ||P_all - P_own||^2
    floor = torch.finfo(torch.float64).eps * est_energy
    distortion = est_energy - 2 * (own_coef_full * rhs).sum(-2) + own_energy  # ||e - P_own||^2
    artifacts = est_energy - 2 * (all_coef * rhs).sum(-2) + all_energy  # ||e - P_all||^2

    skip = (silent_ref[:, None] | silent_est).reshape(batch, -1)
    metrics = {
        "sdr": _db(own_energy, distortion.clamp_min(floor), skip),
        "sir": _db(own_energy, interference.clamp_min(0), skip),
        "sar": _db(all_energy, artifacts.clamp_min(floor), skip),
    }
    return {name: value.reshape(batch, num_sets, num_sources) for name, value in metrics.items()}


def _lagged_correlations(refs: Tensor, ests: Tensor, taps: int) -> tuple[Tensor, Tensor]:
    """Cross-correlations for lags -(taps-1)..taps-1, by FFT.

    Args:
        refs: (B, N, T) float64; ests: (B, M, N, T) float64.

    Returns:
        ref_corr (B, N, N, 2 taps - 1) with ref_corr[b, i, j, taps - 1 + k] =
        sum_t s_i[t + k] s_j[t]; est_corr (B, M, N, N, 2 taps - 1) with
        est_corr[b, m, i, n, taps - 1 + k] = sum_t s_i[t + k] e_mn[t].
    """
    # Zero-padding to >= T + taps - 1 makes the circular correlations linear for all lags
    # |k| < taps (mir_eval's choice of FFT size).
    n_fft = 1 << math.ceil(math.log2(refs.shape[-1] + taps - 1))
    ref_spec = torch.fft.rfft(refs, n=n_fft)
    est_spec = torch.fft.rfft(ests, n=n_fft)
    lags = torch.arange(-(taps - 1), taps, device=refs.device) % n_fft
    ref_corr = torch.fft.irfft(ref_spec[:, :, None] * ref_spec[:, None].conj(), n=n_fft)
    est_corr = torch.fft.irfft(
        ref_spec[:, None, :, None] * est_spec[:, :, None].conj(), n=n_fft
    )
    return ref_corr[..., lags], est_corr[..., lags]


def _reference_gram(ref_corr: Tensor, silent_ref: Tensor, taps: int) -> Tensor:
    """Gram matrix of the delayed references: (B, N*taps, N*taps) from ref_corr
    (B, N, N, 2 taps - 1) and silent_ref (B, N) bool."""
    batch, num_sources = ref_corr.shape[:2]
    # <s_i delayed by a, s_j delayed by b> = ref_corr[i, j, taps - 1 + b - a], gathered
    # straight into the (N*taps, N*taps) layout.
    delay = torch.arange(taps, device=ref_corr.device)
    source_index = torch.arange(num_sources, device=ref_corr.device)
    pair = source_index[:, None, None, None] * num_sources + source_index[None, None, :, None]
    gram_index = pair * (2 * taps - 1) + taps - 1 + delay[None, None, None, :]
    gram_index = (gram_index - delay[None, :, None, None]).reshape(num_sources * taps, -1)
    gram = ref_corr.reshape(batch, -1)[:, gram_index]
    # A silent reference gives an all-zero block row and column; ones on its diagonal pin its
    # (unused) coefficients to zero instead of making the system singular.
    gram.diagonal(dim1=-2, dim2=-1).add_(silent_ref.repeat_interleave(taps, dim=-1))
    return gram


def _solve(matrices: Tensor, rhs: Tensor) -> Tensor:
    """Batched `matrices^-1 rhs` for symmetric positive (semi-)definite Gram matrices.

    Cholesky rather than LU: with MKL, batched LU of large float64 matrices returns corrupt
    pivots once `torch.set_num_threads(n > 1)` has been called (seen with torch 2.11 on
    512 x 512 systems: `linalg.solve` then fails, or could return garbage), and Cholesky is
    cheaper. Systems that are not numerically positive definite fall back to the
    minimum-norm least-squares solution, as mir_eval falls back to `lstsq`.
    """
    factor, info = torch.linalg.cholesky_ex(matrices)
    solution = torch.cholesky_solve(rhs, factor)
    failed = info != 0
    if bool(failed.any()):
        solution[failed] = torch.linalg.pinv(matrices[failed], hermitian=True) @ rhs[failed]
    return solution


def _quadratic_form(gram: Tensor, coef: Tensor) -> Tensor:
    """Column-wise c^T G c: gram (B, K, K), coef (B, K, N) -> (B, N)."""
    return (coef * (gram @ coef)).sum(-2)


def _db(signal_energy: Tensor, noise_energy: Tensor, skip: Tensor) -> Tensor:
    """10 log10(signal / noise), +inf for zero noise (mir_eval's `_safe_db`), NaN where skipped."""
    value = 10 * torch.log10(signal_energy / noise_energy)
    return value.masked_fill(skip, math.nan)
