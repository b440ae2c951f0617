"""The published MUSIC protocol (iQuery's / DAVIS's testsepmusic.csv, one centre clip per
video) beside avsep's multi-clip one, and `prepare music --test-ids`.

Hand computations use the arithmetic of `avsep.evaluation.center_clip` (its docstring):
frames = ceil(samples / 11025) at 1 frame/s, centre frame = frames // 2 + 1, centre sample =
int((centre frame - 0.5) * 11025), clip = audio[centre - 32767 : centre + 32767] + one zero.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

from avsep import create_model
from avsep.checkpoint import save_checkpoint
from avsep.cli import main
from avsep.evaluation import evaluate_music_center
from avsep.evaluation.center_clip import (
    Video,
    center_clip,
    cut_center_clip,
    match_list,
    read_clip,
)
from avsep.evaluation.music import Chunk, index_music_shards
from avsep.evaluation.pair_csv import PairListError, read_pair_csv, read_video_ids
from avsep.geometry import ClipSpec
from data_prep.prepare.split import split3_of

RATE = 11025
SMALL_FRAMES = ClipSpec(image_size=16)
VAL, TEST = 0.25, 0.3  # as tests/test_music.py: every split of the stand-in is populated


# ----------------------------------------------------------------- arithmetic, by hand
def test_centre_clip_of_a_seven_second_video():
    # 77175 samples = 7.0 s -> 7 frames at 1 frame/s, centre frame 7 // 2 + 1 = 4, at
    # (4 - 0.5) s = 3.5 s -> int(38587.5) = 38587; the clip starts 32767 samples earlier.
    clip = center_clip(77175)
    assert (clip.frames, clip.centre_frame, clip.centre, clip.start) == (7, 4, 38587, 5820)
    audio = np.arange(77175, dtype=np.float32)
    window = cut_center_clip(lambda lo, hi: audio[lo:hi], clip)
    assert window.shape == (65535,)
    np.testing.assert_array_equal(window[:65534], audio[5820:71354])
    assert window[65534] == 0  # the loaders leave the last sample at zero


def test_centre_clip_at_another_index_frame_rate():
    # Sound of Pixels' 8 frames/s: ceil(7.0 * 8) = 56 frames, centre frame 29 at 3.5625 s
    clip = center_clip(77175, fps=8)
    assert (clip.frames, clip.centre_frame, clip.centre) == (56, 29, int(28.5 / 8 * RATE))
    assert clip.centre == 39276


def test_a_clip_past_the_end_of_the_video_is_zero_padded():
    # 66150 samples = 6.0 s: 6 frames, centre frame 4 at 3.5 s, sample 38587; the video
    # ends 66150 - 38587 = 27563 samples after the centre, the clip 32767 after it.
    audio = np.arange(1, 66151, dtype=np.float32)
    clip = center_clip(66150)
    window = cut_center_clip(lambda lo, hi: audio[lo:hi], clip)
    np.testing.assert_array_equal(window[:32767 + 27563], audio[5820:])
    assert not window[32767 + 27563:].any()


def test_a_video_shorter_than_a_clip_is_tiled_as_the_papers_do():
    # 30000 samples: 3 frames, centre frame 2 at 1.5 s, sample int(16537.5) = 16537; the
    # audio is tiled int(65535 / 30000) + 1 = 3 times (90000 samples) and the clip holds
    # tiled[0 : 16537 + 32767] from position 32767 - 16537 = 16230 on.
    audio = np.arange(1, 30001, dtype=np.float32)
    clip = center_clip(30000)
    assert (clip.frames, clip.centre_frame, clip.centre) == (3, 2, 16537)
    window = cut_center_clip(lambda lo, hi: audio[lo:hi], clip)
    assert not window[:16230].any() and window[65534] == 0
    np.testing.assert_array_equal(window[16230:65534], audio[np.arange(49304) % 30000])


# --------------------------------------------------- a chunked video, written by hand
def chunk_colour(chunk: int, frame: int) -> tuple[int, int, int]:
    return (40 + 60 * chunk, 4 * frame, 200)


def write_chunked_video(out: Path, video_id: str, class_name: str, lengths: list[int]) -> Path:
    """One MUSIC test video cut into chunks of `lengths` samples, as `prepare music` writes
    them (one sample per chunk); audio sample j of the video holds j + 1, and frame i of
    chunk k is solid `chunk_colour(k, i)`."""
    out.mkdir(parents=True, exist_ok=True)
    whole = np.arange(1, sum(lengths) + 1, dtype=np.float32)
    first = 0
    with wds.TarWriter(str(out / f"music-test-{video_id}-000.tar")) as sink:
        for k, length in enumerate(lengths):
            frames = math.ceil(length * 8 / RATE)
            sample = {"__key__": f"{class_name}__{video_id}__000_{k:03d}",
                      "audio.npy": whole[first:first + length],
                      "json": {"class": class_name, "class_index": 0, "dataset": "music",
                               "video_id": video_id, "start_s": first / RATE,
                               "sample_rate": RATE, "fps": 8, "num_frames": frames,
                               "num_samples": length}}
            for i in range(frames):
                image = np.empty((24, 32, 3), np.uint8)
                image[:] = chunk_colour(k, i)
                sample[f"{i:03d}.jpg"] = image
            sink.write(sample)
            first += length
    return out


def test_the_centre_clip_is_read_across_chunks(tmp_path):
    # 140001 samples: ceil(12.698...) = 13 frames, centre frame 7 at 6.5 s, sample
    # int(71662.5) = 71662; the clip [38895, 104429) crosses all three chunks.
    shards = write_chunked_video(tmp_path / "test", "abcdefghijk", "flute", [50000, 50000, 40001])
    chunks = index_music_shards(sorted(shards.glob("*.tar")))
    video = Video(list(reversed(chunks)))  # chunk order in the shards does not matter
    clip = center_clip(video.samples)
    assert (video.samples, clip.centre, clip.start) == (140001, 71662, 38895)
    data = read_clip(video, clip, SMALL_FRAMES)
    np.testing.assert_array_equal(data.audio[:65534], np.arange(38896, 104430))
    assert data.audio[65534] == 0
    # SoP frames, 24 apart at 8 frames/s around 6.5 s: 3.5 s is frame round(3.5 * 8) = 28
    # of chunk 0; 6.5 s frame round((6.5 - 50000 / 11025) * 8) = 16 of chunk 1; 9.5 s
    # frame round((9.5 - 100000 / 11025) * 8) = 3 of chunk 2.
    assert data.frames is not None and data.frames.shape == (3, 3, 16, 16)
    for t, (chunk, frame) in enumerate([(0, 28), (1, 16), (2, 3)]):
        colour = data.frames[:, t].reshape(3, -1).astype(np.float32).mean(1)
        assert np.abs(colour - chunk_colour(chunk, frame)).max() < 4, t


def test_a_missing_chunk_is_an_error_naming_the_video(tmp_path):
    shards = write_chunked_video(tmp_path / "test", "abcdefghijk", "flute", [50000, 50000, 40001])
    chunks = index_music_shards(sorted(shards.glob("*.tar")))
    with pytest.raises(ValueError, match="video abcdefghijk: its chunks do not cover it"):
        Video([chunks[0], chunks[2]])


# --------------------------------------------------------------- the published format
LIST = """\
/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav

/cello/-Gdh8N_KpLY.wav,/flute/kbTy_5o6AB4.wav
/violin/K1LRscO7TSw.wav, /flute/kbTy_5o6AB4.wav
"""


def test_a_published_list_is_read_line_by_line(tmp_path):
    path = tmp_path / "testsepmusic.csv"
    path.write_text(LIST)
    pairs = read_pair_csv(path)
    assert [p.line for p in pairs.pairs] == [1, 3, 4]  # a blank line keeps the numbering
    assert [(s.class_name, s.video_id) for s in pairs.pairs[1].sources] == [
        ("cello", "-Gdh8N_KpLY"), ("flute", "kbTy_5o6AB4")]
    assert pairs.distinct_pairs == 2  # lines 1 and 3 name one pair in both orders
    assert pairs.videos == {"kbTy_5o6AB4": "flute", "-Gdh8N_KpLY": "cello",
                            "K1LRscO7TSw": "violin"}
    assert read_video_ids(path) == pairs.videos
    plain = tmp_path / "ids.txt"
    plain.write_text("kbTy_5o6AB4\n\n-Gdh8N_KpLY\n")
    assert read_video_ids(plain) == {"kbTy_5o6AB4": None, "-Gdh8N_KpLY": None}


@pytest.mark.parametrize("line, message", [
    ("/flute/../../x.wav, /cello/-Gdh8N_KpLY.wav", "'/flute/../../x.wav' is not /<class>/"),
    ("/home/user/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav", "'/home/user/kbTy_5o6AB4.wav' is"),
    ("flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav", "'flute/kbTy_5o6AB4.wav' is not"),
    ("/kazoo/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav", "unknown class 'kazoo'"),
    ("/flute/kbTy;5o6AB4.wav, /cello/-Gdh8N_KpLY.wav", "'kbTy;5o6AB4' .* is not a YouTube id"),
    ("/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLYxx.wav", "'-Gdh8N_KpLYxx' .* YouTube id"),
    ("/flute/kbTy_5o6AB4.wav", "expected two recordings .* got 1 field"),
    ("/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav, 3", "expected two .* got 3 field"),
    ("/flute/kbTy_5o6AB4.wav, /flute/kbTy_5o6AB4.wav", "mixes video kbTy_5o6AB4 with itself"),
    ("/cello/kbTy_5o6AB4.wav, /violin/K1LRscO7TSw.wav",
     "video kbTy_5o6AB4 is cello here but flute at .*:1$"),
])
def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "list.csv"
    path.write_text(f"/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav\n\n{line}\n")
    with pytest.raises(PairListError, match=f"^{path}:3: {message}"):
        read_pair_csv(path)
    with pytest.raises(PairListError, match=f"^{path}:3: "):
        read_video_ids(path)


def test_files_that_hold_no_list_are_refused(tmp_path):
    empty, binary = tmp_path / "empty.csv", tmp_path / "binary.csv"
    empty.write_text("\n \n")
    binary.write_bytes(b"\xff\xfe/flute")
    with pytest.raises(PairListError, match="holds no pairs"):
        read_pair_csv(empty)
    with pytest.raises(PairListError, match="not UTF-8"):
        read_pair_csv(binary)
    with pytest.raises(PairListError, match="cannot read"):
        read_pair_csv(tmp_path / "absent.csv")
    ids = tmp_path / "ids.txt"
    ids.write_text("kbTy_5o6AB4\nkbTy_5o6AB$\n")
    with pytest.raises(PairListError, match=rf"^{ids}:2: 'kbTy_5o6AB\$' is neither"):
        read_video_ids(ids)
    ids.write_text("kbTy_5o6AB4\n../../etc\n")
    with pytest.raises(PairListError, match=f"^{ids}:2: expected two recordings"):
        read_video_ids(ids)


def test_a_listed_class_that_the_shards_contradict_names_the_line(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(LIST)
    shard = Path("x.tar")
    videos = {i: Video([Chunk(shard, i, {}, i, name, 0, 77175, 56)])
              for i, name in [("kbTy_5o6AB4", "flute"), ("-Gdh8N_KpLY", "violin")]}
    with pytest.raises(PairListError, match=f"{path}:1: video -Gdh8N_KpLY is cello in the "
                                            "list but violin in the test shards"):
        match_list(read_pair_csv(path), videos)
    videos["-Gdh8N_KpLY"] = Video([Chunk(shard, "c", {}, "-Gdh8N_KpLY", "cello", 0, 9, 1)])
    present, absent, missing = match_list(read_pair_csv(path), videos)
    assert [p.line for p in present] == [1, 3] and [p.line for p in absent] == [4]
    assert missing == ["K1LRscO7TSw"]


def test_a_list_of_videos_that_are_all_missing_is_an_error(tmp_path):
    write_chunked_video(tmp_path / "test", "abcdefghijk", "flute", [70000])
    path = tmp_path / "list.csv"
    path.write_text(LIST)
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=f"{path}: no line can be evaluated: 3 of its 3 "
                                         "videos are not in the test shards"):
        evaluate_music_center(create_model("avsep_unittest"), tmp_path, path,
                              progress=False, device="cpu")


# ------------------------------------------------------------------ the MUSIC stand-in
@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    from data_prep.synth import RunOptions, generate_music, music_settings

    root = tmp_path_factory.mktemp("music_raw")
    generate_music(root, music_settings("tiny"), RunOptions(seed=0, jobs=2, progress=False))
    return root


def _split_of(video: Path) -> str:
    return split3_of(video.stem, VAL, TEST)


@pytest.fixture(scope="module")
def forced(raw, tmp_path_factory) -> dict:
    """The stand-in prepared by hash, then again with --test-ids naming every hashed test
    video, one train and one val video (a published list given after a first preparation)."""
    from data_prep.prepare.music import prepare_music
    from data_prep.prepare.settings import PrepareSettings

    out = tmp_path_factory.mktemp("music_shards")
    assert prepare_music(raw, out, PrepareSettings(val_fraction=VAL), test_fraction=TEST,
                         jobs=2) == 0
    solos = sorted(raw.glob("solo/*/*.mp4"))
    tested = [v for v in solos if _split_of(v) == "test"]
    moved = [next(v for v in solos if _split_of(v) == split) for split in ("train", "val")]
    ids = tmp_path_factory.mktemp("ids") / "ids.txt"
    ids.write_text("".join(f"{v.stem}\n" for v in tested + moved))
    assert main(["prepare", "music", "--src", str(raw), "--out", str(out), "--val-fraction",
                 str(VAL), "--test-fraction", str(TEST), "--test-ids", str(ids),
                 "--jobs", "0"]) == 0
    return {"shards": out, "test": tested + moved, "moved": moved, "solos": solos}


def _videos_in(folder: Path) -> set[str]:
    return {c.video_id for c in index_music_shards(sorted(folder.glob("*.tar")))}


def test_test_ids_go_to_test_and_never_to_train_or_val(forced):
    shards = forced["shards"]
    test, train, val = (_videos_in(shards / s) for s in ("test", "train", "val"))
    listed = {v.stem for v in forced["test"]}
    assert test == listed
    assert not listed & (train | val)
    # every other video keeps its hashed split, so val is still a split of its own
    others = [v for v in forced["solos"] if v.stem not in listed]
    assert train == {v.stem for v in others if _split_of(v) == "train"}
    assert val == {v.stem for v in others if _split_of(v) == "val"} != set()
    notes = [json.loads(line) for line in (shards / "report.jsonl").read_text().splitlines()]
    assert any("go to test (2 of them would be in train or val by hash)" in json.dumps(n)
               for n in notes)


def test_bad_test_ids_file_is_a_one_line_error(raw, tmp_path, capsys):
    ids = tmp_path / "ids.csv"
    ids.write_text("/flute/abcdefghijk.wav, /cello/../../../etc.wav\n")
    code = main(["prepare", "music", "--src", str(raw), "--out", str(tmp_path / "out"),
                 "--test-ids", str(ids)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {ids}:1: '/cello/../../../etc.wav' is not")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "model.pt", create_model("avsep_unittest"), step=1,
        config={"data": {"image_size": 16, "num_frames": 3, "frame_stride": 24}})


@pytest.fixture(scope="module")
def published(forced, tmp_path_factory) -> tuple[Path, int]:
    """A list in the published format over the test split, and its number of pairs: every
    pair of test videos of different classes, then the first pair again in the other order
    and a line naming a video that the user's copy lacks."""
    videos = [(v.parent.name, v.stem) for v in forced["test"]]
    lines = [f"/{a}/{i}.wav, /{b}/{j}.wav" for n, (a, i) in enumerate(videos)
             for b, j in videos[n + 1:] if a != b]
    pairs = len(lines)
    (a, i), (b, j) = videos[0], videos[1]
    lines += [f"/{b}/{j}.wav, /{a}/{i}.wav", f"/tuba/zzzzzzzzzzz.wav, /{a}/{i}.wav"]
    path = tmp_path_factory.mktemp("list") / "testsepmusic.csv"
    path.write_text("\n".join(lines))  # no final newline, as the published file
    return path, pairs


def _evaluate(shards: Path, checkpoint: Path, out: Path, capsys, *extra: str) -> str:
    code = main(["evaluate", "--dataset", "music", "--data", str(shards), "--checkpoint",
                 str(checkpoint), "--out", str(out), "--workers", "0", "--no-progress",
                 "--device", "cpu", *extra])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return printed.out


def test_published_list_on_the_stand_in_beside_the_multi_clip_protocol(
        forced, checkpoint, published, tmp_path, capsys):
    (published, pairs), shards = published, forced["shards"]
    assert pairs >= 3  # the stand-in's test videos are of different classes
    lines = pairs + 2
    printed = _evaluate(shards, checkpoint, tmp_path / "both", capsys, "--pairs-csv",
                        str(published), "--protocol", "both", "--mixtures", "3")
    center = json.loads((tmp_path / "both" / "center-clip" / "results.json").read_text())
    multi = json.loads((tmp_path / "both" / "multi-clip" / "results.json").read_text())
    listed = center["info"]["pair_list"]
    assert center["protocol"] == "music-center-clip" and multi["protocol"] == "music-solo-pairs"
    assert (listed["lines"], listed["lines_evaluated"], listed["lines_skipped_missing_video"],
            listed["missing_videos"]) == (lines, lines - 1, 1, ["zzzzzzzzzzz"])
    assert center["counts"]["segments"] == lines - 1 and multi["counts"]["segments"] == 3
    # every stand-in solo is 7 s long: 77175 samples, clip from 5820 (see the test above)
    assert {i: (c["video_samples"], c["centre_sample"], c["first_sample"])
            for i, c in listed["clips"].items()} == {
        v.stem: (77175, 38587, 5820) for v in forced["test"]}
    irm, mix = (center["overall"]["scores"][m]["sdr"]["mean"] for m in ("irm", "mixture"))
    assert irm > mix + 10  # the clips hold the listed videos' music
    # the line in the other order is a pair already listed, but a mixture of its own
    coverage = f"{lines} lines ({pairs + 1} distinct pairs), {pairs + 1} evaluated; 1 skipped"
    assert coverage in printed
    assert coverage in (tmp_path / "both" / "center-clip" / "results.md").read_text()
    assert "multi-clip" in printed and "centre clip" in printed
    comparison = (tmp_path / "both" / "comparison.md").read_text()
    assert "| ideal ratio mask (oracle) | SDR |" in comparison

    # the published protocol alone (the default with --pairs-csv): the same figures
    _evaluate(shards, checkpoint, tmp_path / "again", capsys, "--pairs-csv", str(published))
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    for key in ("overall", "per_instrument", "per_piece", "counts"):
        assert again[key] == center[key]
    assert again["info"]["pair_list"] == listed
    assert ((tmp_path / "again" / "segments.csv").read_bytes()
            == (tmp_path / "both" / "center-clip" / "segments.csv").read_bytes())


class RecordingSeparator(torch.nn.Module):
    """Passes through to a model and keeps what it was given."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner
        self.condition_kind, self.sample_rate = inner.condition_kind, inner.sample_rate
        self.stft = inner.stft
        self.mixes: list[torch.Tensor] = []

    def separate(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        self.mixes.append(mix.clone())
        return self.inner.separate(mix, condition)


def _shard_audio(shards: Path, video_id: str) -> np.ndarray:
    for shard in sorted((shards / "test").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".audio.npy") and f"__{video_id}__" in member.name:
                    return np.load(io.BytesIO(tar.extractfile(member).read()))
    raise AssertionError(video_id)


def test_the_model_hears_the_centre_clips_mixed(forced, tmp_path):
    (a, b) = forced["test"][:2]
    path = tmp_path / "one.csv"
    path.write_text(f"/{a.parent.name}/{a.stem}.wav, /{b.parent.name}/{b.stem}.wav\n")
    torch.manual_seed(0)
    model = RecordingSeparator(create_model("avsep_unittest"))
    evaluate_music_center(model, forced["shards"], path, clip_spec=SMALL_FRAMES,
                          progress=False, workers=0, device="cpu")
    expected = sum(np.clip(_shard_audio(forced["shards"], v.stem)[5820:71354], -1, 1) / 2
                   for v in (a, b))
    (mix,) = model.mixes
    np.testing.assert_allclose(mix[0, :65534].numpy(), expected, rtol=0, atol=1e-7)
    assert mix[0, 65534] == 0


@pytest.mark.parametrize("extra, message", [
    (["--protocol", "center-clip"], "--protocol center-clip scores a published list"),
    (["--protocol", "both"], "--protocol both scores a published list"),
    (["--protocol", "multi-clip", "--pairs-csv", "x.csv"], "--pairs-csv is scored by"),
    (["--pairs-csv", "x.csv", "--pairs", "p.json"], "--pairs is the multi-clip"),
    (["--pairs-csv", "x.csv", "--center-fps", "0"], "--center-fps must be at least 1"),
])
def test_protocol_flags_that_do_not_fit_together(tmp_path, capsys, extra, message):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"not read: the flags are refused first")
    (tmp_path / "p.json").write_text("{}")
    (tmp_path / "x.csv").write_text("/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav\n")
    args = [a.replace("x.csv", str(tmp_path / "x.csv")).replace("p.json", str(tmp_path / "p.json"))
            for a in extra]
    code = main(["evaluate", "--dataset", "music", "--data", str(tmp_path), "--checkpoint",
                 str(checkpoint), "--out", str(tmp_path / "out"), *args])
    assert code == 2 and capsys.readouterr().err.startswith(f"error: {message}")


def test_a_bad_list_fails_before_the_model_is_loaded(forced, tmp_path, capsys):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"never loaded")
    path = tmp_path / "list.csv"
    path.write_text("/flute/kbTy_5o6AB4.wav, /cello/-Gdh8N_KpLY.wav\n/flute/x.wav, /a/b.wav\n")
    code = main(["evaluate", "--dataset", "music", "--data", str(forced["shards"]),
                 "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out"),
                 "--pairs-csv", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: {path}:2: 'x' in '/flute/x.wav' is not a YouTube id " \
                                "(11 characters of A-Z a-z 0-9 _ -)\n"
    assert not (tmp_path / "out").exists()

