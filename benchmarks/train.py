"""Training-step throughput: mixtures per second, share of step time spent waiting on data,
and peak memory, for a model built from a config preset.

With `--data SHARDS` batches come from the real training reader (webdataset workers,
random windows, JPEG decode, mixture grouping), so the data-wait share is meaningful;
without it, batches are random tensors made once (pure compute).

    python benchmarks/train.py                                       # sop default, CPU, batch 4
    python benchmarks/train.py --data work/synthetic/bench/shards/solos --workers 2
    python benchmarks/train.py --device cuda --batch 80 --bf16 --channels-last [--compile]
    python benchmarks/train.py --config demo --batch 16 --data SHARDS --workers 1 \
        --channels-last [--tarfile-reader]   # the demo's step on CPU; tarfile's tar parser

`--profile N` profiles N more steps after the timed ones (torch.profiler) and prints the
operators that take the most of the device's time (CPU time on the CPU): where a step goes
(convolutions of the vision net and the U-Net, STFT and warp, loss, optimiser, copies).

`--tarfile-reader` reads the shards' tar members with Python's tarfile (webdataset's own
reader, what avsep used before `avsep.tarstream`), for a before / after figure of the data
worker's cost; it needs DataLoader workers started by fork (Linux's default).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from avsep import create_model
from avsep.data.solos import shard_urls, training_loader
from avsep.presets import resolve_preset
from avsep.run_config import RunConfig, load_run_config
from avsep.training.optim import build_optimizer
from avsep.training.step import MixAndSeparate


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_batches(config: RunConfig, batch: int, sources: int):
    spec = config.data.clip
    g = torch.Generator().manual_seed(0)
    fixed = {
        "audio": torch.randn(batch, sources, spec.clip_samples, generator=g) * 0.1,
        "frames": torch.randint(0, 256, (batch, sources, 3, spec.num_frames, spec.image_size,
                                         spec.image_size), generator=g, dtype=torch.uint8),
        "class_index": torch.stack([torch.randperm(13, generator=g)[:sources]
                                    for _ in range(batch)]),
    }
    while True:
        yield fixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="sop", help="shipped preset name (sop, mhunet, demo) or a YAML path")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data", help="prepared Solos shards (default: random tensors)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--tarfile-reader", action="store_true",
                        help="parse shards with tarfile instead of avsep.tarstream (before/after)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after the timed steps, profile N more and print the top operators")
    args = parser.parse_args()

    if args.tarfile_reader:
        import webdataset as wds

        import avsep.sources

        avsep.sources.tar_members = wds.tariterators.tar_file_iterator
    path = resolve_preset(args.config)
    overrides = list(args.overrides) + ["model.kwargs.pretrained=false"] * (
        "pretrained" in load_run_config(path).model.kwargs)
    config = load_run_config(path, overrides)
    device = torch.device(args.device)
    model = create_model(config.model.name, **config.model.kwargs).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    step_fn = MixAndSeparate(model, config.data.mixing).to(device).train()
    net = torch.compile(model) if args.compile else model
    if args.data:
        batches = training_loader(shard_urls(args.data, "train"), config.data.clip, args.batch,
                                  args.sources, seed=0, segment=0, num_workers=args.workers,
                                  distinct_classes=config.data.distinct_classes)
    else:
        batches = random_batches(config, args.batch, args.sources)
    amp = torch.bfloat16 if args.bf16 else None

    def train_step(batch) -> None:
        out = step_fn(net, batch, device, autocast_dtype=amp)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step_times, wait_times = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        train_step(batch)
        t2 = time.perf_counter()
        if i >= args.warmup:
            step_times.append(t2 - t0)
            wait_times.append(t1 - t0)
    step = statistics.median(step_times)
    print(f"model {config.model.name} {config.model.kwargs}  device {device}  batch {args.batch} "
          f"x {args.sources} sources  bf16 {args.bf16}  channels_last {args.channels_last}  "
          f"compile {args.compile}  data {'shards' if args.data else 'random tensors'}"
          f"{' (tarfile reader)' if args.tarfile_reader else ''}")
    print(f"step time (median of {args.steps}): {step:.3f} s")
    print(f"mixtures per second: {args.batch / step:.2f}")
    print(f"data wait share of step time: {sum(wait_times) / sum(step_times):.1%}")
    print(f"peak memory: {peak_memory_mib(device):.0f} MiB "
          f"({'CUDA max allocated' if device.type == 'cuda' else 'process peak RSS'})")
    if args.profile:
        print_profile(lambda: train_step(next(batches)), args.profile, device)


def print_profile(step, steps: int, device: torch.device, rows: int = 25) -> None:
    """Profile `steps` calls of `step` and print the operators with the most self time on
    `device` (CUDA kernels' time on a GPU, CPU time otherwise)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] * (device.type == "cuda"))
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"\nprofile of {steps} steps, by {key}:")
    print(prof.key_averages().table(sort_by=key, row_limit=rows))


if __name__ == "__main__":
    main()
