"""Time avsep.metrics' BSS-eval: against mir_eval, and shared vs separate factorisations.

1. `bss_eval_sources` against mir_eval on URMP-sized segments: both in the same process on
   the same signals, in alternating rounds; ours on the whole batch at once, mir_eval one
   segment at a time (as evaluation code would call it).
2. Scoring several estimate sets per segment against the same references (an evaluation's
   model, mixture and ideal-mask baselines): one `bss_eval_sources` call per set vs one
   `bss_eval_sources_sets` call that factorises each segment once, alternating rounds.

Prints seconds per segment (best round of each), the speed ratios and the largest
disagreements in dB.

    python benchmarks/metrics.py                    # CPU, 20 segments of 2 x 65535 samples
    python benchmarks/metrics.py --device cuda      # ours on the GPU, mir_eval on the CPU
    python benchmarks/metrics.py --skip-mir-eval    # only the shared-vs-separate comparison
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from avsep.metrics import bss_eval_sources, bss_eval_sources_sets

METRIC_NAMES = ("sdr", "sir", "sar")


def make_segments(segments: int, sources: int, samples: int, seed: int) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """References (S, N, T) and estimates with leakage of the other sources and noise."""
    rng = np.random.default_rng(seed)
    references = rng.standard_normal((segments, sources, samples))
    mixture = references.sum(1, keepdims=True)
    estimates = references + 0.2 * (mixture - references)
    estimates += 0.3 * rng.standard_normal(references.shape)
    return references, estimates


def make_estimate_sets(references: np.ndarray, estimates: np.ndarray, sets: int,
                       seed: int) -> np.ndarray:
    """`sets` estimate sets (M, S, N, T) like an evaluation's methods: the given estimates,
    the mixture for every source, then ever cleaner estimates (less leakage and noise)."""
    rng = np.random.default_rng(seed + 1)
    mixture = references.sum(1, keepdims=True)
    chosen = [estimates, np.broadcast_to(mixture, references.shape)]
    for index in range(2, sets):
        quality = 0.5**index
        chosen.append(references + quality * (mixture - references)
                      + quality * rng.standard_normal(references.shape))
    return np.stack(chosen[:sets])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    """Wall time of `run()` (device work included) and what it returned."""
    synchronize(device)
    start = time.perf_counter()
    result = run()
    synchronize(device)
    return time.perf_counter() - start, result


def as_array(metrics: dict[str, torch.Tensor]) -> np.ndarray:
    """Metrics dict -> (3, ...) array of SDR, SIR, SAR."""
    return np.stack([metrics[name].cpu().numpy() for name in METRIC_NAMES])


def time_mir_eval(references: np.ndarray, estimates: np.ndarray) -> tuple[float, np.ndarray]:
    """Wall time of mir_eval over all segments, one call each, and the metrics (3, S, N)."""
    from mir_eval.separation import bss_eval_sources as mir_eval_bss_eval_sources

    rows = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval.separation is deprecated since 0.8
        for refs, ests in zip(references, estimates):
            sdr, sir, sar, _ = mir_eval_bss_eval_sources(refs, ests, compute_permutation=False)
            rows.append(np.stack([sdr, sir, sar]))
    return time.perf_counter() - start, np.stack(rows, axis=1)


def largest_differences(actual: np.ndarray, expected: np.ndarray) -> str:
    """'a / b / c' largest |difference| of SDR, SIR, SAR over finite entries."""
    parts = []
    for index in range(3):
        both = np.isfinite(actual[index]) & np.isfinite(expected[index])
        difference = np.abs(actual[index] - expected[index])[both]
        parts.append(f"{difference.max(initial=0.0):.2e}")
    return " / ".join(parts)


def compare_with_mir_eval(args: argparse.Namespace, device: torch.device,
                          references: np.ndarray, estimates: np.ndarray) -> None:
    refs = torch.from_numpy(references).to(device)
    ests = torch.from_numpy(estimates).to(device)
    # Alternate the two so that a change in machine load hits both; keep each one's best.
    ours_s = mir_eval_s = float("inf")
    for _ in tqdm(range(args.rounds), desc="ours vs mir_eval"):
        elapsed, ours = timed(device, lambda: as_array(
            bss_eval_sources(refs, ests, chunk_size=args.chunk_size)))
        ours_s = min(ours_s, elapsed)
        elapsed, expected = time_mir_eval(references, estimates)
        mir_eval_s = min(mir_eval_s, elapsed)
    per_ours = ours_s / args.segments
    per_mir_eval = mir_eval_s / args.segments
    print(f"avsep.metrics (batched): {per_ours:.4f} s/segment")
    print(f"mir_eval (one by one):   {per_mir_eval:.4f} s/segment")
    print(f"speed-up: {per_mir_eval / per_ours:.1f}x")
    print(f"largest |difference| SDR/SIR/SAR: {largest_differences(ours, expected)} dB")


def compare_shared_with_separate(args: argparse.Namespace, device: torch.device,
                                 references: np.ndarray, estimate_sets: np.ndarray) -> None:
    refs = torch.from_numpy(references).to(device)
    sets = torch.from_numpy(np.ascontiguousarray(estimate_sets)).to(device)

    def separate() -> np.ndarray:
        return np.stack([as_array(bss_eval_sources(refs, one, chunk_size=args.chunk_size))
                         for one in sets], axis=1)  # (3, M, S, N)

    def shared() -> np.ndarray:
        return as_array(bss_eval_sources_sets(refs, sets, chunk_size=args.chunk_size))

    separate_s = shared_s = float("inf")
    for _ in tqdm(range(args.rounds), desc="separate vs shared"):
        elapsed, separate_metrics = timed(device, separate)
        separate_s = min(separate_s, elapsed)
        elapsed, shared_metrics = timed(device, shared)
        shared_s = min(shared_s, elapsed)
    num_sets = sets.shape[0]
    per_separate = separate_s / args.segments
    per_shared = shared_s / args.segments
    print(f"{num_sets} estimate sets per segment, chunk size {args.chunk_size}:")
    print(f"  separate calls (one per set): {per_separate:.4f} s/segment")
    print(f"  shared call (bss_eval_sources_sets): {per_shared:.4f} s/segment")
    print(f"  speed-up: {per_separate / per_shared:.2f}x")
    # The mixture set's SAR is float64 round-off in both (saturated); leave it out.
    comparable = shared_metrics.copy()
    comparable[2, 1] = separate_metrics[2, 1]
    print("  largest |shared - separate| SDR/SIR/SAR (mixture SAR excluded): "
          f"{largest_differences(comparable, separate_metrics)} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device for avsep (cpu, cuda, cuda:1)")
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--samples", type=int, default=65535)
    parser.add_argument("--sets", type=int, default=4, help="estimate sets per segment")
    parser.add_argument("--chunk-size", type=int, default=8, help="items per batched solve")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; best is kept")
    parser.add_argument("--skip-mir-eval", action="store_true",
                        help="only time shared vs separate factorisations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.sets < 2:
        parser.error("--sets must be at least 2 (the given estimates and the mixture)")

    device = torch.device(args.device)
    references, estimates = make_segments(args.segments, args.sources, args.samples, args.seed)
    estimate_sets = make_estimate_sets(references, estimates, args.sets, args.seed)
    print(f"{args.segments} segments x {args.sources} sources x {args.samples} samples; "
          f"avsep on {device} ({torch.get_num_threads()} CPU threads), mir_eval on CPU")

    warm_refs = torch.from_numpy(references[:1]).to(device)
    warm_sets = torch.from_numpy(np.ascontiguousarray(estimate_sets[:, :1])).to(device)
    bss_eval_sources(warm_refs, warm_sets[0])  # warm-up: FFT plans, kernels, allocator
    bss_eval_sources_sets(warm_refs, warm_sets)
    if not args.skip_mir_eval:
        compare_with_mir_eval(args, device, references, estimates)
    compare_shared_with_separate(args, device, references, estimate_sets)


if __name__ == "__main__":
    main()
