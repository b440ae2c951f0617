"""Mix-and-separate training: `train(config, run_dir)` starts or continues a run.

The config is an `avsep.run_config.RunConfig`. The modules, in the order a run uses them:
`start` (the entry point and its checks), `loop` (building the run, the steps, validation),
`data` (shards, fixed sets, segments), `optim`, `resume` (what a resume may change),
`checkpoints` (what the run directory holds), `step`, `validate`, `averaging`, `tracking`.
"""

from avsep.training.loop import NonFiniteLossError
from avsep.training.start import RunDirError, check_run_dir, dataset_defaults, train

__all__ = ["NonFiniteLossError", "RunDirError", "check_run_dir", "dataset_defaults", "train"]
