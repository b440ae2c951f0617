"""Time one training step of a separator and measure its peak memory.

A step is what training does: the model's training pass on the device (STFT of the mixture
and the sources, its targets and loss; for `sop`: weighted BCE on binary masks in the warped
domain), backward and an SGD update. Prints seconds per step
(median of the timed steps) and peak memory (CUDA: torch.cuda.max_memory_allocated; CPU:
growth of the process's peak RSS over the run, which includes allocator caching).

    python benchmarks/models.py                                   # sop, CPU, batch 4, 2 sources
    python benchmarks/models.py --device cuda --batch 80 --bf16 --channels-last
    python benchmarks/models.py --model mhunet --sources 3
    python benchmarks/models.py --model htmd_net --inference     # seconds per second of audio
    python benchmarks/models.py --parameters     # parameter counts of every preset's model
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import time
import warnings

import torch
from tqdm import tqdm

from avsep.models import Separator, create_model
from avsep.presets import preset_names, resolve_preset
from avsep.run_config import load_run_config

SAMPLES = 65535


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_batch(model: Separator, batch: int, sources: int, image_size: int, frames: int,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    waves = torch.randn(batch, sources, SAMPLES, generator=g) * 0.1
    if model.condition_kind == "frames":
        condition = torch.randint(0, 256, (batch, sources, 3, frames, image_size, image_size),
                                  generator=g, dtype=torch.uint8)
    else:
        condition = torch.stack([torch.randperm(13, generator=g)[:sources] for _ in range(batch)])
    return waves.to(device), condition.to(device)


def train_step(model: Separator, optimizer: torch.optim.Optimizer, sources: torch.Tensor,
               condition: torch.Tensor, bf16: bool) -> float:
    autocast = (torch.autocast(sources.device.type, dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())
    with autocast:  # the model keeps its STFT front end and its loss in float32
        loss = model(sources.sum(dim=1), sources, condition).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()  # also synchronises the device


def seconds_per_audio_second(model: Separator, mix: torch.Tensor, condition: torch.Tensor,
                             warmup: int = 2, iters: int = 5) -> float:
    """Median seconds of compute per second of audio for `separate` in eval mode without
    gradients (the seeds' runtime figure).

    Args:
        mix: (B, T) mixtures on the model's device.
        condition: what the model is conditioned on, for those B mixtures.
    """
    model.eval()
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        with torch.no_grad():
            out = model.separate(mix, condition)
        float(out.sum())  # synchronises the device
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) / (mix.shape[-1] / model.sample_rate)


def time_inference(model: Separator, sources: torch.Tensor, condition: torch.Tensor,
                   args: argparse.Namespace, n_params: int) -> None:
    """Print seconds of compute per second of audio for `separate`."""
    value = seconds_per_audio_second(model, sources.sum(dim=1), condition, args.warmup,
                                     args.iters)
    print(f"{args.model}: {n_params:,} parameters on {model_device(model)}, "
          f"threads={torch.get_num_threads()}")
    print(f"separate: {value:.3g} s per second of audio "
          f"(median of {args.iters}, {sources.shape[1]} sources)")


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def print_parameter_counts() -> None:
    """Parameters of each shipped preset's model, and with depthwise-separable convolutions
    where the model has that option (the thesis: ~65% fewer parameters)."""
    print(f"{'preset':22s} {'model':22s} {'parameters':>12s} {'separable':>12s} {'saved':>6s}")
    for preset in preset_names():
        config = load_run_config(resolve_preset(preset))
        kwargs = dict(config.model.kwargs)
        if config.model.name == "sop":
            kwargs["pretrained"] = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = count_parameters(create_model(config.model.name, **kwargs))
            try:
                separable = count_parameters(create_model(config.model.name,
                                                          **{**kwargs, "separable": True}))
            except (TypeError, ValueError):  # the model has no separable option
                separable = None
        cells = (f"{separable:>12,} {100 * (1 - separable / plain):5.1f}%" if separable
                 else f"{'-':>12s} {'-':>6s}")
        print(f"{preset:22s} {config.model.name:22s} {plain:>12,} {cells}")


def model_device(model: torch.nn.Module) -> str:
    parameter = next(iter(model.parameters()), None)
    return str(parameter.device) if parameter is not None else "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sop", help="registered model name")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=3, help="frames per source")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--bf16", action="store_true", help="autocast the nets to bfloat16")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch)")
    parser.add_argument("--parameters", action="store_true",
                        help="print the parameter count of every preset's model (plain and "
                             "with depthwise-separable convolutions) and exit")
    parser.add_argument("--inference", action="store_true",
                        help="time `separate` on one 65535-sample mixture (eval mode, no "
                             "gradients) and print seconds per second of audio instead")
    args = parser.parse_args()

    if args.parameters:
        print_parameter_counts()
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rss_before = peak_rss_mib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing ImageNet file does not matter for timing
        model = create_model(args.model, **({"pretrained": False} if args.model == "sop" else {}))
    model.to(device).train()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    sources, condition = make_batch(model, args.batch, args.sources, args.image_size,
                                    args.frames, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    n_params = sum(p.numel() for p in model.parameters())
    if args.inference:
        time_inference(model, sources[:1], condition[:1], args, n_params)
        return
    print(f"{args.model}: {n_params:,} parameters on {device}, batch {args.batch} x "
          f"{args.sources} sources, {args.frames} frames of {args.image_size}px, "
          f"bf16={args.bf16}, channels_last={args.channels_last}, "
          f"threads={torch.get_num_threads()}")
    times = []
    for i in tqdm(range(args.warmup + args.iters), desc="steps"):
        start = time.perf_counter()
        loss = train_step(model, optimizer, sources, condition, args.bf16)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    print(f"loss after {len(times) + args.warmup} steps: {loss:.4f}")
    print(f"seconds per training step: median {statistics.median(times):.3f}, "
          f"min {min(times):.3f}, max {max(times):.3f} over {len(times)} steps")
    print(f"samples per second: {args.batch / statistics.median(times):.2f}")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        print(f"peak CUDA memory allocated: {peak:.2f} GiB")
    else:
        print(f"peak RSS growth: {peak_rss_mib() - rss_before:.0f} MiB "
              f"(peak RSS {peak_rss_mib():.0f} MiB)")


if __name__ == "__main__":
    main()
