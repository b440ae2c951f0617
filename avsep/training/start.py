"""`train(config, run_dir)`: the one way to start or continue a training run, for `avsep
train` and for library callers alike.

Before anything is built it refuses to start over in a run directory that has a checkpoint
(`resume=False`), applies the dataset's defaults (`dataset_defaults`), and checks the data
(`avsep.training.data.check_data`: a path, settings that go together, train and val shards
that exist). Then it runs the loop (`avsep.training.loop`) in this process, one of the
processes torchrun started; the loop checks the shards' sample rate against the model's
before the first step.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from avsep import distributed
from avsep.classes import MUSIC21_CLASSES
from avsep.faults import InputError
from avsep.models import model_arguments
from avsep.run_config import RunConfig
from avsep.training.checkpoints import CHECKPOINT
from avsep.training.data import check_data
from avsep.training.loop import run_training


class RunDirError(InputError, FileExistsError):
    """The run directory holds a checkpoint that the caller said not to resume."""


def check_run_dir(run_dir: str | os.PathLike[str], resume: bool = True) -> None:
    """Refuse to start over in a run directory with a checkpoint (`resume=False`, the
    command line's --no-resume): its run is never overwritten.

    Raises:
        RunDirError: `run_dir` has a checkpoint and `resume` is false.
    """
    run_dir = Path(run_dir)
    if not resume and (run_dir / CHECKPOINT).exists():
        raise RunDirError(f"{run_dir} already has a checkpoint and --no-resume was given")


def dataset_defaults(config: RunConfig) -> RunConfig:
    """`config` with the defaults its dataset implies: on MUSIC, a class-conditioned model
    gets one output per MUSIC-21 class unless told otherwise (MUSIC shards count class
    indices in `avsep.classes.MUSIC21_CLASSES`)."""
    if config.data.dataset != "music":
        return config
    try:
        known = model_arguments(config.model.name)
    except ValueError:  # an unknown model: building it reports it with the known ones
        return config
    kwargs = dict(config.model.kwargs)
    if "num_classes" in known and "num_classes" not in kwargs:
        kwargs["num_classes"] = len(MUSIC21_CLASSES)
        config = replace(config, model=replace(config.model, kwargs=kwargs))
    return config


def train(config: RunConfig, run_dir: str | os.PathLike[str], device: str = "auto",
          resume: bool = True, progress: bool = True, until_step: int | None = None
          ) -> dict[str, Any]:
    """Train `config` in `run_dir` (created if needed, never deleted); returns a summary.

    Resumes from `run_dir/checkpoint.pt` when it exists and `resume` is true; with `resume`
    false such a checkpoint is an error. `until_step` stops this invocation (with a
    checkpoint) once that many steps are done, as a job scheduler's time slice would; a
    later call continues the same run.

    Returns:
        `rank`, `step`, `stopped_early` (the time limit or `until_step`), `minutes`, and
        the last validation's results as `val_loss`, `val_sdr`, `val_sir`, `val_sar`,
        `val_sdr_mixture`, ...

    Raises:
        InputError: the run cannot start as configured (RunDirError, ConfigError, a resume
            that changes what the checkpoint depends on, a damaged shard or checkpoint...).
        FileNotFoundError: no train or no val shards.
        ShardReadError: shards that cannot be read while training.
        NonFiniteLossError: the loss became NaN or infinite.
    """
    check_run_dir(run_dir, resume)
    config = dataset_defaults(config)
    check_data(config)
    info = distributed.setup(device)
    try:
        return run_training(config, Path(run_dir), info, resume, progress, until_step)
    finally:
        distributed.teardown()
