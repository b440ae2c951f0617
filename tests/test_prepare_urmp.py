"""`avsep prepare urmp`: player crops, segments, the real mixture, and sample alignment."""

from __future__ import annotations

import glob
import itertools
import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import webdataset as wds
from scipy.signal import correlate, resample_poly

from avsep.urmp_naming import parse_piece_name, player_bounds
from tests.av_alignment import lag_scores, motion_energy, onset_envelope

RATE = 11025
CLIP = 65535


def test_piece_names_parse_into_codes_in_part_order():
    assert parse_piece_name("01_Jupiter_vn_vc") == ("01", "Jupiter", ["vn", "vc"])
    assert parse_piece_name("24_Pirates_vn_vn_va_vc") == ("24", "Pirates", ["vn", "vn", "va", "vc"])
    assert parse_piece_name("07_Gavotte_Long_vn_vn") == ("07", "Gavotte_Long", ["vn", "vn"])


def test_player_bounds_tile_the_width():
    for width, players in [(1920, 2), (1920, 3), (1001, 4), (64, 5)]:
        bounds = player_bounds(width, players)
        assert bounds[0][0] == 0 and bounds[-1][1] == width
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


@pytest.fixture(scope="module")
def urmp(synth_tiny, prepared_tiny) -> tuple[Path, dict[str, list[dict]]]:
    """(raw folder, {piece: samples sorted by segment})."""
    urls = sorted(glob.glob(str(prepared_tiny["urmp"] / "*.tar")))
    pieces: dict[str, list[dict]] = {}
    for sample in wds.WebDataset(urls, shardshuffle=False).decode("rgb8"):
        pieces.setdefault(sample["json"]["piece"], []).append(sample)
    for samples in pieces.values():
        samples.sort(key=lambda s: s["json"]["segment"])
    return synth_tiny["urmp"], pieces


def _raw_pieces(raw: Path) -> list[Path]:
    return sorted(p for p in raw.iterdir() if p.is_dir())


def test_every_piece_is_prepared_with_consecutive_segments(urmp):
    raw, pieces = urmp
    assert sorted(pieces) == [p.name for p in _raw_pieces(raw)]
    for folder in _raw_pieces(raw):
        info = soundfile.info(str(next(folder.glob("AuMix_*.wav"))))
        with av.open(str(folder / f"Vid_{folder.name}.mp4")) as container:
            video_s = float(container.duration / 1e6)
        usable = min(int(np.ceil(info.frames * RATE / info.samplerate)), int(video_s * RATE))
        samples = pieces[folder.name]
        full, tail = divmod(usable, CLIP)
        assert abs(len(samples) - (full + (tail >= RATE))) <= 1  # hand count, +-1 for rounding
        for index, sample in enumerate(samples):
            meta = sample["json"]
            assert sample["__key__"] == f"{folder.name}__seg{index:04d}"
            assert meta["segment"] == index
            assert meta["start_s"] == pytest.approx(index * CLIP / RATE)
            assert sample["mix.npy"].shape == (CLIP,)
            assert sample["stems.npy"].shape == (meta["players"], CLIP)
            valid = meta["valid_samples"]
            if index < len(samples) - 1:
                assert valid == CLIP  # only the last segment may be partial
            assert RATE <= valid <= CLIP  # a tail shorter than 1 s is dropped
            assert not sample["mix.npy"][valid:].any()  # padding is explicit zeros...
            assert not sample["stems.npy"][:, valid:].any()
            assert abs(meta["num_frames"] - 8 * valid / RATE) <= 1  # ...frames cover the rest


def test_player_crops_have_the_width_of_one_player(urmp):
    raw, pieces = urmp
    for folder in _raw_pieces(raw):
        with av.open(str(folder / f"Vid_{folder.name}.mp4")) as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
        sample = pieces[folder.name][0]
        players = len(parse_piece_name(folder.name)[2])
        assert sample["json"]["players"] == players
        for k in range(players):
            crop = sample[f"p{k}.000.jpg"]
            assert min(crop.shape[:2]) == 256
            expected = (width / players) / height  # aspect ratio of one player's column
            assert crop.shape[1] / crop.shape[0] == pytest.approx(expected, rel=0.02)
            frames = [key for key in sample if key.startswith(f"p{k}.")]
            assert len(frames) == sample["json"]["num_frames"]


def test_same_instrument_pieces_keep_both_players(urmp):
    _raw, pieces = urmp
    twins = [name for name in pieces if len(set(parse_piece_name(name)[2])) == 1]
    assert twins, "the stand-in should include a piece like NN_Title_vn_vn"
    for name in twins:
        sample = pieces[name][0]
        codes = parse_piece_name(name)[2]
        assert sample["json"]["instruments"] == codes
        stems = sample["stems.npy"]
        assert stems.shape[0] == len(codes)
        assert all(np.abs(stem).max() > 0 for stem in stems)
        assert not np.allclose(stems[0], stems[1])  # two players, not one copied
        assert all(f"p{k}.000.jpg" in sample for k in range(len(codes)))


def _lag(a: np.ndarray, b: np.ndarray, max_lag: int = 20) -> int:
    """Lag (samples) maximizing the cross-correlation of a against b."""
    corr = correlate(a, b, mode="full", method="fft")
    center = len(b) - 1
    window = corr[center - max_lag: center + max_lag + 1]
    return int(np.argmax(window)) - max_lag


def test_mixture_and_stems_align_to_the_sample(urmp):
    _raw, pieces = urmp
    for samples in pieces.values():
        mix = np.concatenate([s["mix.npy"][: s["json"]["valid_samples"]] for s in samples])
        stems = np.concatenate([s["stems.npy"][:, : s["json"]["valid_samples"]] for s in samples],
                               axis=1)
        assert _lag(mix, stems.sum(0)) == 0
        for stem in stems:
            assert _lag(mix, stem) == 0
        # The prepared mixture is the real AuMix; with the stand-in it equals the stem sum.
        error = np.sum((mix - stems.sum(0)) ** 2) / np.sum(mix**2)
        assert 10 * np.log10(error) < -40


def test_stems_match_an_independent_resampler(urmp):
    """Prepared stems vs the raw WAV resampled by scipy's polyphase filter: same timing."""
    raw, pieces = urmp
    folder = _raw_pieces(raw)[0]
    samples = pieces[folder.name]
    prepared = np.concatenate([s["stems.npy"][0] for s in samples])
    wav, rate = soundfile.read(str(min(folder.glob("AuSep_1_*.wav"))), dtype="float32")
    assert rate == 48000
    reference = resample_poly(wav, 147, 640)  # 48000 * 147 / 640 = 11025
    n = min(len(reference), samples[-1]["json"]["valid_samples"] + (len(samples) - 1) * CLIP)
    assert _lag(prepared[:n], reference[:n]) == 0
    residual = np.sum((prepared[:n] - reference[:n]) ** 2) / np.sum(reference[:n] ** 2)
    assert 10 * np.log10(residual) < -30


def test_each_player_crop_moves_with_its_own_stem(urmp):
    """Crop k's motion follows stem k's onsets within one frame (29.97 fps source, 8 fps)."""
    _, pieces = urmp
    pairs = []
    for samples in pieces.values():
        for sample in samples:
            for k in range(sample["json"]["players"]):
                names = sorted(n for n in sample if n.startswith(f"p{k}."))
                motion = motion_energy(np.stack([sample[n] for n in names]))
                stem = sample["stems.npy"][k]
                pairs.append((motion, onset_envelope(stem, RATE, 8, len(motion))))
    lags, scores = lag_scores(pairs)
    assert abs(int(lags[np.argmax(scores)])) <= 1, dict(zip(lags.tolist(), scores.round(2)))


def test_short_tails_are_dropped_and_reported(urmp, prepared_tiny):
    _, pieces = urmp
    report = [json.loads(line) for line in
              (prepared_tiny["urmp"] / "report.jsonl").read_text().splitlines()]
    dropped = {r["unit"]: r["seconds"] for r in report if r["code"] == "tail_dropped"}
    for name, samples in pieces.items():
        last = samples[-1]["json"]
        if name in dropped:
            assert 0 < dropped[name] < 1.0 and last["valid_samples"] == CLIP
        else:
            assert last["valid_samples"] >= RATE


def test_inspect_summarizes_urmp_shards(urmp, prepared_tiny, capsys):
    from avsep.cli import main as avsep_main

    _, pieces = urmp
    assert avsep_main(["inspect", str(prepared_tiny["urmp"]), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "urmp"
    assert summary["pieces"] == len(pieces)
    assert summary["samples"] == sum(len(v) for v in pieces.values())
    valid = sum(s["json"]["valid_samples"] for v in pieces.values() for s in v)
    assert summary["hours"] == pytest.approx(valid / RATE / 3600)
    classes = {c for v in pieces.values() for c in v[0]["json"]["classes"]}
    assert set(summary["labels"]) == classes
