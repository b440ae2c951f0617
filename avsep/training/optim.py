"""The optimiser and its schedule as a run config asks for them, and the step's numerics
(gradient bound, autocast precision)."""

from __future__ import annotations

import math

import torch

from avsep.run_config import RunConfig


def group_lrs(config: RunConfig) -> dict[str, float]:
    """The initial learning rate of each parameter group of `build_optimizer`, by name."""
    o = config.optim
    return {"frame": o.lr_frame, "synthesizer": o.lr_synthesizer, "sound": o.lr_sound}


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """Parameter groups as in Sound of Pixels: the ResNet backbone at `lr_frame`, the
    synthesizer at `lr_synthesizer`, everything else (U-Net, the vision projection) at
    `lr_sound`."""
    o = config.optim
    groups: dict[str, list[torch.nn.Parameter]] = {"frame": [], "synthesizer": [], "sound": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("vision.backbone."):
            groups["frame"].append(param)
        elif name.startswith("synthesizer."):
            groups["synthesizer"].append(param)
        else:
            groups["sound"].append(param)
    lrs = group_lrs(config)
    param_groups = [{"params": p, "lr": lrs[k], "name": k} for k, p in groups.items() if p]
    if o.optimizer == "sgd":
        return torch.optim.SGD(param_groups, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(param_groups, momentum=o.momentum,
                                   weight_decay=o.weight_decay)
    others = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
              "adadelta": torch.optim.Adadelta}
    return others[o.optimizer](param_groups, weight_decay=o.weight_decay)


def lr_milestone_steps(config: RunConfig) -> list[int]:
    """The steps at which the learning rates are multiplied by `optim.lr_decay`."""
    return [int(e) * config.train.steps_per_epoch for e in config.optim.lr_milestones]


def build_scheduler(optimizer: torch.optim.Optimizer, config: RunConfig
                    ) -> torch.optim.lr_scheduler.MultiStepLR:
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, lr_milestone_steps(config),
                                                gamma=config.optim.lr_decay)


def budget_decay_due(config: RunConfig, decays_done: int, elapsed_share: float) -> bool:
    """True when `elapsed_share` of `train.max_minutes` has reached the next of
    `optim.lr_budget_fractions` after the `decays_done` already applied."""
    shares = config.optim.lr_budget_fractions
    return decays_done < len(shares) and elapsed_share >= shares[decays_done]


def max_grad_norm(config: RunConfig) -> float:
    """The gradient-norm bound: `optim.grad_clip`, or no bound (inf: the norm is still
    measured and logged) when it is 0, as in the original."""
    return config.optim.grad_clip if config.optim.grad_clip > 0 else math.inf


def autocast_dtype(config: RunConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast (`train.precision`; "auto": on GPUs), or None for fp32."""
    precision = config.train.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None
