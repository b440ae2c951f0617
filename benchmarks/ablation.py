"""Train several configurations for the same budget on the bench stand-in and put their
held-out scores in one table.

Each row is a training preset (a name from `avsep/configs` or a YAML path) plus `--set`
style overrides. A row trains for `--minutes` on the prepared stand-in Solos shards, is
evaluated with the URMP real-mixture protocol on the held-out stand-in duets (the same code
as `avsep evaluate`: the model beside the mixture and the ideal binary / ratio masks of the
same segments), and its figures are cached under `--root/<row>/<key>/result.json`, where the
key hashes the preset's text, the overrides, the budget and the git revision: an interrupted
study resumes, and a row is retrained only when one of those changed.

    python benchmarks/ablation.py                  # every row, 10 minutes each -> docs/ablation.md
    python benchmarks/ablation.py --minutes 2.5    # the committed run: ~85 minutes on 2 cores
    python benchmarks/ablation.py --rows demo spectrogram_channels --minutes 5
    python benchmarks/ablation.py --list           # the rows and what they test

Two tables (markdown) go to stdout and to `--out` (default docs/ablation.md when every row
runs), with the command, the revision and the machine at their top: the rows' scores beside
the mixture and the ideal masks, then each seed claim (`ablation_claims.CLAIMS`) with what
was measured and whether it held. Run it on an otherwise idle machine: the rows share a
wall-clock budget, so anything else running changes how many steps each row gets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from ablation_claims import SOP, Z, claims_table, paired_difference, verdict_counts  # benchmarks/
from models import make_batch, seconds_per_audio_second  # benchmarks/

from avsep.checkpoint import load_checkpoint, training_config
from avsep.evaluation import evaluate_urmp
from avsep.presets import resolve_preset
from avsep.run_config import load_run_config
from avsep.training import train
from avsep.workflows.demo import duet_pieces
from avsep.workflows.standin import ensure_standin


@dataclass(frozen=True)
class Row:
    """One configuration of the study."""

    name: str
    preset: str
    overrides: tuple[str, ...] = ()
    note: str = ""


# The class-conditioned rows run at the demo preset's CPU scale: ~3 s windows, batch 16, one
# small frame per clip (their frames are not used), validation on 32 mixtures, best.pt by
# validation SDR, as `demo` does.
DEMO_SCALE = ("data.clip.clip_samples=32767", "data.clip.num_frames=1",
              "data.clip.image_size=96", "data.clip.resize_short_side=106",
              "data.num_workers=1", "data.val_mixtures=32",
              "train.batch_size=16", "train.checkpoint_every=100", "train.log_every=10",
              "train.best_metric=sdr", "train.wandb=disabled", "train.precision=fp32")

TFC_TDF_DEMO = ("model.kwargs={block: tfc_tdf, input: complex, output: direct, depth: 4, "
                "channels: 8, layers: 1, growth: 8, bottleneck: 4}")
HTMD_DEMO = "model.kwargs={filters: 64, hidden: 64, bottleneck: 32, unet_filters: 6}"

# The seeds' claims about the Sound of Pixels U-Net (masks, optimisers, depth, skips,
# separable convolutions, dynamic mixing) and avsep's visual-vector options are tested on the
# demo with the original pooling (`SOP`, the row `demo_max_pooling`): the demo preset's mean
# pooling and instrument class loss are for localization, and at this study's short budget
# the class loss delays the start of separation (2.5 minutes: `demo` 0.30 dB after 122 steps
# against 2.27 dB for `demo_max_pooling` after 125; at the demo's 15 minutes their best
# validation SDR is level, 6.11 and 6.29 dB).
# Without the class head the demo's audio tagger has nothing to gate with (and it does not
# change what separation learns), so the rows that take the class loss back drop it too.
NO_CLASS_LOSS = ("model.kwargs.visual_class_loss=0.0", "model.kwargs.audio_tagging=0.0")
ORIGINAL_POOLING = ("model.kwargs.visual_pooling=max", *NO_CLASS_LOSS)


def sop_variant(name: str, overrides: tuple[str, ...], note: str) -> Row:
    """A row of the demo preset with the original pooling (the `SOP` row) and `overrides`."""
    return Row(name, "demo", ORIGINAL_POOLING + overrides, note=note)

ROWS: tuple[Row, ...] = (
    # --- Sound of Pixels (the demo model) and its variants
    Row("demo", "demo", note="the CPU demo Sound of Pixels (visually conditioned)"),
    sop_variant("demo_binary", ("model.kwargs.mask_type=binary",),
        note="complementary binary masks (BCE), as SoP in the Solos paper"),
    Row("mhunet", "mhunet", DEMO_SCALE + (
        "data.curriculum=[]", "model.kwargs.ngf=8", "optim.lr_sound=1.0e-3"),
        # The recipe's lr 1e-4 is for 100k steps; at this budget both models get Adam 1e-3.
        note="MHU-Net at the demo's width (ngf 8, depth 6), 2 sources, Adam 1e-3"),
    sop_variant("demo_sgd", ("optim.optimizer=sgd",),
        note="SGD, momentum 0.9 (the original)"),
    sop_variant("demo_rmsprop",
        ("optim.optimizer=rmsprop", "optim.momentum=0.0"),
        note="RMSprop lr 1e-3"),
    sop_variant("demo_adagrad",
        ("optim.optimizer=adagrad", "optim.lr_sound=1.0e-2",
                            "optim.lr_frame=1.0e-2", "optim.lr_synthesizer=1.0e-2"),
        note="Adagrad at its usual lr 1e-2"),
    sop_variant("demo_adadelta",
        ("optim.optimizer=adadelta", "optim.lr_sound=1.0",
                            "optim.lr_frame=1.0", "optim.lr_synthesizer=1.0"),
        note="Adadelta at its usual lr 1"),
    sop_variant("demo_depth4", ("model.kwargs.depth=4",),
        note="U-Net of 4 levels (demo: 6)"),
    sop_variant("demo_noskip", ("model.kwargs.skips=false",),
        note="the U-Net without skips: a plain auto-encoder of 6 levels"),
    sop_variant("demo_noskip_depth4",
        ("model.kwargs.skips=false", "model.kwargs.depth=4"),
        note="a plain auto-encoder of 4 levels"),
    sop_variant("demo_separable", ("model.kwargs.separable=true",),
        note="depthwise-separable convolutions in the U-Net"),
    sop_variant("demo_fixed", ("data.fixed_mixtures=160",),
        note="a fixed set of 160 mixtures (all 320 training clips) instead of fresh ones"),
    sop_variant("demo_sigmoid_visual",
        ("model.kwargs.visual_activation=sigmoid",),
        note="the original sigmoid on the visual vector"),
    sop_variant("demo_no_visual_norm", ("model.kwargs.visual_norm=none",),
        note="no BatchNorm of the visual vectors (the original)"),
    # `demo` pools its visual vectors by a mean and adds an instrument cross-entropy
    # (localization, docs/localization.md); these rows take each of those back.
    Row(SOP, "demo", ORIGINAL_POOLING,
        note="the original max over locations and no class loss (localization)"),
    Row("demo_mean_pooling", "demo", NO_CLASS_LOSS,
        note="mean pooling without the instrument class loss (localization)"),
    Row("demo_full_vision", "demo", ("model.kwargs.vision_width=1.0",),
        note="the original ResNet-18's width (demo: half the channels, for more steps)"),
    # --- Spectrogram-Channels U-Net
    Row("spectrogram_channels", "spectrogram_channels", DEMO_SCALE,
        note="Spectrogram-Channels U-Net, direct magnitudes, balanced L1 (M6)"),
    Row("spectrogram_channels_m5", "spectrogram_channels", DEMO_SCALE + (
        "model.kwargs.balance=m5",), note="... with equal source weights (M5)"),
    Row("spectrogram_channels_mask", "spectrogram_channels", DEMO_SCALE + (
        "model.kwargs.output=mask",), note="... with a magnitude mask instead of direct output"),
    # --- U-Nets with intermediate blocks. The preset's width (24 channels, 3 dense layers)
    # costs ~23 s per step here, 2.8 s at this width (measured, 2 cores, batch 16 x 3 s).
    Row("tfc_tdf", "tfc_tdf", DEMO_SCALE + (TFC_TDF_DEMO,),
        note="TFC-TDF U-Net on complex-as-channels spectrograms, direct output, demo width"),
    Row("tfc_tdf_mask", "tfc_tdf", DEMO_SCALE + (TFC_TDF_DEMO, "model.kwargs.output=mask"),
        note="the same TFC-TDF U-Net with a complex mask on the mixture instead of direct output"),
    Row("tfc", "tfc_tdf", DEMO_SCALE + (TFC_TDF_DEMO, "model.kwargs.block=tfc"),
        note="TFC blocks (no TDF)"),
    Row("tdf", "tfc_tdf", DEMO_SCALE + (TFC_TDF_DEMO, "model.kwargs.block=tdf"),
        note="TDF blocks"),
    Row("tdc", "tfc_tdf", DEMO_SCALE + (TFC_TDF_DEMO, "model.kwargs.block=tdc"),
        note="TDC blocks"),
    Row("tfc_tdf_magnitude", "tfc_tdf", DEMO_SCALE + (TFC_TDF_DEMO, "model.kwargs.input=magnitude"),
        note="TFC-TDF on log magnitudes instead of complex-as-channels"),
    # --- HTMD-Net and its halves
    Row("htmd_net", "htmd_net", DEMO_SCALE + (HTMD_DEMO,),
        note="HTMD-Net at demo width, deep supervision (MSE, MSE), (0.5, 1)"),
    Row("htmd_net_no_ds", "htmd_net", DEMO_SCALE + (HTMD_DEMO, "model.kwargs.weight_masking=0.0"),
        note="... without deep supervision: the denoiser's loss only"),
    Row("htmd_net_mae", "htmd_net", DEMO_SCALE + (
        HTMD_DEMO, "model.kwargs.loss_masking=mae", "model.kwargs.loss_denoising=mae"),
        note="... with (MAE, MAE)"),
    Row("conv_tasnet", "conv_tasnet", DEMO_SCALE + (
        "model.kwargs={filters: 64, hidden: 64, bottleneck: 32, stacks: 3, layers: 8}",),
        note="Conv-TasNet alone at demo width"),
    Row("wave_unet", "wave_unet", DEMO_SCALE + (
        "model.kwargs={unet_filters: 12, lstm: false}",), note="Wave-U-Net alone at demo width"),
)

METRICS = ("sdr", "sir", "sar", "si_sdr")


def revision() -> str:
    """The commit, the git tree of the `avsep` package (what the cache keys on: commits that
    touch only docs, tests or benchmarks keep cached rows), and `+dirty` when the package has
    uncommitted changes."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                              text=True).stdout.strip()

    try:
        commit, tree = git("rev-parse", "--short", "HEAD"), git("rev-parse", "--short",
                                                                "HEAD:avsep")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "avsep")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (avsep tree {tree}{'+dirty' if dirty else ''})"


def cache_revision(rev: str) -> str:
    return rev.split("avsep tree ", 1)[-1].rstrip(")")


def row_key(row: Row, minutes: float, rev: str) -> str:
    text = resolve_preset(row.preset).read_text()
    blob = json.dumps([text, list(row.overrides), minutes, cache_revision(rev)])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def run_row(row: Row, standin, root: Path, minutes: float, rev: str, device: str) -> dict:
    """Train, evaluate and cache one row (or read its cached result)."""
    folder = root / row.name / row_key(row, minutes, rev)
    cached = folder / "result.json"
    if cached.exists():
        print(f"[{row.name}] cached: {cached}")
        return with_inference_cost(json.loads(cached.read_text()), folder)
    config = load_run_config(resolve_preset(row.preset),
                             [*row.overrides, f"train.max_minutes={minutes}"])
    config = replace(config, data=replace(config.data, path=str(standin.solos_shards)))
    print(f"[{row.name}] training {row.preset} {' '.join(row.overrides)} for {minutes:g} min")
    started = time.monotonic()
    summary = train(config, folder / "run", device=device)
    train_seconds = time.monotonic() - started
    model, checkpoint = load_checkpoint(trained_checkpoint(folder), map_location="cpu")
    result = evaluate_urmp(model, standin.urmp_shards, folder / "evaluation",
                           clip_spec=training_config(checkpoint, trained_checkpoint(folder)).data.clip,
                           pieces=duet_pieces(standin.urmp_shards), device=device,
                           progress=False)
    summary_of_scores = result.summary()
    scores = summary_of_scores["overall"]["scores"]
    figures = {
        "row": row.name, "preset": row.preset, "overrides": list(row.overrides),
        "note": row.note, "revision": rev, "minutes": minutes,
        "parameters": sum(p.numel() for p in model.parameters()),
        "audio_parameters": audio_parameters(model),
        "steps": summary["step"],
        "mixtures_per_s": summary["step"] * config.train.batch_size / max(train_seconds, 1e-9),
        "pairs": summary_of_scores["overall"]["pairs"],
        "scores": scores,
        "silent_sources": summary_of_scores["silent_sources"],
        # Per pair, for the claims' paired comparisons (`ablation_claims.paired_difference`).
        "pair_scores": {f"{p.key}/{p.player}": {"sdr": p.scores["model"]["sdr"],
                                                "mixture_sdr": p.scores["mixture"]["sdr"]}
                        for p in result.scored_pairs},
    }
    folder.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(figures, indent=2, default=float))
    return with_inference_cost(figures, folder)


def trained_checkpoint(folder: Path) -> Path:
    chosen = folder / "run" / "best.pt"
    return chosen if chosen.exists() else folder / "run" / "checkpoint.pt"


def with_inference_cost(figures: dict, folder: Path) -> dict:
    """Add (and cache) the row's CPU seconds per second of audio for `separate` on one duet
    mixture of its clip length, measured on the trained checkpoint. Cached rows from before
    this figure existed get it on their next read, without retraining."""
    if "cpu_seconds_per_audio_second" in figures:
        return figures
    model, checkpoint = load_checkpoint(trained_checkpoint(folder), map_location="cpu")
    spec = training_config(checkpoint, trained_checkpoint(folder)).data.clip
    sources, condition = make_batch(model, 1, 2, spec.image_size, spec.num_frames,
                                    torch.device("cpu"))
    figures["cpu_seconds_per_audio_second"] = seconds_per_audio_second(
        model, sources.sum(dim=1), condition, warmup=3, iters=20)
    print(f"[{figures['row']}] separate on CPU: "
          f"{figures['cpu_seconds_per_audio_second']:.3f} s per second of audio")
    (folder / "result.json").write_text(json.dumps(figures, indent=2, default=float))
    return figures


def audio_parameters(model: torch.nn.Module) -> int:
    """Parameters of the audio network (what the U-Net thesis counts); the whole model for
    models without a separate one."""
    for name in ("audio_net", "net"):
        part = getattr(model, name, None)
        if isinstance(part, torch.nn.Module):
            return sum(p.numel() for p in part.parameters())
    return sum(p.numel() for p in model.parameters())


def _cell(stats: dict) -> str:
    mean, std, median = stats.get("mean"), stats.get("std"), stats.get("median")
    if mean is None:
        return "n/a"
    return f"{mean:.2f} ± {std:.2f} ({median:.2f})"


def _silent(result: dict, method: str) -> str:
    """PES (dB) and % of silent estimates over the players silent in a segment."""
    silent = result.get("silent_sources") or {}
    if not silent.get("pairs"):
        return "n/a | n/a"
    stats = silent[method]
    return (f"{_cell(stats['pes'])}, n={silent['pairs']} | "
            f"{stats['inactive_percent']:.0f}%")


def _cost(result: dict) -> str:
    value = result.get("cpu_seconds_per_audio_second")
    return "n/a" if value is None else f"{value:.3f}"


def table(results: list[dict]) -> str:
    """Markdown: one line per row, then the baselines measured on the same segments."""
    head = ("| configuration | parameters | steps | mixtures/s | CPU s / s of audio | "
            + " | ".join(m.upper().replace("_", "-") for m in METRICS)
            + " | PES at silence | silent estimates |")
    lines = [head, "|" + "---|" * (7 + len(METRICS))]
    for r in results:
        model = r["scores"]["model"]
        lines.append(f"| {r['row']} | {r['parameters']:,} | {r['steps']} | "
                     f"{r['mixtures_per_s']:.1f} | {_cost(r)} | "
                     + " | ".join(_cell(model[m]) for m in METRICS)
                     + f" | {_silent(r, 'model')} |")
    if results:
        for method, label in (("mixture", "mixture (unprocessed)"),
                              ("ibm", "ideal binary mask"), ("irm", "ideal ratio mask")):
            base = results[0]["scores"][method]
            silent = _silent(results[0], method) if method == "mixture" else " | "
            lines.append(f"| {label} | | | | | " + " | ".join(_cell(base[m]) for m in METRICS)
                         + f" | {silent} |")
    return "\n".join(lines)


def headline(results: list[dict]) -> str:
    """Markdown: the configuration that separates the held-out pairs best (mean SDR), how far
    it is above the mixture and below the ideal ratio mask of the same segments, its paired
    difference to the demo row, the best row of each preset, and the claims' verdicts."""
    if not results:
        return "No row ran."

    def sdr(r: dict, method: str = "model") -> float:
        return r["scores"][method]["sdr"]["mean"]

    best = max(results, key=sdr)
    mixture, irm = sdr(results[0], "mixture"), sdr(results[0], "irm")
    lines = [(f"- Best: **{best['row']}** ({best['note']}), SDR {sdr(best):.2f} dB: "
              f"{sdr(best) - mixture:+.2f} dB over the mixture ({mixture:.2f}), "
              f"{irm - sdr(best):.2f} dB below the ideal ratio mask ({irm:.2f}).")]
    demo = next((r for r in results if r["row"] == "demo"), None)
    if demo is not None and best is not demo:
        mean, se, n = paired_difference(best, demo)
        lines.append(f"- {best['row']} - demo: {mean:+.2f} ± {se:.2f} dB SDR, paired over "
                     f"{n} pairs.")
    by_preset: dict[str, dict] = {}
    for r in results:
        if r["preset"] not in by_preset or sdr(r) > sdr(by_preset[r["preset"]]):
            by_preset[r["preset"]] = r
    lines.append("- Best of each preset: " + ", ".join(
        f"{preset}: {r['row']} {sdr(r):.2f}"
        for preset, r in sorted(by_preset.items(), key=lambda item: -sdr(item[1]))) + ".")
    counts = verdict_counts({r["row"]: r for r in results})
    lines.append("- Claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")
    return "\n".join(lines)


def legend(results: list[dict]) -> str:
    """Markdown: what each row is (its preset, overrides and note)."""
    return "\n".join(f"- **{r['row']}**: {r['note']} (`{r['preset']}`"
                     + "".join(f" `{o}`" for o in r["overrides"] if o not in DEMO_SCALE) + ")"
                     for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--rows", nargs="+", help="row names (default: all; see --list)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="training budget per row (wall minutes; evaluation adds ~1)")
    parser.add_argument("--root", default="work/ablation", help="runs and cached results")
    parser.add_argument("--standin", default="work/synthetic/bench",
                        help="bench stand-in folder (generated and prepared if missing)")
    parser.add_argument("--out", default=None,
                        help="also write the tables here (default: docs/ablation.md when every "
                             "row runs, nowhere for a subset)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    args = parser.parse_args()

    known = {row.name: row for row in ROWS}
    if args.list:
        for row in ROWS:
            print(f"{row.name:24s} {row.preset} {' '.join(row.overrides)}  {row.note}")
        return
    unknown = sorted(set(args.rows or ()) - set(known))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)} (known: {', '.join(known)})")
    rows = [known[name] for name in args.rows] if args.rows else list(ROWS)
    standin = ensure_standin(args.standin, "bench")
    rev = revision()
    results = [run_row(row, standin, Path(args.root), args.minutes, rev, args.device)
               for row in rows]
    command = "python benchmarks/ablation.py " + " ".join(sys.argv[1:])
    text = (f"Command: `{command.strip()}`  \nRevision: {rev}  \nMachine: {machine()}  \n"
            f"Held-out stand-in URMP duets, {results[0]['pairs'] if results else 0} "
            f"(segment, player) pairs; each cell: mean ± std (median), dB. Every row trained "
            f"for {args.minutes:g} wall minutes (its steps are in the table): the figures and "
            "verdicts speak for that budget, not for converged models.\n\n"
            "## Headline\n\n" + headline(results) + "\n\n## The rows\n\n"
            + table(results) + "\n\nCPU s / s of audio: `separate` on one duet mixture of "
            "the row's clip length with its trained checkpoint (eval mode, no gradients, "
            f"{torch.get_num_threads()} threads), median of 20 runs after 3 warm-ups (rows of the same network differ by "
            "up to 2x between runs on a shared machine: read the order of magnitude); "
            "`python benchmarks/models.py --model NAME --inference --device cuda` gives the GPU "
            "figure. The class-conditioned rows run at the demo's scale: "
            + " ".join(f"`{o}`" for o in DEMO_SCALE) + ".\n\n" + legend(results)
            + "\n\n## The seeds' claims\n\n"
            f"Paired per-pair SDR differences; held when the mean exceeds {Z:g} standard "
            "errors in the claimed direction.\n\n"
            + claims_table({r["row"]: r for r in results}) + "\n")
    print(text)
    out = args.out or (None if args.rows else "docs/ablation.md")
    if out:
        Path(out).write_text(text)


if __name__ == "__main__":
    main()
