"""Run tracking on rank 0: a JSONL metrics file, PNG training curves, and wandb.

wandb runs offline by default (`wandb sync` uploads later); `online` falls back to offline
with a warning when it cannot start within a short timeout, so training never blocks or
fails for want of a network.
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Literal

WandbMode = Literal["online", "offline", "disabled"]


class Tracker:
    """Appends metric records to `run_dir/metrics.jsonl` and mirrors them to wandb."""

    def __init__(self, run_dir: Path, config: dict, wandb_mode: WandbMode = "offline",
                 project: str = "avsep", enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.path = self.run_dir / "metrics.jsonl"
        self._wandb = None
        if enabled and wandb_mode != "disabled":
            self._wandb = _start_wandb(self.run_dir, config, wandb_mode, project)

    def log(self, record: dict[str, Any]) -> None:
        """Write one record (must contain `step` and `kind`: "train", "val" or "val_set")."""
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        if self._wandb is not None:
            kind = record["kind"]
            values = {f"{kind}/{k}": v for k, v in record.items()
                      if k not in ("step", "kind", "time") and isinstance(v, (int, float))}
            self._wandb.log(values, step=int(record["step"]))

    def plot(self) -> Path | None:
        """Redraw `run_dir/curves.png` from the metrics file."""
        if not self.enabled or not self.path.exists():
            return None
        return plot_curves(self.path, self.run_dir / "curves.png")

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _start_wandb(run_dir: Path, config: dict, mode: WandbMode, project: str):
    try:
        import wandb  # heavy and only for runs that log to W&B
    except ImportError:
        print("warning: wandb is not installed; logging locally only", file=sys.stderr)
        return None
    settings = wandb.Settings(init_timeout=60, silent=True, console="off")
    attempts: list[WandbMode] = [mode, "offline"] if mode == "online" else [mode]
    for attempt in attempts:
        try:
            return wandb.init(project=project, dir=str(run_dir), config=config, mode=attempt,
                              settings=settings, resume="allow", id=_run_id(run_dir))
        except Exception as exc:  # noqa: BLE001 - wandb raises many types when offline
            print(f"warning: wandb {attempt} failed to start ({exc}); "
                  + ("falling back to offline" if attempt == "online" else "logging locally only"),
                  file=sys.stderr)
    return None


def _run_id(run_dir: Path) -> str:
    """A stable wandb id per run directory, so a resumed run continues the same wandb run."""
    id_file = run_dir / "wandb_id.txt"
    if id_file.exists():
        return id_file.read_text().strip()

    run_id = uuid.uuid4().hex[:12]
    id_file.write_text(run_id)
    return run_id


def read_metrics(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(metrics_path: Path, out_path: Path) -> Path:
    """Training loss, validation loss and validation SDR against step, as one PNG."""
    import matplotlib  # heavy (~0.5 s); only the curve figure needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    if val:
        ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    for key, label, style in (("sdr", "separated SDR", "o-"), ("sdr_mixture", "mixture SDR", "--"),
                              ("sir", "separated SIR", "s:")):
        points = [(r["step"], r[key]) for r in val if key in r and math.isfinite(r[key])]
        if points:
            ax.plot(*zip(*points), style, label=label)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("step")
    ax.set_ylabel("dB (validation)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
