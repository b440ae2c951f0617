"""The original Sound of Pixels training step, timed with the original code's own modules,
for a side-by-side figure with `benchmarks/train.py` on the same device.

The original repository is not part of avsep; point `--original` at a checkout of it
(github.com/hangzhaomit/Sound-of-Pixels). Its `models` package is imported as it is:
`Unet` (unet7, 32 channels), `ResnetDilated` around torchvision's ResNet-18 (max pooling),
`InnerProd` and `BCELoss`, with `ModelBuilder.weights_init` and the optimizer groups of its
`create_optimizer` (SGD, momentum 0.9, weight decay 1e-4). The step follows its
`NetWrapper.forward` (MUSIC recipe: 2 mixed sources, log-frequency warp to 256 bins,
weighted binary-mask BCE, 3 frames of 224 x 224 per source, sigmoid visual and output
activations). ImageNet weights are not loaded (nothing is downloaded); they do not change
the step's cost.

What the step does not include, so that the comparison is read right: the original computes
the STFT magnitudes in its data workers (librosa, on the CPU), so its GPU step starts from
(B, 1, 512, 256) magnitudes; avsep's `SoundOfPixels` takes waveforms and runs the STFT on the
device inside the step. Batches here are random tensors made once (pure compute).

    python benchmarks/original_step.py --original PATH --device cuda --batch 80
    python benchmarks/original_step.py --original PATH --device cuda --batch 80 --bf16 \
        --channels-last      # the same precision and layout as avsep's GPU default
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

# STFT of the MUSIC recipe: 65535 samples at 11025 Hz, window 1022, hop 256.
FREQ_BINS, TIME_FRAMES, WARPED_BINS = 512, 256, 256


def warp_grid(batch: int, height: int, width: int) -> np.ndarray:
    """The original's log-frequency sampling grid (its `utils.warpgrid(..., warp=True)`):
    (batch, height, width, 2), x linear in [-1, 1], y = (21^((v+1)/2) - 11) / 10."""
    xv, yv = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    grid = np.zeros((batch, height, width, 2), dtype=np.float32)
    grid[..., 0] = xv
    grid[..., 1] = (np.power(21.0, (yv + 1) / 2) - 11) / 10
    return grid


def import_original(path: Path):
    """The original repository's `models` package (raises a clear error if it is not one)."""
    if not (path / "models" / "audio_net.py").is_file():
        sys.exit(f"{path} is not a checkout of the original Sound of Pixels code "
                 "(models/audio_net.py is missing)")
    sys.path.insert(0, str(path))
    import models  # the original's package, importable only from its checkout

    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", required=True, type=Path,
                        help="checkout of github.com/hangzhaomit/Sound-of-Pixels")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--bf16", action="store_true",
                        help="bf16 autocast for the networks (the loss stays fp32: "
                             "binary_cross_entropy refuses autocast)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()

    models = import_original(args.original)
    from models.audio_net import Unet
    from models.criterion import BCELoss
    from models.synthesizer_net import InnerProd
    from models.vision_net import ResnetDilated

    device = torch.device(args.device)
    builder = models.ModelBuilder()
    net_sound = Unet(fc_dim=32, num_downs=7)
    net_sound.apply(builder.weights_init)
    net_frame = ResnetDilated(torchvision.models.resnet18(weights=None), fc_dim=32,
                              pool_type="maxpool")
    net_synth = InnerProd(fc_dim=32)
    nets = [n.to(device) for n in (net_sound, net_frame, net_synth)]
    if args.channels_last:
        nets = [n.to(memory_format=torch.channels_last) for n in nets]
    net_sound, net_frame, net_synth = nets
    crit = BCELoss()
    optimizer = torch.optim.SGD(
        [{"params": net_sound.parameters(), "lr": 1e-3},
         {"params": net_synth.parameters(), "lr": 1e-3},
         {"params": net_frame.features.parameters(), "lr": 1e-4},
         {"params": net_frame.fc.parameters(), "lr": 1e-3}],
        momentum=0.9, weight_decay=1e-4)

    b, n = args.batch, args.sources
    g = torch.Generator().manual_seed(0)
    mags = [torch.rand(b, 1, FREQ_BINS, TIME_FRAMES, generator=g).to(device) for _ in range(n)]
    mag_mix = sum(mags)
    frames = [torch.randn(b, 3, args.frames, args.image_size, args.image_size,
                          generator=g).to(device) for _ in range(n)]
    grid = torch.from_numpy(warp_grid(b, WARPED_BINS, TIME_FRAMES)).to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def step() -> torch.Tensor:
        # The original's NetWrapper.forward, MUSIC recipe (see the module docstring).
        mix = F.grid_sample(mag_mix + 1e-10, grid, align_corners=True)
        parts = [F.grid_sample(m, grid, align_corners=True) for m in mags]
        weight = torch.clamp(torch.log1p(mix), 1e-3, 10)
        gt_masks = [(p > 0.5 * mix).float() for p in parts]
        with amp:
            feat_sound = net_sound(torch.log(mix).detach())
            preds = []
            for k in range(n):
                feat_frame = torch.sigmoid(net_frame.forward_multiframe(frames[k]))
                preds.append(torch.sigmoid(net_synth(feat_frame, feat_sound)))
        return crit([p.float() for p in preds], gt_masks, weight)

    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = step()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print(f"original Sound of Pixels modules ({args.original})  device {device}  batch {b} x {n} "
          f"sources  frames {args.frames}x{args.image_size}  bf16 {args.bf16}  "
          f"channels_last {args.channels_last}  data random tensors (STFT in the data workers)")
    print(f"step time (median of {args.steps}): {median:.3f} s")
    print(f"mixtures per second: {b / median:.2f}")
    if device.type == "cuda":
        print(f"peak memory: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB "
              "(CUDA max allocated)")


if __name__ == "__main__":
    main()
