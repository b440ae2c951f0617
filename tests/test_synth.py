"""Stand-in datasets (data_prep.synth): layouts, media, loudness, determinism, motion."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from scipy.ndimage import maximum_filter1d
from scipy.signal import stft

from avsep.classes import MUSIC21_CLASSES, SOLOS_CLASSES, URMP_CODE_TO_CLASS
from avsep.cli import build_parser
from avsep.cli import main as avsep_main
from data_prep.synth import (
    RunOptions,
    SoundfontError,
    UrmpSettings,
    generate_solos,
    generate_urmp,
    solos_settings,
)
from data_prep.synth.instruments import INSTRUMENTS, instrument
from data_prep.synth.levels import active_rms, mix_stems, span_gate
from data_prep.synth.music import (
    corpus_candidates,
    excerpt,
    fit_range,
    kind_of,
    pool,
    pool_of,
    title_for,
)
from data_prep.synth.performers import Performer, frame_times, motion_from_notes
from data_prep.synth.presets import PRESETS
from data_prep.synth.render import BLOCK, DEFAULT_SOUNDFONT, FluidRenderer
from data_prep.synth.solos import plan_spans
from data_prep.synth.video_io import probe

DATA = Path(__file__).resolve().parent.parent / "data_prep"
TINY = PRESETS["tiny"]
LEVEL_DBFS = RunOptions().level_dbfs
CODES = "|".join(URMP_CODE_TO_CLASS)
URMP_FOLDER = re.compile(rf"^(\d\d)_([A-Za-z0-9]+)((?:_(?:{CODES}))+)$")

needs_soundfont = pytest.mark.skipif(
    not Path(DEFAULT_SOUNDFONT).is_file(), reason=f"{DEFAULT_SOUNDFONT} not installed"
)


def _urmp_pieces(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def _dbfs(value: float) -> float:
    return 20 * np.log10(value)


def _reference_active_rms(x: np.ndarray, frame: int = 2048, gate_db: float = -40) -> float:
    """Loop-based reference for levels.active_rms: RMS over 2048-sample frames whose energy
    is within 40 dB of the loudest one."""
    energies = [float(np.mean(x[i:i + frame].astype(np.float64) ** 2))
                for i in range(0, len(x) - frame + 1, frame)]
    loudest = max(energies)
    kept = [e for e in energies if e >= loudest * 10 ** (gate_db / 10)]
    return float(np.sqrt(sum(kept) / len(kept)))


# ---------------------------------------------------------------- pure functions


def test_fit_range_moves_whole_octaves_into_the_range():
    notes = np.array([[0, 1, 40, 80], [1, 2, 45, 80], [2, 3, 52, 80]], float)  # bass register
    violin = instrument("vn")
    fitted = fit_range(notes, violin)
    assert np.all((fitted[:, 2] >= violin.low) & (fitted[:, 2] <= violin.high))
    shifts = fitted[:, 2] - notes[:, 2]
    assert np.all(shifts % 12 == 0) and np.all(shifts > 0)
    np.testing.assert_array_equal(fitted[:, [0, 1, 3]], notes[:, [0, 1, 3]])


def test_excerpt_wraps_around_and_cuts_at_its_end():
    notes = np.array([[0.0, 0.5, 60, 80], [1.0, 1.8, 62, 80]])
    # part repeats every 2 s; excerpt 1.5 s .. 4.2 s
    out = excerpt(notes, start_s=1.5, length_s=2.7, period_s=2.0)
    np.testing.assert_allclose(out[:, 0], [0.5, 1.5, 2.5])  # 2.0, 3.0, 4.0 on the part's clock
    np.testing.assert_allclose(out[:, 1], [1.0, 2.3, 2.7])  # the last note is cut at 2.7
    np.testing.assert_array_equal(out[:, 2], [60, 62, 60])


@pytest.mark.parametrize("seed", range(5))
def test_plan_spans_leaves_gaps_and_stays_inside_the_clip(seed):
    rng = np.random.default_rng(seed)
    spans = plan_spans(40.0, (7.0, 12.0), (1.0, 2.5), rng)
    assert len(spans) >= 2
    for (_, b), (c, _) in itertools.pairwise(spans):
        assert c - b >= 1.0 - 1e-9  # a real gap between playing spans
    for a, b in spans:
        assert 0 <= a < b <= 40.0 and b - a >= 7.0 - 0.04
        assert a * 25 == pytest.approx(round(a * 25)) and b * 25 == pytest.approx(round(b * 25))


def test_active_rms_ignores_silence_and_matches_a_reference():
    rng = np.random.default_rng(0)
    loud = 0.1 * rng.standard_normal(2048 * 10)
    signal = np.concatenate([loud, np.zeros(2048 * 30)])
    assert active_rms(signal) == pytest.approx(np.sqrt(np.mean(loud**2)), rel=1e-9)
    assert active_rms(signal) == pytest.approx(_reference_active_rms(signal), rel=1e-9)


def test_mix_stems_scales_all_stems_together_and_sums_them():
    a = np.full(100, 0.6, np.float32)
    b = np.full(100, 0.7, np.float32)
    stems, mix = mix_stems([a, b], peak=0.95)
    assert np.abs(mix).max() == pytest.approx(0.95, abs=1e-6)
    assert stems[1, 0] / stems[0, 0] == pytest.approx(0.7 / 0.6, rel=1e-6)
    np.testing.assert_allclose(mix, stems.sum(axis=0), atol=1e-7)
    quiet, _ = mix_stems([0.1 * a, 0.1 * b])  # nothing to do below the peak
    np.testing.assert_array_equal(quiet[0], 0.1 * a)


def test_span_gate_is_one_inside_zero_outside_with_a_fade():
    gate = span_gate(100, [(10, 30), (50, 60)], fade=4)
    assert np.all(gate[:10] == 0) and np.all(gate[30:50] == 0) and np.all(gate[60:] == 0)
    assert np.all(gate[10:26] == 1) and np.all(gate[50:56] == 1)
    np.testing.assert_allclose(gate[26:30], [1.0, 0.75, 0.5, 0.25])


def test_motion_jolts_at_onsets_and_rests_outside_spans():
    notes = np.array([[1.0, 1.5, 60, 127], [2.0, 2.5, 64, 127]])
    times = np.array([0.5, 1.0, 1.1, 2.0, 4.0])
    motion = motion_from_notes(notes, times, spans=[(1.0, 2.5)])
    np.testing.assert_allclose(motion.jolt[:4], [0.0, 1.0, np.exp(-1.0), 1.0], atol=1e-12)
    np.testing.assert_array_equal(motion.direction[1:4], [1, 1, -1])
    assert motion.playing[1] == 1 and motion.playing[4] == 0


def test_titles_are_alphanumeric_and_unique():
    titles = [title_for(p) for p in corpus_candidates()]
    assert all(re.fullmatch(r"[A-Za-z0-9]+", t) for t in titles)
    assert len(set(titles)) == len(titles)


def test_music_pools_are_disjoint_and_cover_every_candidate():
    solos, urmp = set(pool("solos")), set(pool("urmp"))
    assert solos and urmp and not solos & urmp
    assert solos | urmp == set(corpus_candidates())
    assert all(pool_of(p) == "urmp" for p in urmp)
    # every kind is held out in part, so quintets (madrigals) exist for the URMP layout
    assert {kind_of(p).name for p in urmp} == {"chorale", "madrigal", "quartet"}


def test_packaged_solos_lists_name_the_13_classes():
    ids = json.loads((DATA / "solos_ids.json").read_text())
    stamps = json.loads((DATA / "solos_timestamps.json").read_text())
    assert tuple(sorted(ids)) == SOLOS_CLASSES and set(stamps) == set(ids)
    assert all(len(v) >= 40 for v in ids.values())


# ---------------------------------------------------------------- rendering


@needs_soundfont
def test_renderer_is_repeatable_and_places_notes_on_blocks():
    renderer = FluidRenderer(DEFAULT_SOUNDFONT, 44100, [40, 71])
    try:
        notes = np.array([[0.1, 0.4, 69, 100], [0.5, 0.9, 72, 90]])
        first = renderer.render([(notes, 40)], 44100)
        renderer.render([(notes + [0, 0, -12, 0], 71)], 44100)  # something else in between
        again = renderer.render([(notes, 40)], 44100)
        np.testing.assert_array_equal(first, again)
        # the note starts on the 64-sample block nearest to 0.1 s (4410 -> 4416)
        onset = int(np.flatnonzero(np.abs(first) > 0)[0])
        block = round(0.1 * 44100 / BLOCK) * BLOCK
        assert block <= onset < block + 8
    finally:
        renderer.close()


def test_missing_soundfont_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "FluidR3_GM.sf2"
    with pytest.raises(SoundfontError, match=r"soundfont not found.*fluid-soundfont-gm"):
        generate_solos(tmp_path / "out", solos_settings("tiny"),
                       RunOptions(soundfont=str(missing), progress=False))
    assert not (tmp_path / "out").exists()
    code = avsep_main(["synth", "urmp", "--out", str(tmp_path / "u"), "--preset", "tiny",
                       "--soundfont", str(tmp_path / "mine.sf2"), "--quiet"])
    assert code == 2
    assert "soundfont not found" in capsys.readouterr().err


def test_cli_help_explains_the_options(capsys):
    parser = build_parser()
    for argv, words in ((["synth", "--help"], ["solos", "urmp", "never overlap"]),
                        (["synth", "solos", "--help"], ["--clips-per-class", "--seconds",
                                                        "--soundfont", "--jobs", "--preset",
                                                        "--seed", "solos_timestamps.json"]),
                        (["synth", "urmp", "--help"], ["--pieces", "--min-players",
                                                       "--max-players", "AuMix", "vn_vn"])):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        for word in words:
            assert word in text, (argv, word)


def test_cli_help_quotes_the_preset_sizes(capsys):
    """The help repeats preset values (the CLI does not import the presets); they must agree."""
    from data_prep.synth.presets import PRESETS

    parser = build_parser()
    fields = {"solos": {"clips per class": "clips_per_class", "length of every clip": "seconds",
                        "music pool": "music_pieces"},
              "urmp": {"number of pieces": "pieces", "longest piece": "seconds"}}
    for layout, helps in fields.items():
        with pytest.raises(SystemExit):
            parser.parse_args(["synth", layout, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for phrase, field in helps.items():
            quoted = re.search(re.escape(phrase) + r"[^(]*\(tiny: ([\d.]+), bench: ([\d.]+)\)", text)
            assert quoted, (layout, phrase)
            for name, value in zip(("tiny", "bench"), quoted.groups()):
                actual = getattr(getattr(PRESETS[name], layout), field)
                assert float(value) == float(actual), (layout, field, name)


# ---------------------------------------------------------------- the tiny stand-in


def test_tiny_is_made_quickly(synth_tiny_run):
    # Target: under 30 s on 2 free cores. The wall-clock bound is doubled because other
    # work may share the cores; the CPU the jobs used must fit 30 s on two cores.
    cpu = sum(s.cpu_seconds for s in synth_tiny_run.summaries.values())
    assert cpu / 2 < 30, f"jobs used {cpu:.1f} CPU seconds"
    assert synth_tiny_run.wall_seconds < 60, f"took {synth_tiny_run.wall_seconds:.1f} s"


def test_solos_layout_uses_real_ids_and_class_folders(synth_tiny):
    root = synth_tiny["solos"]
    ids = json.loads((DATA / "solos_ids.json").read_text())
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert folders == sorted(SOLOS_CLASSES)
    for name in folders:
        files = sorted(p.name for p in (root / name).iterdir())
        expected = sorted(f"{i}.mp4" for i in ids[name][: TINY.solos.clips_per_class])
        assert files == expected


def test_solos_timestamps_have_the_real_format_and_gaps(synth_tiny):
    root = synth_tiny["solos"]
    stamps = json.loads((root / "solos_timestamps.json").read_text())
    num_frames = round(TINY.solos.seconds * 25)
    assert sorted(stamps) == sorted(SOLOS_CLASSES)
    rests = 0
    for name, clips in stamps.items():
        assert sorted(f"{i}.mp4" for i in clips) == sorted(p.name for p in (root / name).iterdir())
        for spans in clips.values():
            assert all(isinstance(v, int) for span in spans for v in span)
            assert all(0 <= a < b <= num_frames for a, b in spans)
            assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(spans))
            covered = sum(b - a for a, b in spans)
            rests += num_frames - covered >= 25  # at least a second without playing
            assert min(b - a for a, b in spans) / 25 >= 6.0  # a whole 6 s chunk fits
    assert rests == len(SOLOS_CLASSES)


def test_solos_clips_are_silent_outside_playing_spans(synth_tiny):
    root = synth_tiny["solos"]
    stamps = json.loads((root / "solos_timestamps.json").read_text())
    name = "Trumpet"
    (video_id, spans), = stamps[name].items()
    audio, sr = _decode_audio(root / name / f"{video_id}.mp4")
    playing = np.zeros(len(audio), bool)
    for a, b in spans:  # allow the AAC codec 50 ms of spread around each span
        playing[max(0, int((a / 25 - 0.05) * sr)): int((b / 25 + 0.05) * sr)] = True
    assert np.sqrt(np.mean(audio[~playing] ** 2)) < 1e-3
    assert _dbfs(active_rms(audio)) == pytest.approx(LEVEL_DBFS, abs=1.0)


def test_urmp_layout_names_and_files(synth_tiny):
    pieces = _urmp_pieces(synth_tiny["urmp"])
    assert len(pieces) == TINY.urmp.pieces
    players = []
    for folder in pieces:
        number, title, codes = URMP_FOLDER.match(folder.name).groups()
        codes = codes.strip("_").split("_")
        stem = f"{number}_{title}"
        expected = {f"Vid_{folder.name}.mp4", f"AuMix_{folder.name}.wav",
                    f"Boxes_{folder.name}.json"}  # the stand-in's own: where players are
        expected |= {f"AuSep_{k}_{c}_{stem}.wav" for k, c in enumerate(codes, start=1)}
        assert {p.name for p in folder.iterdir()} == expected
        players.append(len(codes))
    names = [p.name for p in pieces]
    assert any(n.endswith("_vn_vn") for n in names)
    assert min(players) == 2 and max(players) == TINY.urmp.max_players


def test_urmp_mix_is_the_sum_of_the_stems(synth_tiny):
    for folder in _urmp_pieces(synth_tiny["urmp"]):
        mix, rate = sf.read(next(folder.glob("AuMix_*.wav")), dtype="float32")
        assert rate == 48000 and sf.info(next(folder.glob("AuMix_*.wav"))).subtype == "FLOAT"
        stems = [sf.read(p, dtype="float32")[0] for p in sorted(folder.glob("AuSep_*.wav"))]
        assert all(s.shape == mix.shape for s in stems)
        assert np.abs(mix - np.sum(stems, axis=0)).max() < 1e-4
        assert np.abs(mix).max() <= 1.0


def test_urmp_stems_are_normalised(synth_tiny):
    for folder in _urmp_pieces(synth_tiny["urmp"]):
        levels = [_dbfs(_reference_active_rms(sf.read(p, dtype="float32")[0]))
                  for p in sorted(folder.glob("AuSep_*.wav"))]
        # one level for all stems of a piece (scaled together only if the mix would clip)
        assert max(levels) - min(levels) < 0.1, (folder.name, levels)
        assert LEVEL_DBFS - 12 < levels[0] <= LEVEL_DBFS + 0.05


def _all_mp4s(synth_tiny) -> list[Path]:
    return sorted(synth_tiny["solos"].glob("*/*.mp4")) + sorted(synth_tiny["urmp"].glob("*/*.mp4"))


def test_every_mp4_has_video_and_audio_of_the_same_length(synth_tiny):
    mp4s = _all_mp4s(synth_tiny)
    assert len(mp4s) == 13 + TINY.urmp.pieces
    for path in mp4s:
        info = probe(path)
        urmp = path.parent.parent == synth_tiny["urmp"]
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert info.fps == (Fraction(30000, 1001) if urmp else 25)
        assert info.sample_rate == (48000 if urmp else 44100)
        if urmp:
            players = len(URMP_FOLDER.match(path.parent.name).group(3).strip("_").split("_"))
            assert (info.width, info.height) == (TINY.urmp.cell_width * players, 240)
            samples = sf.info(next(path.parent.glob("AuMix_*.wav"))).frames
            expected_frames = samples / 48000 * float(info.fps)
        else:
            assert (info.width, info.height) == (320, 240)
            expected_frames = TINY.solos.seconds * 25
        frame = 1 / float(info.fps)
        assert abs(info.num_frames - expected_frames) <= 1, path
        assert abs(info.video_seconds - info.num_frames * frame) <= frame, path
        assert abs(info.audio_seconds - info.video_seconds) <= frame, path


def test_decoded_streams_agree_with_the_container(synth_tiny):
    for path in (_all_mp4s(synth_tiny)[0], _all_mp4s(synth_tiny)[-1]):
        info = probe(path)
        with av.open(str(path)) as container:
            decoded = sum(1 for _ in container.decode(video=0))
        audio, rate = _decode_audio(path)
        assert decoded == info.num_frames
        # the AAC encoder pads its last packet to 1024 samples
        assert 0 <= len(audio) / rate - info.num_frames / float(info.fps) <= 1024 / rate + 1e-9


def test_urmp_video_carries_the_mixture(synth_tiny):
    folder = _urmp_pieces(synth_tiny["urmp"])[0]
    mix, _ = sf.read(next(folder.glob("AuMix_*.wav")), dtype="float32")
    audio, rate = _decode_audio(next(folder.glob("Vid_*.mp4")))
    assert rate == 48000
    audio = audio[: len(mix)]
    snr = 10 * np.log10(np.sum(mix**2) / np.sum((audio - mix) ** 2))
    assert snr > 10  # AAC at 128 kbit/s; a wrong or shifted track would be far below 0 dB


def test_music_pools_stay_apart_in_the_output(synth_tiny):
    solos = json.loads((synth_tiny["solos"] / "synth_manifest.json").read_text())
    urmp = json.loads((synth_tiny["urmp"] / "synth_manifest.json").read_text())
    used_solos = {span["piece"] for clip in solos["files"].values() for span in clip["music"]}
    used_urmp = {piece["piece"] for piece in urmp["files"].values()}
    assert used_solos and used_urmp and not used_solos & used_urmp
    assert used_solos <= set(pool("solos")) and used_urmp <= set(pool("urmp"))


# ---------------------------------------------------------------- onset-driven motion


def _decode_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [frame.to_ndarray().mean(axis=0) for frame in container.decode(stream)]
    return np.concatenate(chunks), rate


def _onset_strength(audio: np.ndarray, rate: int, fps: float, num_frames: int) -> np.ndarray:
    """Onset strength per video frame interval [f/fps, (f+1)/fps): spectral flux with a
    maximum filter across frequency (vibrato-robust, 'SuperFlux'), summed per interval."""
    hop = int(rate / fps) // 4
    _, times, spectrum = stft(audio, rate, nperseg=2048, noverlap=2048 - hop, boundary=None,
                              padded=False)
    magnitude = np.log1p(100 * np.abs(spectrum))
    reference = maximum_filter1d(magnitude, 5, axis=0)
    flux = np.maximum(magnitude[:, 2:] - reference[:, :-2], 0).sum(axis=0)
    strength = np.zeros(num_frames)
    index = np.floor(times[2:] * fps).astype(int)
    np.add.at(strength, index[(index >= 0) & (index < num_frames)],
              flux[(index >= 0) & (index < num_frames)])
    return strength


def _motion_and_onsets(path: Path, spans: list[list[int]]) -> tuple[np.ndarray, ...]:
    """Frame-difference energy (frame f -> f+1), the onset strength of the interval ending at
    frame f+1, and which of these pairs to use: inside playing spans and not across a
    keyframe (a codec refresh, not motion)."""
    frames, keys = [], []
    with av.open(str(path)) as container:
        fps = float(container.streams.video[0].average_rate)
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="gray").astype(np.float32))
            keys.append(frame.key_frame)
    motion = np.abs(np.diff(np.stack(frames), axis=0)).mean(axis=(1, 2))
    audio, rate = _decode_audio(path)
    onset = _onset_strength(audio, rate, fps, len(frames))[:-1]
    usable = np.zeros(len(motion), bool)
    for a, b in spans:
        usable[a:b - 1] = True
    usable &= ~np.array(keys[1:], bool)
    return motion, onset, usable


def _correlation(motion: np.ndarray, onset: np.ndarray, usable: np.ndarray) -> float:
    """Pearson r of motion and onsets; the sound may start up to one frame after the motion
    (instrument attack), so the better of lags 0 and 1 is taken."""
    best = -1.0
    for lag in (0, 1):
        m, o, u = motion[:len(motion) - lag], onset[lag:], usable[:len(usable) - lag]
        best = max(best, float(np.corrcoef(m[u], o[u])[0, 1]))
    return best


def test_instrument_motion_follows_note_onsets(synth_tiny):
    root = synth_tiny["solos"]
    stamps = json.loads((root / "solos_timestamps.json").read_text())
    aligned, shifted = [], []
    for name, clips in stamps.items():
        for video_id, spans in clips.items():
            motion, onset, usable = _motion_and_onsets(root / name / f"{video_id}.mp4", spans)
            aligned.append(_correlation(motion, onset, usable))
            # control: the same signals misaligned by 9 frames must correlate much less
            shifted.append(_correlation(motion, np.roll(onset, 9), usable))
    assert np.median(aligned) > 0.3, aligned
    assert min(aligned) > 0.1, aligned
    assert np.median(aligned) > np.median(shifted) + 0.2, (aligned, shifted)


# ---------------------------------------------------------------- determinism


@needs_soundfont
def test_same_seed_same_wavs_other_seed_other_wavs(tmp_path):
    small = UrmpSettings(pieces=1, seconds=3.0, frame_height=48)
    runs = {
        "a": (dataclasses.replace(small, pieces=2), RunOptions(seed=5, jobs=2, progress=False)),
        "b": (small, RunOptions(seed=5, jobs=1, progress=False)),
        "c": (small, RunOptions(seed=6, jobs=1, progress=False)),
    }
    wavs = {}
    for key, (settings, options) in runs.items():
        generate_urmp(tmp_path / key, settings, options)
        folder = _urmp_pieces(tmp_path / key)[0]
        wavs[key] = {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}
    # piece 01 does not depend on the number of pieces, the process or the job count
    assert wavs["a"] == wavs["b"]
    assert wavs["c"] != wavs["b"]
    assert len(wavs["b"]) == 3  # two stems and the mix


def test_every_class_has_a_distinct_program_and_look():
    from data_prep.synth.sprites import SPECS

    programs = [inst.program for inst in INSTRUMENTS.values()]
    assert len(set(programs)) == len(programs)
    assert set(SPECS) == set(SOLOS_CLASSES) | set(MUSIC21_CLASSES)
    for classes in (SOLOS_CLASSES, MUSIC21_CLASSES):  # each stand-in tells its classes apart
        looks = {(SPECS[c].colour, SPECS[c].length, SPECS[c].draw) for c in classes}
        assert len(looks) == len(classes)


def test_music_classes_without_a_gm_program_get_the_closest_and_say_so():
    from data_prep.synth.instruments import MUSIC_INSTRUMENTS, MUSIC_PROGRAM_NAMES

    assert tuple(MUSIC_INSTRUMENTS) == MUSIC21_CLASSES
    assert MUSIC_INSTRUMENTS["erhu"].program == 110 and "Fiddle" in MUSIC_PROGRAM_NAMES["erhu"]
    assert MUSIC_INSTRUMENTS["violin"].program == INSTRUMENTS["Violin"].program
    # ukulele borrows the guitar's program: the only two classes sharing one
    programs = [inst.program for inst in MUSIC_INSTRUMENTS.values()]
    assert len(programs) - len(set(programs)) == 1


@pytest.mark.parametrize("name", ["Clarinet", "Horn", "Violin"])
def test_a_performers_box_holds_what_it_draws(name):
    times = frame_times(6, 25.0)
    notes = np.array([[0.0, 0.2, 60.0, 100.0]])
    rng = np.random.default_rng(3)
    performer = Performer(name, motion_from_notes(notes, times), (100, 120), 160, rng)
    for index, t in enumerate(times):
        frame = np.zeros((160, 320, 3), np.uint8)
        x0, y0, x1, y1 = performer.draw(frame, index, float(t), (0.0, 0.0))
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 160
        ys, xs = np.nonzero(frame.any(axis=2))
        inside = (xs >= x0 - 2) & (xs <= x1 + 2) & (ys >= y0 - 2) & (ys <= y1 + 2)  # edges
        # The bow of a string player may reach out of the box; nothing else does (2 px of
        # anti-aliased edges aside).
        assert inside.mean() > (0.97 if name == "Violin" else 0.999), (index, inside.mean())
        assert 100 <= (x0 + x1) / 2 < 220  # in its own cell


def test_urmp_boxes_file_has_each_players_box_per_video_frame(synth_tiny):
    for folder in _urmp_pieces(synth_tiny["urmp"]):
        data = json.loads((folder / f"Boxes_{folder.name}.json").read_text())
        players = len(URMP_FOLDER.match(folder.name).group(3).strip("_").split("_"))
        info = probe(folder / f"Vid_{folder.name}.mp4")
        assert data["frame_size"] == [info.height, info.width]
        boxes = np.asarray(data["boxes"])
        assert boxes.shape[1:] == (players, 4)
        assert abs(len(boxes) - info.video_seconds * data["fps"]) <= 1
        centres = (boxes[:, :, 0] + boxes[:, :, 2]) / 2
        cells = np.arange(players) * info.width / players
        assert np.all((centres >= cells) & (centres < cells + info.width / players))


def test_studio_style_is_a_still_dark_stage_with_instruments_in_another_palette():
    from data_prep.synth.performers import render_frames, studio_palette

    notes = np.array([[0.0, 1.0, 60.0, 100.0]])
    frames = {style: list(render_frames([("Violin", notes), ("Trumpet", notes)], 3, 25.0, 200,
                                         240, np.random.default_rng(1), style=style))
              for style in ("default", "studio")}
    corner = (slice(0, 20), slice(0, 20))  # background only: the players stand lower
    studio = [f[corner] for f in frames["studio"]]
    assert np.array_equal(studio[0], studio[2])  # a still camera and no drifting shapes
    assert studio[0].mean() < 60 < frames["default"][0][corner].mean()  # a dark stage
    # Red turned by 50 degrees with half the saturation, by the HSV formulas:
    # H = 50, S = 127/255, V = 1 -> (255, 255 (1 - S (1 - 50/60)), 255 (1 - S)).
    red = np.array([[[255, 0, 0, 255]]], np.uint8)
    s = 127 / 255
    expected = [255, 255 * (1 - s * (1 - 50 / 60)), 255 * (1 - s), 255]
    np.testing.assert_allclose(studio_palette(red)[0, 0], expected, atol=2)
    with pytest.raises(ValueError, match="unknown visual style 'cartoon'"):
        dataclasses.replace(PRESETS["tiny"].urmp, style="cartoon")


def test_cli_parser_does_not_load_the_generators():
    """Every `avsep` command builds the synth parser; training needs none of the renderers,
    so building it must not import them (or soundfile / FluidSynth behind them)."""
    import subprocess
    import sys

    code = ("import sys, avsep.cli; avsep.cli.build_parser(); "
            "print(sorted(m for m in ('soundfile', 'fluidsynth', 'data_prep.synth.render', "
            "'data_prep.synth.urmp', 'data_prep.synth.music_layout') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
    # ... while the package's names still resolve on first use
    from data_prep import synth

    assert synth.RunOptions(seed=3).seed == 3
    assert callable(synth.generate_urmp)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        synth.not_a_name  # noqa: B018
