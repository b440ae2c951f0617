"""Validation on a fixed set of mixtures: loss, and SDR/SIR/SAR of the separated sources next
to the SDR of the unprocessed mixture (the same metric code as `avsep evaluate`)."""

from __future__ import annotations

import math

import torch

from avsep import distributed
from avsep.metrics import bss_eval_sources_sets, is_silent


@torch.no_grad()
def validate(separator, step_fn, val_set: dict, info, batch_size: int, amp=None) -> dict:
    """Mean validation loss and metrics over `val_set` (split over ranks, merged).

    Segments whose reference or estimate is silent are skipped and counted (`skipped`).

    Returns:
        dict with `loss`, `sdr`, `sir`, `sar`, `sdr_mixture`, `sdr_improvement`, `count`,
        `skipped` (means over (mixture, source) pairs).
    """
    separator.eval()
    step_fn.eval()
    total = val_set["audio"].shape[0]
    indices = list(range(info.rank, total, info.world_size))
    losses: list[tuple[float, int]] = []
    metrics: dict[str, list[float]] = {"sdr": [], "sir": [], "sar": [], "sdr_mixture": []}
    skipped = 0
    for start in range(0, len(indices), batch_size):
        chosen = indices[start:start + batch_size]
        batch = {k: v[chosen] for k, v in val_set.items() if isinstance(v, torch.Tensor)}
        out = step_fn(separator, batch, info.device, autocast_dtype=amp)
        losses.append((out.loss.item(), len(chosen)))
        # The waveforms come from the same pass as the loss: the nets run once per batch.
        objective = out.objective
        estimates = separator.reconstruct(objective.outputs, objective.spec,
                                          out.mix.shape[1]).float()
        refs = out.sources.float()
        skip = is_silent(refs).any(-1) | is_silent(estimates).any(-1)
        skipped += int(skip.sum())
        keep = ~skip
        if keep.any():
            mixture = out.mix[keep].unsqueeze(1).expand_as(refs[keep])
            # One factorisation per segment scores the separation and the mixture baseline.
            scores = bss_eval_sources_sets(refs[keep], torch.stack([estimates[keep], mixture]))
            for name in ("sdr", "sir", "sar"):
                metrics[name].extend(scores[name][0].flatten().tolist())
            metrics["sdr_mixture"].extend(scores["sdr"][1].flatten().tolist())
    gathered = distributed.gather_objects((losses, metrics, skipped))
    all_losses = [x for g in gathered for x in g[0]]
    merged = {k: [v for g in gathered for v in g[1][k]] for k in metrics}
    result = {
        "loss": sum(l * n for l, n in all_losses) / max(sum(n for _, n in all_losses), 1),
        "count": len(merged["sdr"]),
        "skipped": sum(g[2] for g in gathered),
    }
    for name, values in merged.items():
        finite = [v for v in values if math.isfinite(v)]
        result[name] = sum(finite) / len(finite) if finite else math.nan
    result["sdr_improvement"] = result["sdr"] - result["sdr_mixture"]
    return result
