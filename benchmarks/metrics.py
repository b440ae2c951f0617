"""Time avsep.metrics.bss_eval_sources against mir_eval on URMP-sized segments.

Both run in the same process on the same signals, in alternating rounds: ours on the whole
batch at once, mir_eval one segment at a time (as evaluation code would call it). Prints
seconds per segment (best round of each), the speed ratio and the largest disagreement in dB.

    python benchmarks/metrics.py                    # CPU, 20 segments of 2 x 65535 samples
    python benchmarks/metrics.py --device cuda      # ours on the GPU, mir_eval on the CPU
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from tqdm import tqdm

from avsep.metrics import bss_eval_sources


def make_segments(segments: int, sources: int, samples: int, seed: int) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """References (S, N, T) and estimates with leakage of the other sources and noise."""
    rng = np.random.default_rng(seed)
    references = rng.standard_normal((segments, sources, samples))
    mixture = references.sum(1, keepdims=True)
    estimates = references + 0.2 * (mixture - references)
    estimates += 0.3 * rng.standard_normal(references.shape)
    return references, estimates


def time_ours(refs: torch.Tensor, ests: torch.Tensor,
              chunk_size: int) -> tuple[float, np.ndarray]:
    """Wall time of one batched call and its metrics (3, S, N)."""
    if refs.device.type == "cuda":
        torch.cuda.synchronize(refs.device)
    start = time.perf_counter()
    result = bss_eval_sources(refs, ests, chunk_size=chunk_size)
    if refs.device.type == "cuda":
        torch.cuda.synchronize(refs.device)
    elapsed = time.perf_counter() - start
    return elapsed, np.stack([result[name].cpu().numpy() for name in ("sdr", "sir", "sar")])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="device for avsep (cpu, cuda, cuda:1)")
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--samples", type=int, default=65535)
    parser.add_argument("--chunk-size", type=int, default=8, help="items per batched solve")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; best is kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device(args.device)
    references, estimates = make_segments(args.segments, args.sources, args.samples, args.seed)
    print(f"{args.segments} segments x {args.sources} sources x {args.samples} samples; "
          f"avsep on {device} ({torch.get_num_threads()} CPU threads), mir_eval on CPU")

    refs = torch.from_numpy(references).to(device)
    ests = torch.from_numpy(estimates).to(device)
    bss_eval_sources(refs[:1], ests[:1])  # warm-up: FFT plans, kernels, allocator
    # Alternate the two so that a change in machine load hits both; keep each one's best.
    ours_s = mir_eval_s = float("inf")
    for _ in tqdm(range(args.rounds), desc="rounds"):
        elapsed, ours = time_ours(refs, ests, args.chunk_size)
        ours_s = min(ours_s, elapsed)
        elapsed, expected = time_mir_eval(references, estimates)
        mir_eval_s = min(mir_eval_s, elapsed)
    per_ours = ours_s / args.segments
    per_mir_eval = mir_eval_s / args.segments
    print(f"avsep.metrics (batched): {per_ours:.4f} s/segment")
    print(f"mir_eval (one by one):   {per_mir_eval:.4f} s/segment")
    print(f"speed-up: {per_mir_eval / per_ours:.1f}x")
    print("largest |difference| SDR/SIR/SAR: "
          + " / ".join(f"{np.abs(ours[i] - expected[i]).max():.2e}" for i in range(3)) + " dB")


if __name__ == "__main__":
    main()
