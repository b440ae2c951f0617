"""Each seed network through the whole pipeline on the tiny stand-in: `avsep train` with its
preset, `avsep evaluate` on URMP real mixtures and `avsep separate` on a duet video (and
`avsep localize` for a visually conditioned model with a seed audio backbone)."""

from __future__ import annotations

import json

import pytest

from avsep.cli import main

SMALL = {
    "htmd_net": {"filters": 16, "kernel": 8, "bottleneck": 8, "hidden": 16, "layers": 3,
                 "unet_depth": 4, "unet_filters": 4},
    "spectrogram_channels": {"depth": 3, "ngf": 4},
    "tfc_tdf": {"depth": 3, "channels": 4, "layers": 1, "growth": 4},
}
COMMON = ["data.num_workers=0", "data.val_mixtures=2", "train.batch_size=2", "train.epochs=1",
          "train.steps_per_epoch=3", "train.checkpoint_every=3", "train.wandb=disabled"]


def _train(prepared_tiny, run, preset: str, settings: list[str]) -> int:
    return main(["train", "--dataset", "solos", "--data", str(prepared_tiny["solos"]),
                 "--config", preset, "--run-dir", str(run),
                 *[arg for setting in settings + COMMON for arg in ("--set", setting)]])


def _duet_video(synth_tiny):
    duet = next(p for p in sorted(synth_tiny["urmp"].iterdir())
                if p.is_dir() and len(p.name.split("_")) == 4)
    return duet / f"Vid_{duet.name}.mp4"  # a URMP-style name gives the two classes


@pytest.mark.parametrize("name", sorted(SMALL))
def test_train_evaluate_separate(name, prepared_tiny, synth_tiny, tmp_path):
    run = tmp_path / "run"
    assert _train(prepared_tiny, run, name, [f"model.kwargs={json.dumps(SMALL[name])}"]) == 0
    checkpoint = run / "checkpoint.pt"
    assert main(["evaluate", "--dataset", "urmp", "--data", str(prepared_tiny["urmp"]),
                 "--checkpoint", str(checkpoint), "--out", str(tmp_path / "eval")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["counts"]["scored_pairs"] > 0
    assert results["info"]["model"]["name"] == name
    assert main(["separate", str(_duet_video(synth_tiny)), "--checkpoint", str(checkpoint),
                 "--quiet", "--out", str(tmp_path / "separated")]) == 0
    assert len(list((tmp_path / "separated").glob("region_*.wav"))) == 2
