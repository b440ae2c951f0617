"""Wall time of `avsep evaluate` on a URMP shard folder, split into data, model and metrics.

    python benchmarks/evaluate.py --shards shards/urmp                       # fresh `sop`
    python benchmarks/evaluate.py --shards shards/urmp --checkpoint runs/sop/best.pt
    python benchmarks/evaluate.py --shards shards/urmp --device cuda --batch-size 8

Stand-in shards: `avsep synth urmp --preset bench --out raw/urmp` then
`avsep prepare urmp --src raw/urmp --out shards/urmp`. Without a checkpoint, a default-size
`sop` model with random weights is built (its speed is that of the trained model).
Prints seconds in total and per segment; `model` is separation (nets, STFT, ISTFT),
`oracle` the ideal masks, `metrics` BSS-eval and SI-SDR of the model and the baselines,
`data` the time spent waiting for decoded segments.
"""

from __future__ import annotations

import argparse
import time

import torch

from avsep.evaluation import evaluate_urmp
from avsep.geometry import ClipSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", required=True, help="URMP shard folder")
    parser.add_argument("--checkpoint", help="avsep checkpoint (default: fresh `sop` model)")
    parser.add_argument("--model", default="sop", help="registry name without --checkpoint")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit-pieces", type=int)
    parser.add_argument("--out", help="also write the result files here")
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.checkpoint:
        from avsep.checkpoint import load_checkpoint, training_config

        model, payload = load_checkpoint(args.checkpoint, map_location=device)
        spec, name = training_config(payload, args.checkpoint).data.clip, args.checkpoint
    else:
        from avsep import create_model

        torch.manual_seed(0)
        model = create_model(args.model, **({"pretrained": False} if args.model == "sop"
                                            else {}))
        spec, name = ClipSpec(), f"fresh {args.model}"
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {name} ({parameters / 1e6:.1f} M parameters), device {device}, "
          f"batch {args.batch_size}, {args.workers} reader threads, "
          f"{torch.get_num_threads()} torch threads")

    started = time.perf_counter()
    result = evaluate_urmp(model, args.shards, args.out, batch_size=args.batch_size,
                           device=device, clip_spec=spec, limit_pieces=args.limit_pieces,
                           workers=args.workers)
    total = time.perf_counter() - started
    segments = max(result.segments, 1)
    players = len(result.pairs) / segments
    skipped = ", ".join(f"{k} {v}" for k, v in result.skipped.items() if v) or "none"
    print(f"{result.segments} segments ({players:.2f} players on average), "
          f"{len(result.scored_pairs)} scored pairs, skipped segments: {skipped}")
    print(f"{'':<9}{'seconds':>10}{'per segment':>14}")
    print(f"{'total':<9}{total:>10.2f}{total / segments:>14.3f}")
    for phase in ("data", "model", "oracle", "metrics"):
        seconds = result.timing[phase]
        print(f"{phase:<9}{seconds:>10.2f}{seconds / segments:>14.3f}")
    sdr = result.summary()["overall"]["scores"]
    print("mean SDR: " + ", ".join(f"{m} {sdr[m]['sdr']['mean']:.2f} dB" for m in sdr))


if __name__ == "__main__":
    main()
