"""Tests for `avsep evaluate` on URMP-format shards (avsep.evaluation, avsep.commands.evaluate).

The shards here are written by a small writer in this module (webdataset.TarWriter with the
members of docs/contracts.md): harmonic stems whose notes alternate between players, and
solid-colour frames whose colour encodes (player, frame index), so tests can check which
frames the model was given.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

import avsep.evaluation
from avsep import create_model, distributed
from avsep.checkpoint import save_checkpoint
from avsep.classes import SOLOS_CLASSES, URMP_CODE_TO_CLASS, class_index
from avsep.cli import main
from avsep.evaluation import (
    IdealMaskSeparator,
    NoUrmpShardsError,
    evaluate_urmp,
    index_urmp_shards,
    write_results,
)
from avsep.evaluation.report import csv_columns
from avsep.evaluation.request import EvaluationRequest, check_request, evaluate_checkpoint
from avsep.faults import InputError
from avsep.geometry import ClipSpec, clip_frame_indices
from avsep.shard_format import ShardFormatError

SAMPLE_RATE = 11025
SEGMENT = 65535
FPS = 8
FRAME_SHAPE = (40, 24)  # (H, W): short side 24 as in `short_side` of real shards, but small
SMALL_FRAMES = ClipSpec(image_size=16)


# ------------------------------------------------------------------- stand-in shard writer
@dataclass
class Piece:
    """A stand-in URMP piece.

    Attributes:
        name: folder name, NN_Title_codes.
        codes: instrument codes in player order.
        segments: number of segments; the last is `tail_samples` long (zero-padded) if set.
        silent: (segment, player) pairs whose stem is all zeros.
    """

    name: str
    codes: list[str]
    segments: int = 2
    tail_samples: int | None = None
    silent: set[tuple[int, int]] = field(default_factory=set)


def player_colour(player: int, frame: int) -> tuple[int, int, int]:
    """RGB of player `player`'s frame `frame`: red codes the player, green the frame."""
    return (40 + 50 * player, 4 * frame, 200)


def stem_audio(player: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """A harmonic tone per player (distinct pitches) whose notes sound in alternate quarter-
    second slots, so that players overlap only partly in time and frequency."""
    t = np.arange(length) / SAMPLE_RATE
    f0 = 196.0 * 2 ** (player * 7 / 12)
    tone = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3))
    slot = (t / 0.25).astype(int)
    gate = ((slot + player) % 2 == 0) | (slot % 5 == 0)
    return (0.2 * tone * gate).astype(np.float32)


def write_urmp_shards(out: Path, pieces: list[Piece], seed: int = 0) -> Path:
    """Write `pieces` as URMP shards (one tar per piece, as `avsep prepare urmp` does)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for number, piece in enumerate(pieces):
        with wds.TarWriter(str(out / f"urmp-{number:03d}-000.tar")) as sink:
            for segment in range(piece.segments):
                last = segment == piece.segments - 1
                valid = piece.tail_samples if last and piece.tail_samples else SEGMENT
                stems = np.zeros((len(piece.codes), SEGMENT), np.float32)
                for player in range(len(piece.codes)):
                    if (segment, player) not in piece.silent:
                        stems[player, :valid] = stem_audio(player, valid, rng)
                num_frames = math.ceil(valid * FPS / SAMPLE_RATE)
                sample = {
                    "__key__": f"{piece.name}__seg{segment:04d}",
                    "mix.npy": stems.sum(0),
                    "stems.npy": stems,
                    "json": {
                        "piece": piece.name, "segment": segment, "instruments": piece.codes,
                        "players": len(piece.codes), "valid_samples": valid,
                        "num_samples": SEGMENT, "start_s": segment * SEGMENT / SAMPLE_RATE,
                        "sample_rate": SAMPLE_RATE, "fps": FPS, "num_frames": num_frames,
                    },
                }
                for player in range(len(piece.codes)):
                    for i in range(num_frames):
                        image = np.empty((*FRAME_SHAPE, 3), np.uint8)
                        image[:] = player_colour(player, i)
                        sample[f"p{player}.{i:03d}.jpg"] = image
                sink.write(sample)
    return out


def small_sop(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("avsep_unittest")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Three pieces: a duet, a vn_vn duet with a short last segment and a trio with a silent
    player in its second segment."""
    return write_urmp_shards(tmp_path_factory.mktemp("urmp"), [
        Piece("01_Alpha_fl_vc", ["fl", "vc"], segments=2),
        Piece("02_Sonata_vn_vn", ["vn", "vn"], segments=2, tail_samples=20000),
        Piece("03_Gamma_tpt_va_db", ["tpt", "va", "db"], segments=2, silent={(1, 2)}),
    ])


@pytest.fixture(scope="module")
def result(shards):
    return evaluate_urmp(small_sop(), shards, batch_size=2, clip_spec=SMALL_FRAMES,
                         progress=False)


# ------------------------------------------------------------------------------- oracles
def test_ideal_ratio_mask_estimates_sum_to_the_mixture():
    """IRM masks sum to one over players, so the estimates add up to the mixture (ISTFT is
    linear); the IBM picks one player per bin, so its estimates add up to it too."""
    rng = np.random.default_rng(1)
    stems = torch.from_numpy(np.stack([stem_audio(p, 8192, rng) for p in range(3)]))[None]
    mix = stems.sum(1)
    out = IdealMaskSeparator()(mix, stems)
    for name in ("ibm", "irm"):
        assert out[name].shape == (1, 3, 8192)
        torch.testing.assert_close(out[name].sum(1), mix, atol=1e-4, rtol=0)


def test_ideal_binary_mask_separates_disjoint_sources_exactly():
    """Two sources in disjoint frequency bands: the loudest-wins mask recovers each one."""
    t = torch.arange(16384) / SAMPLE_RATE
    stems = torch.stack([torch.sin(2 * torch.pi * 220 * t), torch.sin(2 * torch.pi * 3000 * t)])
    out = IdealMaskSeparator()(stems.sum(0, keepdim=True), stems[None])
    error = (out["ibm"][0] - stems)[:, 2048:-2048].abs().max()
    assert error < 1e-2


def test_oracles_score_above_the_mixture(result):
    overall = result.summary()["overall"]["scores"]
    mixture = overall["mixture"]["sdr"]["mean"]
    assert overall["irm"]["sdr"]["mean"] > mixture + 5
    assert overall["ibm"]["sdr"]["mean"] > mixture + 5
    assert overall["irm"]["si_sdr"]["mean"] > overall["mixture"]["si_sdr"]["mean"] + 5


# ------------------------------------------------------------------------------ protocol
def test_every_player_of_every_segment_has_a_row(result):
    keys = [(p.piece, p.segment, p.player, p.instrument) for p in result.pairs]
    assert keys == [
        ("01_Alpha_fl_vc", 0, 0, "fl"), ("01_Alpha_fl_vc", 0, 1, "vc"),
        ("01_Alpha_fl_vc", 1, 0, "fl"), ("01_Alpha_fl_vc", 1, 1, "vc"),
        ("02_Sonata_vn_vn", 0, 0, "vn"), ("02_Sonata_vn_vn", 0, 1, "vn"),
        ("02_Sonata_vn_vn", 1, 0, "vn"), ("02_Sonata_vn_vn", 1, 1, "vn"),
        ("03_Gamma_tpt_va_db", 0, 0, "tpt"), ("03_Gamma_tpt_va_db", 0, 1, "va"),
        ("03_Gamma_tpt_va_db", 0, 2, "db"), ("03_Gamma_tpt_va_db", 1, 0, "tpt"),
        ("03_Gamma_tpt_va_db", 1, 1, "va"), ("03_Gamma_tpt_va_db", 1, 2, "db"),
    ]


def test_repeated_instrument_is_two_players(result):
    """vn_vn: both violins are scored, keyed by player index, with different scores."""
    violins = [p for p in result.scored_pairs if p.piece == "02_Sonata_vn_vn"]
    assert sorted((p.segment, p.player) for p in violins) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    first = {p.player: p.scores["irm"]["sdr"] for p in violins if p.segment == 0}
    assert first[0] != first[1]
    assert result.summary()["per_instrument"]["vn"]["pairs"] == 4


def test_silent_player_skips_its_segment_and_is_counted(result):
    assert result.skipped == {"silent_reference": 1, "silent_estimate": 0,
                              "silent_baseline_estimate": 0}
    assert result.segments == 6 and result.scored_segments == 5
    skipped = [p for p in result.pairs if p.status != "ok"]
    assert [(p.piece, p.segment, p.player) for p in skipped] == [
        ("03_Gamma_tpt_va_db", 1, 0), ("03_Gamma_tpt_va_db", 1, 1),
        ("03_Gamma_tpt_va_db", 1, 2),
    ]
    assert all(p.status == "silent_reference" for p in skipped)
    assert result.summary()["per_piece"]["03_Gamma_tpt_va_db"]["pairs"] == 3


def test_silent_players_get_the_predicted_energy_at_silence(result, shards):
    # By hand from the shard: PES = 10 log10(sum e^2 + 1e-12) over the real samples; the
    # mixture is never 30 dB below itself, so it is never counted as a silent estimate.
    sample = next(s for tar in sorted(shards.glob("*.tar"))
                  for s in wds.WebDataset(str(tar), shardshuffle=False).decode()
                  if s["__key__"] == "03_Gamma_tpt_va_db__seg0001")
    valid = sample["json"]["valid_samples"]
    stems = sample["stems.npy"][:, :valid].astype(np.float64)
    mix = sample["mix.npy"][:valid].astype(np.float64)
    silent = [k for k in range(len(stems)) if np.abs(stems[k]).sum() == 0]
    assert silent
    pairs = {p.player: p for p in result.pairs if p.key == sample["__key__"]}
    for player, pair in pairs.items():
        if player not in silent:
            assert not pair.scores
            continue
        mixture = pair.scores["mixture"]
        assert mixture["pes"] == pytest.approx(10 * np.log10(np.sum(mix**2) + 1e-12), abs=1e-3)
        assert mixture["inactive"] == 0.0
        assert pair.scores["model"]["inactive"] in (0.0, 1.0)
    summary = result.summary()["silent_sources"]
    assert summary["pairs"] == len(silent)
    assert summary["mixture"]["inactive_percent"] == 0.0
    model_pes = [pairs[k].scores["model"]["pes"] for k in silent]
    assert summary["model"]["pes"]["mean"] == pytest.approx(np.mean(model_pes))


def test_silent_source_metrics_by_hand():
    from avsep.metrics import silent_source_metrics

    estimates = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.001, 0.0, 0.0, 0.0], [0.5, 0.5, 0, 0]])
    mixtures = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 3)
    pes, inactive = silent_source_metrics(estimates, mixtures)
    assert pes.tolist() == pytest.approx([-120.0, 10 * np.log10(1e-6 + 1e-12),
                                          10 * np.log10(0.5 + 1e-12)])
    assert inactive.tolist() == [True, True, False]  # 1e-6 is 60 dB below; 0.5 is 3 dB below


def test_statistics_are_over_scored_pairs(result):
    scored = result.scored_pairs
    sdr = np.array([p.scores["model"]["sdr"] for p in scored])
    stats = result.summary()["overall"]["scores"]["model"]["sdr"]
    assert stats["count"] == len(scored) == 11
    assert stats["mean"] == pytest.approx(sdr.mean())
    assert stats["std"] == pytest.approx(sdr.std())
    assert stats["median"] == pytest.approx(np.median(sdr))
    db = result.summary()["per_instrument"]["db"]["scores"]["model"]["sdr"]
    assert db["count"] == 1
    assert db["mean"] == pytest.approx(next(p.scores["model"]["sdr"] for p in scored
                                            if p.instrument == "db"))


def test_scores_match_mir_eval_on_the_real_samples(result, shards):
    """Mixture-baseline scores of the short last vn_vn segment against mir_eval on its 20000
    real samples (computed here from the shard's own stems)."""
    mir_eval_separation = pytest.importorskip("mir_eval.separation")
    samples = list(wds.WebDataset(str(shards / "urmp-001-000.tar"), shardshuffle=False)
                   .decode())
    sample = samples[1]
    assert sample["__key__"] == "02_Sonata_vn_vn__seg0001"
    valid = sample["json"]["valid_samples"]
    stems = sample["stems.npy"][:, :valid].astype(np.float64)
    mix = sample["mix.npy"][:valid].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, sir, sar, _ = mir_eval_separation.bss_eval_sources(
            stems, np.stack([mix, mix]), compute_permutation=False)
    pairs = [p for p in result.pairs if p.piece == "02_Sonata_vn_vn" and p.segment == 1]
    assert [p.valid_samples for p in pairs] == [valid, valid]
    for player, pair in enumerate(pairs):
        assert pair.scores["mixture"]["sdr"] == pytest.approx(sdr[player], abs=0.01)
        assert pair.scores["mixture"]["sir"] == pytest.approx(sir[player], abs=0.01)
        # The mixture lies in the span of the references: no artifacts, SAR saturates.
        assert pair.scores["mixture"]["sar"] > 100 and sar[player] > 100
        # SI-SDR of the mixture against stem p, by hand.
        alpha = mix @ stems[player] / (stems[player] @ stems[player])
        target = alpha * stems[player]
        expected = 10 * np.log10(target @ target / ((mix - target) @ (mix - target)))
        assert pair.scores["mixture"]["si_sdr"] == pytest.approx(expected, abs=1e-3)


class RecordingSeparator(torch.nn.Module):
    """Wraps a separator and records the conditions it is given."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner
        self.condition_kind = inner.condition_kind
        self.sample_rate = inner.sample_rate
        self.stft = inner.stft
        self.conditions: list[torch.Tensor] = []
        self.lengths: list[int] = []

    def separate(self, mix, condition):
        self.conditions.append(condition.cpu())
        self.lengths.append(mix.shape[1])
        return self.inner.separate(mix, condition)


def test_frames_are_each_players_crop_around_the_segment_centre(shards):
    model = RecordingSeparator(small_sop())
    evaluate_urmp(model, shards, batch_size=1, clip_spec=SMALL_FRAMES, limit_pieces=2,
                  pieces=["02_Sonata_vn_vn", "03_Gamma_tpt_va_db"], progress=False, workers=0)
    assert [c.shape for c in model.conditions] == [(1, 2, 3, 3, 16, 16)] * 2 + [
        (1, 3, 3, 3, 16, 16)] * 2
    for segment, condition in enumerate(model.conditions[:2]):
        assert condition.dtype == torch.uint8  # the model normalises frames itself
        valid = 20000 if segment == 1 else SEGMENT
        num_frames = math.ceil(valid * FPS / SAMPLE_RATE)
        indices = clip_frame_indices(valid // 2, num_frames, ClipSpec())
        rgb = condition[0].float()  # (P, 3, T, S, S)
        for player in range(2):
            for t, index in enumerate(indices):
                colour = rgb[player, :, t].mean(dim=(1, 2))
                expected = torch.tensor(player_colour(player, index), dtype=torch.float32)
                assert (colour - expected).abs().max() < 4, (segment, player, t)
    assert set(model.lengths) == {SEGMENT}


def test_class_conditioned_model_gets_the_players_classes(shards):
    torch.manual_seed(0)
    model = RecordingSeparator(create_model("mhunet_unittest"))
    result = evaluate_urmp(model, shards, batch_size=4, pieces=["02_Sonata_vn_vn",
                                                                "03_Gamma_tpt_va_db"],
                           progress=False)
    conditions = sorted((c.tolist() for c in model.conditions), key=len)
    vn, tpt, va, db = (class_index(c) for c in ("vn", "tpt", "va", "db"))
    assert conditions == [[[vn, vn], [vn, vn]], [[tpt, va, db], [tpt, va, db]]]
    assert len(result.scored_pairs) == 7
    assert result.info["frames"] is None


class NanSeparator(RecordingSeparator):
    def separate(self, mix, condition):
        out = self.inner.separate(mix, condition)
        out[-1, 0, 100] = float("nan")
        return out


def test_non_finite_estimates_are_an_error_naming_the_segment(shards):
    with pytest.raises(FloatingPointError, match="not finite.*01_Alpha_fl_vc__seg0001"):
        evaluate_urmp(NanSeparator(small_sop()), shards, batch_size=2, limit_pieces=1,
                      clip_spec=SMALL_FRAMES, progress=False)


class NoisyPaddingSeparator(RecordingSeparator):
    """Adds loud noise to the estimates wherever the mixture is zero padding."""

    def separate(self, mix, condition):
        out = self.inner.separate(mix, condition)
        padding = (mix.abs().flip(-1).cumsum(-1).flip(-1) == 0)[:, None]
        return out + padding * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))


def test_scores_ignore_the_zero_padding_of_the_last_segment(shards, result):
    noisy = evaluate_urmp(NoisyPaddingSeparator(small_sop()), shards, batch_size=2,
                          pieces=["02_Sonata_vn_vn"], clip_spec=SMALL_FRAMES, progress=False)
    reference = [p for p in result.pairs if p.piece == "02_Sonata_vn_vn"]
    assert [p.valid_samples for p in noisy.pairs] == [SEGMENT, SEGMENT, 20000, 20000]
    for ours, theirs in zip(noisy.pairs, reference):
        for metric in ("sdr", "sir", "sar", "si_sdr"):
            assert ours.scores["model"][metric] == pytest.approx(
                theirs.scores["model"][metric], abs=1e-3)


def test_limit_and_unknown_pieces(shards):
    result = evaluate_urmp(small_sop(), shards, limit_pieces=1, clip_spec=SMALL_FRAMES,
                           progress=False)
    assert {p.piece for p in result.pairs} == {"01_Alpha_fl_vc"}
    assert result.segments == 2
    with pytest.raises(ValueError, match="unknown piece.*99_Nope.*01_Alpha_fl_vc"):
        evaluate_urmp(small_sop(), shards, pieces=["99_Nope"], progress=False)


def test_segments_are_ordered_by_piece_whatever_the_shard_names(tmp_path):
    write_urmp_shards(tmp_path, [Piece("02_Beta_vn_va", ["vn", "va"], segments=1),
                                 Piece("01_Alpha_fl_vc", ["fl", "vc"], segments=2)])
    keys = [entry.key for entry in index_urmp_shards(tmp_path)]
    assert keys == ["01_Alpha_fl_vc__seg0000", "01_Alpha_fl_vc__seg0001",
                    "02_Beta_vn_va__seg0000"]
    (tmp_path / "urmp-002-000.tar").write_bytes((tmp_path / "urmp-000-000.tar").read_bytes())
    with pytest.raises(ShardFormatError, match="02_Beta_vn_va__seg0000' appears twice"):
        index_urmp_shards(tmp_path)


def test_ranks_split_segments_and_merge_to_the_single_process_result(shards, result,
                                                                     monkeypatch):
    """Two ranks (simulated): each scores every other segment; the merge on rank 0 equals
    the one-process evaluation."""
    local: dict[int, tuple] = {}
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    for rank in (1, 0):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)

        def gather(obj, rank=rank):
            local[rank] = obj
            return [local[r] for r in sorted(local)] if rank == 0 else [obj]

        monkeypatch.setattr(distributed, "gather_objects", gather)
        merged = evaluate_urmp(small_sop(), shards, batch_size=2, clip_spec=SMALL_FRAMES,
                               progress=False)
    assert {(p.piece, p.segment) for p in local[1][0]} == {
        ("01_Alpha_fl_vc", 1), ("02_Sonata_vn_vn", 1), ("03_Gamma_tpt_va_db", 1)}
    assert [(p.key, p.player, p.status) for p in merged.pairs] == [
        (p.key, p.player, p.status) for p in result.pairs]
    for ours, reference in zip(merged.scored_pairs, result.scored_pairs):
        for method, values in reference.scores.items():
            for metric, value in values.items():
                if metric == "sar" and value > 100:
                    # An estimate inside the references' span (the mixture, or a random
                    # model whose masks pass the mixture through) has an SAR of float64
                    # round-off (~130-156 dB) that depends on how segments are batched.
                    assert ours.scores[method][metric] > 100
                    continue
                assert ours.scores[method][metric] == pytest.approx(value, abs=1e-6)
    assert merged.skipped == result.skipped
    assert merged.info["world_size"] == 2


def test_prepared_stand_in_shards(prepared_tiny):
    """The real pipeline's URMP shards (`avsep synth urmp` + `avsep prepare urmp`, through
    the shared `prepared_tiny` fixture): every player is scored and the ideal ratio mask
    beats the unprocessed mixture."""
    shard_dir = prepared_tiny["urmp"]
    result = evaluate_urmp(small_sop(), shard_dir, batch_size=2, clip_spec=SMALL_FRAMES,
                           limit_pieces=2, progress=False)
    players = {}
    for sample in wds.WebDataset(sorted(str(p) for p in Path(shard_dir).glob("*.tar")),
                                 shardshuffle=False).decode():
        players[sample["__key__"]] = sample["json"]["instruments"]
    for key in {p.key for p in result.pairs}:
        assert [p.instrument for p in result.pairs if p.key == key] == players[key]
    scores = result.summary()["overall"]["scores"]
    assert result.scored_pairs
    assert scores["irm"]["sdr"]["mean"] > scores["mixture"]["sdr"]["mean"]


# ------------------------------------------------------------------------------- reports
def test_result_files_parse_and_list_every_instrument(result, tmp_path):
    paths = write_results(result, tmp_path / "out")
    data = json.loads(paths["results.json"].read_text(),
                      parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert data["counts"]["segments"] == 6
    assert data["counts"]["skipped_segments"]["silent_reference"] == 1
    assert data["counts"]["scored_pairs"] == 11
    assert set(data["per_instrument"]) == {"fl", "vc", "vn", "tpt", "va", "db"}
    assert data["overall"]["scores"]["irm"]["sdr"]["mean"] == pytest.approx(
        result.summary()["overall"]["scores"]["irm"]["sdr"]["mean"])

    with open(paths["segments.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == csv_columns()
    assert len(rows) == 14
    assert [r["status"] for r in rows].count("silent_reference") == 3
    scored = [r for r in rows if r["status"] == "ok"]
    assert float(scored[0]["model_sdr"]) == pytest.approx(result.scored_pairs[0]
                                                          .scores["model"]["sdr"], abs=1e-3)
    assert all(r["model_sdr"] == "" for r in rows if r["status"] != "ok")

    markdown = paths["results.md"].read_text()
    for code in ("fl", "vc", "vn", "tpt", "va", "db"):
        assert f"| {URMP_CODE_TO_CLASS[code]} ({code}) |" in markdown
    for piece in ("01_Alpha_fl_vc", "02_Sonata_vn_vn", "03_Gamma_tpt_va_db"):
        assert f"| {piece} |" in markdown
    absent = set(SOLOS_CLASSES) - {URMP_CODE_TO_CLASS[c] for c in ("fl", "vc", "vn", "tpt",
                                                                    "va", "db")}
    assert not any(f"| {name} (" in markdown for name in absent)


# ----------------------------------------------------------------------------------- CLI
def test_cli_runs_end_to_end_with_a_checkpoint(shards, tmp_path, capsys):
    checkpoint = save_checkpoint(
        tmp_path / "model.pt", small_sop(), step=7,
        config={"data": {"image_size": 16, "num_frames": 3, "frame_stride": 24}},
    )
    out = tmp_path / "results"
    code = main(["evaluate", "--dataset", "urmp", "--data", str(shards), "--checkpoint",
                 str(checkpoint), "--out", str(out), "--batch-size", "3", "--device", "cpu",
                 "--limit-pieces", "2", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "ideal ratio mask" in printed and "mixture" in printed
    data = json.loads((out / "results.json").read_text())
    assert data["info"]["frames"] == {"image_size": 16, "num_frames": 3, "frame_stride": 24}
    assert data["info"]["checkpoint"] == str(checkpoint) and data["info"]["step"] == 7
    assert data["info"]["model"]["name"] == "avsep_unittest"
    assert data["counts"]["scored_pairs"] == 8
    assert (out / "segments.csv").is_file() and (out / "results.md").is_file()


def test_cli_missing_checkpoint_is_a_clear_error(shards, tmp_path, capsys):
    code = main(["evaluate", "--data", str(shards), "--checkpoint", str(tmp_path / "no.pt"),
                 "--out", str(tmp_path / "r")])
    assert code == 2
    assert f"{tmp_path / 'no.pt'}: checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_folder_without_urmp_shards_is_a_clear_error(tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "model.pt", small_sop())
    (tmp_path / "empty").mkdir()
    code = main(["evaluate", "--data", str(tmp_path / "empty"), "--checkpoint",
                 str(checkpoint), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no URMP shards (*.tar)" in capsys.readouterr().err
    code = main(["evaluate", "--data", str(tmp_path / "missing"), "--checkpoint",
                 str(checkpoint), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no such shard folder" in capsys.readouterr().err


def test_solos_shards_are_refused_by_name(tmp_path):
    with wds.TarWriter(str(tmp_path / "solos-train-000000.tar")) as sink:
        sink.write({"__key__": "Violin__abc__000_000", "audio.npy": np.zeros(10, np.float32),
                    "json": {"class": "Violin"}})
    with pytest.raises(ShardFormatError, match="Violin__abc__000_000.*Solos.*not a URMP"):
        evaluate_urmp(small_sop(), tmp_path, progress=False)
    with pytest.raises(NoUrmpShardsError, match="nothing: no such shard folder"):
        evaluate_urmp(small_sop(), tmp_path / "nothing", progress=False)


def test_missing_frame_names_the_shard_and_sample(tmp_path):
    write_urmp_shards(tmp_path, [Piece("01_Alpha_fl_vc", ["fl", "vc"], segments=1)])
    shard = tmp_path / "urmp-000-000.tar"
    samples = list(wds.WebDataset(str(shard), shardshuffle=False))
    with wds.TarWriter(str(shard)) as sink:
        for sample in samples:
            del sample["p1.024.jpg"]
            sink.write({k: v for k, v in sample.items() if not k.startswith("__")
                        or k == "__key__"})
    with pytest.raises(ShardFormatError, match=r"urmp-000-000.tar.*01_Alpha_fl_vc__seg0000.*"
                                               r"player 1"):
        evaluate_urmp(small_sop(), tmp_path, clip_spec=SMALL_FRAMES, progress=False)


# ------------------------------------------------------ the library does what the CLI does
def test_the_library_request_does_what_the_cli_does(shards, tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "model.pt", small_sop(), step=3,
                                 config={"data": {"image_size": 16}})
    request = EvaluationRequest(checkpoint, str(shards), tmp_path / "library", batch_size=2,
                                limit_pieces=1, progress=False)
    done = evaluate_checkpoint(request, "cpu")
    assert (done.protocol, list(done.results), done.comparison) == ("urmp", ["urmp"], None)
    code = main(["evaluate", "--data", str(shards), "--checkpoint", str(checkpoint), "--out",
                 str(tmp_path / "cli"), "--batch-size", "2", "--limit-pieces", "1",
                 "--device", "cpu", "--no-progress"])
    assert code == 0 and f"results: {tmp_path / 'cli' / 'results.md'}" in capsys.readouterr().out
    library, cli = (json.loads((tmp_path / name / "results.json").read_text())
                    for name in ("library", "cli"))
    library.pop("timing"), cli.pop("timing")
    assert library == cli and library["info"]["step"] == 3
    assert (tmp_path / "library" / "segments.csv").read_text() == \
        (tmp_path / "cli" / "segments.csv").read_text()


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "--batch-size must be at least 1, got 0"),
    ({"dataset": "music", "limit_pieces": 1}, "--limit-pieces and --pieces are for urmp"),
    ({"pairs_csv": "x.csv"}, "--pairs-csv and --protocol are for --dataset music"),
    ({"dataset": "music", "protocol": "both"}, "--protocol both scores a published list"),
    ({"dataset": "music", "pairs": "nope.json"}, "nope.json: pair list not found"),
    ({}, "empty: no URMP shards"),
    ({"dataset": "music"}, r"\(the output of `avsep prepare music`\)"),
])
def test_a_request_is_checked_before_a_model_is_loaded(tmp_path, changes, message):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"never loaded")
    (tmp_path / "empty").mkdir()
    request = EvaluationRequest(checkpoint, str(tmp_path / "empty"), tmp_path / "out",
                                **changes)
    with pytest.raises(InputError, match=message):
        check_request(request)
    with pytest.raises(InputError, match="checkpoint not found"):
        check_request(EvaluationRequest(tmp_path / "no.pt", str(tmp_path), tmp_path / "out"))


def test_evaluation_modules_use_no_private_name_of_another_module():
    """Protocols share the runner's and the scorer's public names, not each other's."""
    borrowed = []
    for path in sorted(Path(avsep.evaluation.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("avsep."):
                borrowed += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_")]
    assert borrowed == []
