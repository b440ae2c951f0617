"""The whole job on the embedded stand-in: generate -> prepare -> train -> evaluate -> heatmap.

`run_demo` is what the README's main command runs: it makes the `bench` stand-in (Solos and
URMP layouts), prepares shards with the same code as real data, trains the small CPU preset
`avsep/configs/demo.yaml` for at most `minutes`, evaluates on the held-out stand-in URMP duets
(real-mixture protocol, with mixture and ideal-mask baselines), again on the same duets drawn
in a visual style no training data has ("studio") and drawn in a family of looks held out of
training (`held_out`: the training videos are drawn in the other families), and renders a localization heatmap video
and contact sheet of one duet: the total heat, and one colour per player (which player's
sound each location holds, `avsep.inference.players`). Every stage resumes or skips finished work when run again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from avsep.checkpoint import load_checkpoint, training_config
from avsep.evaluation import evaluate_urmp, index_urmp_shards
from avsep.evaluation.localization import players_sounding
from avsep.inference import localize_players, render_localization, render_players
from avsep.inference.render import LOCALIZATION_OUTPUTS
from avsep.outputs import staged_outputs
from avsep.presets import resolve_preset
from avsep.run_config import load_run_config
from avsep.training import train
from avsep.urmp_naming import parse_piece_name
from avsep.workflows.standin import (
    HELD_OUT_NAME,
    UNSEEN_STYLE,
    check_held_out,
    ensure_standin,
)

DEMO_HELD_OUT = "lineart"
"""The drawing family the demo holds out of training (fold 1 of the leave-one-family-out
rotation, docs/unseen-looks.md)."""


def duet_pieces(urmp_shards: Path) -> list[str]:
    """Names of the two-player pieces in prepared URMP shards."""

    pieces = {segment.piece for segment in index_urmp_shards(urmp_shards)}
    return sorted(name for name in pieces if len(parse_piece_name(name)[2]) == 2)


def run_demo(root: str | Path = "work", preset: str = "bench", minutes: float = 15.0,
             config: str | Path | None = None, jobs: int = 2, device: str = "auto",
             held_out: str | None = DEMO_HELD_OUT) -> dict:
    """Run every stage under `root`; returns the headline figures (also in root/demo.json).

    `held_out`: the drawing family no training video is drawn in, scored as its own table
    (None: every video in the classic look, as the stand-in of the earlier figures)."""

    check_held_out(held_out)
    root = Path(root)
    standin = preset if held_out is None else f"{preset}_without_{held_out}"
    paths = ensure_standin(root / "synthetic" / standin, preset, jobs=jobs, held_out=held_out)

    run_config = load_run_config(resolve_preset(config or "demo"),
                                 [f"train.max_minutes={minutes}"])
    run_config = replace(run_config, data=replace(run_config.data, path=str(paths.solos_shards)))
    run_dir = root / "demo" / "run"
    print(f"training the demo model in {run_dir} (at most {minutes:g} minutes)")
    train_summary = train(run_config, run_dir, device=device)

    # The best validation checkpoint (`train.best_metric`; training on the stand-in is noisy).
    chosen = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "checkpoint.pt"
    model, checkpoint = load_checkpoint(chosen, map_location="cpu")
    duets = duet_pieces(paths.urmp_shards)
    clip_spec = training_config(checkpoint, chosen).data.clip
    sets = [("", f"{len(duets)} held-out stand-in URMP duets", paths.urmp_shards, "evaluation"),
            (f"{UNSEEN_STYLE}_", f"the same duets drawn in the unseen '{UNSEEN_STYLE}' style",
             paths.urmp_studio_shards, f"evaluation_{UNSEEN_STYLE}")]
    if paths.urmp_unseen_shards is not None:
        sets.append(("held_out_", f"the same duets drawn in the held-out family '{held_out}'",
                     paths.urmp_unseen_shards, f"evaluation_{HELD_OUT_NAME}"))
    scores = {}
    for prefix, what, shards, out in sets:
        print(f"evaluating on {what}")
        overall = evaluate_urmp(model, shards, root / "demo" / out, clip_spec=clip_spec,
                                pieces=duet_pieces(shards),
                                device=device).summary()["overall"]["scores"]
        scores.update({f"{prefix}{method}_{metric}": overall[method][metric]["mean"]
                       for method in overall for metric in ("sdr", "sir", "sar")})

    video = paths.raw_urmp / duets[0] / f"Vid_{duets[0]}.mp4"
    heatmap_dir = root / "demo" / "heatmap"
    print(f"rendering a localization heatmap of {video.name} into {heatmap_dir}")
    players = localize_players(video, chosen, regions="auto", device=device)
    # The stand-in knows who plays when: the contact sheets say it under each key frame, so a
    # reader sees at a glance whether the heat is on the players that sound.
    folder = video.parent

    def captions(times):
        return ["playing " + (" ".join(p) or "-") for p in players_sounding(folder, times)]

    # The demo's own folder: a rerun replaces it whole (no stale key frames).
    with staged_outputs(heatmap_dir, LOCALIZATION_OUTPUTS, [video], overwrite=True) as staging:
        rendered = render_localization(players.heat, video, staging.folder,
                                       captions=captions).moved(staging.final)
        per_player = render_players(players, video, staging.folder,
                                    captions=captions).moved(staging.final)

    figures = {
        "held_out_family": held_out,
        "train_steps": train_summary["step"],
        "train_minutes": round(train_summary["minutes"], 2),
        "urmp_duets": duets,
        **scores,
        "evaluation": str(root / "demo" / "evaluation" / "results.md"),
        "heatmap_video": str(rendered.video),
        "contact_sheet": str(rendered.contact_sheet),
        "players_video": str(per_player.video),
        "players_contact_sheet": str(per_player.contact_sheet),
        "curves": str(run_dir / "curves.png"),
    }
    (root / "demo.json").write_text(json.dumps(figures, indent=2, default=str))
    return figures
