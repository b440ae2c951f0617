"""The seed papers' claims, each judged from the rows of `benchmarks/ablation.py`.

A claim compares rows on the same held-out (segment, player) pairs: for "a beats b" the
per-pair SDR differences a - b give a paired mean and its standard error, and the claim
**held** when the mean is more than `Z` standard errors above zero, **not held** when it is
more than `Z` below (the opposite was measured) or within (no difference could be shown at
this budget). A claim whose rows are missing, or whose rows all stay at or below the
mixture (none has learned to separate at this budget), is **not measured**. Other claims judge
parameter counts or the predicted energy at silence (PES, lower is better).

Each result (a row's result.json) carries `pair_scores`: "key/player" -> {"sdr", "mixture_sdr"}
of every scored pair, and `parameters` / `audio_parameters`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Z = 2.0  # standard errors: about a 95% two-sided interval for the paired mean
# PES over fewer silent (segment, player) pairs than this says nothing about a model (the
# held-out stand-in duets have few silent stretches at 3 s windows).
MIN_SILENT_PAIRS = 5

Results = dict[str, dict]  # row name -> result.json content


@dataclass(frozen=True)
class Verdict:
    measured: str  # what avsep measured, in words and numbers
    verdict: str   # "held", "not held" or "not measured"
    why: str = ""


@dataclass(frozen=True)
class Claim:
    source: str
    statement: str
    rows: tuple[str, ...]
    judge: Callable[[Results], Verdict]


def paired_difference(a: dict, b: dict, subset: Callable[[dict, dict], bool] | None = None
                      ) -> tuple[float, float, int]:
    """Mean and standard error of SDR(a) - SDR(b) over the pairs both rows scored (and that
    `subset(pair_a, pair_b)` keeps). Returns (mean, standard error, count)."""
    shared = sorted(set(a["pair_scores"]) & set(b["pair_scores"]))
    diffs = [a["pair_scores"][k]["sdr"] - b["pair_scores"][k]["sdr"] for k in shared
             if subset is None or subset(a["pair_scores"][k], b["pair_scores"][k])]
    diffs = [d for d in diffs if math.isfinite(d)]
    n = len(diffs)
    if n < 2:
        return (diffs[0] if diffs else math.nan), math.inf, n
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return mean, math.sqrt(var / n), n


def separates(result: dict) -> bool:
    """The row's mean SDR is above the mixture's on the pairs it scored: it learned to
    separate at this budget."""
    pairs = [p for p in result["pair_scores"].values()
             if math.isfinite(p["sdr"]) and math.isfinite(p["mixture_sdr"])]
    return bool(pairs) and sum(p["sdr"] - p["mixture_sdr"] for p in pairs) > 0


def _unseparated(results: Results, rows: tuple[str, ...]) -> str:
    """Why a comparison of these rows is not measurable ('' when one of them separates): two
    configurations that both stay at or below the mixture have not learned the task, and
    their difference says nothing about the claim."""
    if any(separates(results[r]) for r in rows):
        return ""
    return "no row separates at this budget: SDR at or below the mixture's"


def _missing(results: Results, rows: tuple[str, ...]) -> Verdict | None:
    absent = [r for r in rows if r not in results]
    if absent:
        return Verdict("", "not measured", f"row(s) {', '.join(absent)} not in this run")
    return None


def beats(winner: str, loser: str, subset: Callable[[dict, dict], bool] | None = None,
          subset_name: str = "") -> Callable[[Results], Verdict]:
    """'winner separates better than loser' on paired SDR."""

    def judge(results: Results) -> Verdict:
        if (missing := _missing(results, (winner, loser))) is not None:
            return missing
        mean, se, n = paired_difference(results[winner], results[loser], subset)
        scope = f" on {subset_name}" if subset_name else ""
        text = f"{winner} - {loser}: {mean:+.2f} ± {se:.2f} dB SDR over {n} pairs{scope}"
        if n < 2:
            return Verdict(text, "not measured", "fewer than 2 shared pairs")
        if why := _unseparated(results, (winner, loser)):
            return Verdict(text, "not measured", why)
        if mean > Z * se:
            return Verdict(text, "held")
        if mean < -Z * se:
            return Verdict(text, "not held", "the opposite was measured")
        return Verdict(text, "not held", f"no difference beyond {Z:g} standard errors")

    return judge


def all_of(*judges: Callable[[Results], Verdict]) -> Callable[[Results], Verdict]:
    """Held when every part held; not measured when any part was not measured."""

    def judge(results: Results) -> Verdict:
        parts = [j(results) for j in judges]
        measured = "; ".join(p.measured for p in parts if p.measured)
        for wanted in ("not measured", "not held"):
            failing = [p.why for p in parts if p.verdict == wanted and p.why]
            if any(p.verdict == wanted for p in parts):
                return Verdict(measured, wanted, "; ".join(dict.fromkeys(failing)))
        return Verdict(measured, "held")

    return judge


def no_better(row: str, than: str) -> Callable[[Results], Verdict]:
    """'row does not separate better than `than`' (held unless row is measurably better)."""
    inner = beats(row, than)

    def judge(results: Results) -> Verdict:
        verdict = inner(results)
        if verdict.verdict == "not measured":
            return verdict
        if verdict.verdict == "held":
            return Verdict(verdict.measured, "not held", f"{row} is better")
        return Verdict(verdict.measured, "held")

    return judge


def quieter_player(a: dict, b: dict) -> bool:
    """The pair's source is the quieter one of its segment (its mixture SDR is below 0 dB:
    the other player carries more energy)."""
    return a["mixture_sdr"] < 0


def fewer_parameters(small: str, large: str, low: float, high: float
                     ) -> Callable[[Results], Verdict]:
    """'small has low..high (fractions) fewer audio-network parameters than large'."""

    def judge(results: Results) -> Verdict:
        if (missing := _missing(results, (small, large))) is not None:
            return missing
        count = "audio_parameters"
        saved = 1 - results[small][count] / results[large][count]
        text = (f"audio network {results[large][count]:,} -> {results[small][count]:,} "
                f"parameters ({100 * saved:.0f}% fewer)")
        if low <= saved <= high:
            return Verdict(text, "held")
        return Verdict(text, "not held", f"outside {100 * low:.0f}-{100 * high:.0f}%")

    return judge


def lower_pes(row: str, than: str) -> Callable[[Results], Verdict]:
    """'row predicts less energy where a source is silent (mean PES) than `than`'."""

    def judge(results: Results) -> Verdict:
        if (missing := _missing(results, (row, than))) is not None:
            return missing
        pes, counts = {}, []
        for name in (row, than):
            stats = ((results[name].get("silent_sources") or {}).get("model") or {}).get("pes")
            if not stats or stats.get("mean") is None:
                return Verdict("", "not measured", f"{name} met no silent source")
            pes[name] = stats["mean"]
            counts.append(stats.get("count", 0))
        count = min(counts)
        text = (f"PES {row} {pes[row]:.1f} dB, {than} {pes[than]:.1f} dB over {count} silent "
                "pair(s)")
        if count < MIN_SILENT_PAIRS:
            return Verdict(text, "not measured",
                           f"fewer than {MIN_SILENT_PAIRS} silent pairs in the held-out pieces")
        if why := _unseparated(results, (row, than)):
            return Verdict(text, "not measured", why)
        return Verdict(text, "held" if pes[row] < pes[than] else "not held")

    return judge


# The Sound of Pixels that the seeds' claims are tested on: the demo with the original max
# pooling and no class loss (why: benchmarks/ablation.py, ORIGINAL_POOLING).
SOP = "demo_max_pooling"

CLAIMS: tuple[Claim, ...] = (
    Claim("Solos paper", "MHU-Net separates URMP real mixtures better than Sound of Pixels",
          ("mhunet", SOP), beats("mhunet", SOP)),
    Claim("Solos paper", "complementary ratio masks beat complementary binary masks (SoP)",
          (SOP, "demo_binary"), beats(SOP, "demo_binary")),
    Claim("Spectrogram-Channels U-Net", "balanced source weights (M6) beat equal weights "
          "(M5) for quiet sources", ("spectrogram_channels", "spectrogram_channels_m5"),
          beats("spectrogram_channels", "spectrogram_channels_m5", quieter_player,
                "the quieter player of each segment")),
    Claim("U-Nets with intermediate blocks", "TFC-TDF beats TFC, TDF and TDC blocks",
          ("tfc_tdf", "tfc", "tdf", "tdc"),
          all_of(beats("tfc_tdf", "tfc"), beats("tfc_tdf", "tdf"), beats("tfc_tdf", "tdc"))),
    Claim("U-Nets with intermediate blocks", "complex-as-channels beats magnitude input",
          ("tfc_tdf", "tfc_tdf_magnitude"), beats("tfc_tdf", "tfc_tdf_magnitude")),
    Claim("U-Net thesis", "Adam and RMSprop beat SGD, Adagrad and Adadelta",
          (SOP, "demo_rmsprop", "demo_sgd", "demo_adagrad", "demo_adadelta"),
          all_of(*(beats(good, bad) for good in (SOP, "demo_rmsprop")
                   for bad in ("demo_sgd", "demo_adagrad", "demo_adadelta")))),
    Claim("U-Net thesis", "U-Nets improve with depth (6 levels over 4)",
          (SOP, "demo_depth4"), beats(SOP, "demo_depth4")),
    Claim("U-Net thesis", "plain auto-encoders (no skips) do not improve with depth",
          ("demo_noskip", "demo_noskip_depth4"), no_better("demo_noskip", "demo_noskip_depth4")),
    Claim("U-Net thesis", "skip connections help (U-Net over the auto-encoder)",
          (SOP, "demo_noskip"), beats(SOP, "demo_noskip")),
    Claim("U-Net thesis", "masks beat direct synthesis",
          ("tfc_tdf_mask", "tfc_tdf", "spectrogram_channels_mask", "spectrogram_channels"),
          all_of(beats("tfc_tdf_mask", "tfc_tdf"),
                 beats("spectrogram_channels_mask", "spectrogram_channels"))),
    Claim("U-Net thesis", "depthwise-separable convolutions cut ~65% of the parameters",
          ("demo_separable", SOP), fewer_parameters("demo_separable", SOP, 0.55, 0.75)),
    Claim("U-Net thesis", "... for a small loss of quality (3-11% worse loss): the separable "
          "U-Net is not better", ("demo_separable", SOP), no_better("demo_separable", SOP)),
    Claim("U-Net thesis", "dynamic mixing (fresh mixtures each step) beats a fixed set",
          (SOP, "demo_fixed"), beats(SOP, "demo_fixed")),
    Claim("HTMD-Net", "deep supervision beats none (the denoiser's loss alone)",
          ("htmd_net", "htmd_net_no_ds"), beats("htmd_net", "htmd_net_no_ds")),
    Claim("HTMD-Net", "HTMD-Net beats Wave-U-Net and is not worse than Conv-TasNet",
          ("htmd_net", "wave_unet", "conv_tasnet"),
          all_of(beats("htmd_net", "wave_unet"), no_better("conv_tasnet", "htmd_net"))),
    Claim("HTMD-Net", "MAE training predicts less energy where a source is silent than MSE",
          ("htmd_net_mae", "htmd_net"), lower_pes("htmd_net_mae", "htmd_net")),
    Claim("avsep", "a linear visual vector beats the original sigmoid (training from scratch)",
          (SOP, "demo_sigmoid_visual"), beats(SOP, "demo_sigmoid_visual")),
    Claim("avsep", "a BatchNorm of the visual vectors beats none",
          (SOP, "demo_no_visual_norm"), beats(SOP, "demo_no_visual_norm")),
    Claim("avsep", "mean pooling with the instrument class loss separates no worse than the "
          "original max over locations (why `demo` uses them; they localize better, "
          "docs/localization.md)",
          ("demo", "demo_max_pooling"), no_better("demo_max_pooling", "demo")),
    Claim("avsep", "with mean pooling, the instrument class loss improves separation",
          ("demo", "demo_mean_pooling"), beats("demo", "demo_mean_pooling")),
    Claim("avsep", "in the same time, a vision net of half the width separates no worse than "
          "the original ResNet-18 (why `demo` uses it: more steps per minute)",
          ("demo", "demo_full_vision"), no_better("demo_full_vision", "demo")),
)


def verdict_counts(results: Results) -> dict[str, int]:
    """How many claims were held, not held and not measured."""
    counts = {"held": 0, "not held": 0, "not measured": 0}
    for claim in CLAIMS:
        counts[claim.judge(results).verdict] += 1
    return counts


def claims_table(results: Results) -> str:
    """Markdown: one line per claim with what was measured and the verdict."""
    lines = ["| source | claim | measured | verdict |", "|---|---|---|---|"]
    for claim in CLAIMS:
        v = claim.judge(results)
        verdict = f"**{v.verdict}**" + (f" ({v.why})" if v.why else "")
        lines.append(f"| {claim.source} | {claim.statement} | {v.measured or '—'} | {verdict} |")
    return "\n".join(lines)
