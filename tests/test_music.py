"""MUSIC end to end on the tiny stand-in: download from a local server, prepare, train,
evaluate on seeded solo-pair mixtures, localize a duet; plus the pieces by hand."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from avsep.classes import MUSIC11_CLASSES, MUSIC21_CLASSES, class_index
from avsep.cli import main as avsep_main
from avsep.evaluation.music import Chunk, load_pairs, locate, make_pairs
from data_prep.prepare.split import split3_of

TRAIN_SETTINGS = [
    "model.kwargs={num_channels: 4, ngf: 8, depth: 4, vision_arch: tiny, pretrained: false}",
    "data.num_workers=0", "data.image_size=32", "data.resize_short_side=36",
    "data.val_mixtures=1", "optim.optimizer=adam", "optim.lr_frame=0.001",
    "optim.weight_decay=0.0", "train.batch_size=2", "train.epochs=1",
    "train.steps_per_epoch=3", "train.checkpoint_every=3", "train.wandb=disabled",
]


# ----------------------------------------------------------------------------- by hand
def test_music_class_lists():
    assert len(MUSIC21_CLASSES) == 21 and len(MUSIC11_CLASSES) == 11
    assert class_index("accordion", MUSIC21_CLASSES) == 0
    assert class_index("xylophone", MUSIC21_CLASSES) == 20
    assert class_index("Violin") == 12  # Solos indices are unchanged
    with pytest.raises(ValueError, match="unknown instrument 'Violin'"):
        class_index("Violin", MUSIC21_CLASSES)


def test_split_is_a_fixed_function_of_the_video_id():
    ids = [f"video{n:06d}" for n in range(2000)]
    splits = [split3_of(i, 0.1, 0.1) for i in ids]
    assert splits == [split3_of(i, 0.1, 0.1) for i in ids]
    assert 150 < splits.count("test") < 250 and 150 < splits.count("val") < 250
    # growing the test fraction only moves videos into test
    assert all(b == "test" for a, b in zip(splits, (split3_of(i, 0.1, 0.2) for i in ids))
               if a == "test")


def _chunk(video: str, name: str, first: int, length: int) -> Chunk:
    return Chunk(Path("x.tar"), f"{name}__{video}", {}, video, name, first, length, 1)


def test_pairs_are_deterministic_of_different_classes_and_inside_a_chunk():
    chunks = [_chunk("aaaaaaaaaaa", "violin", 0, 100_000),
              _chunk("aaaaaaaaaaa", "violin", 100_000, 70_000),
              _chunk("bbbbbbbbbbb", "flute", 0, 65535),
              _chunk("ccccccccccc", "cello", 0, 80_000),
              _chunk("ddddddddddd", "tuba", 0, 60_000)]  # shorter than a window: never drawn
    pairs = make_pairs(chunks, 40, seed=3)
    assert pairs == make_pairs(list(reversed(chunks)), 40, seed=3)
    assert pairs != make_pairs(chunks, 40, seed=4)
    for pair in pairs["pairs"]:
        assert pair["a"]["class"] != pair["b"]["class"]
        assert "tuba" not in (pair["a"]["class"], pair["b"]["class"])
        for side in ("a", "b"):
            holder = [c for c in chunks if c.video_id == pair[side]["video_id"]
                      and c.holds(pair[side]["offset"], 65535)]
            assert holder
        if pair["a"]["video_id"] == "bbbbbbbbbbb":
            assert pair["a"]["offset"] == 0  # a chunk of exactly one window
    assert len(locate(pairs, chunks)) == 40
    moved = json.loads(json.dumps(pairs))
    moved["pairs"][0]["a"]["video_id"] = "zzzzzzzzzzz"
    with pytest.raises(ValueError, match="pair 0: video zzzzzzzzzzz is not in the test shards"):
        locate(moved, chunks)
    with pytest.raises(ValueError, match="of 1 class"):
        make_pairs(chunks[:2], 4)


def test_a_pair_list_of_another_format_is_refused(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps({"pairs": []}))
    with pytest.raises(ValueError, match="not a MUSIC pair list"):
        load_pairs(path)


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def music_standin(tmp_path_factory) -> Path:
    from data_prep.synth import RunOptions, generate_music, music_settings

    root = tmp_path_factory.mktemp("music_standin")
    generate_music(root, music_settings("tiny"), RunOptions(seed=0, jobs=2, progress=False))
    return root


@pytest.fixture
def id_server(music_standin, tmp_path):
    """Serves every stand-in video as /<id>.mp4 on 127.0.0.1; yields the URL template."""
    site = tmp_path / "site"
    site.mkdir()
    for video in music_standin.glob("*/*/*.mp4"):
        shutil.copyfile(video, site / video.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/{{id}}.mp4"
    httpd.shutdown()
    httpd.server_close()


def test_music_download_prepare_train_evaluate_localize(music_standin, id_server, tmp_path,
                                                        capsys):
    solo_ids = music_standin / "MUSIC21_solo_videos.json"
    duet_ids = music_standin / "MUSIC_duet_videos.json"
    raw, shards = tmp_path / "raw", tmp_path / "shards"
    assert avsep_main(["download", "music", "--out", str(raw), "--ids", str(solo_ids),
                       str(duet_ids), "--url-template", id_server]) == 0
    served = sorted(p.relative_to(music_standin) for p in music_standin.glob("*/*/*.mp4"))
    assert sorted(p.relative_to(raw) for p in raw.glob("*/*/*.mp4")) == served
    assert len(served) == 6 * 2 + 2

    assert avsep_main(["prepare", "music", "--src", str(raw), "--out", str(shards),
                       "--val-fraction", "0.25", "--test-fraction", "0.3", "--jobs", "2"]) == 0
    for video in raw.glob("solo/*/*.mp4"):  # every solo where the documented split puts it
        split = split3_of(video.stem, 0.25, 0.3)
        assert len(list((shards / split).glob("*.tar"))) >= 1
        header = _headers(shards / split, video.stem)
        assert header["class_index"] == MUSIC21_CLASSES.index(video.parent.name)
    assert len(list((shards / "duet").glob("*.tar"))) == 2
    test_videos = {v.stem for v in raw.glob("solo/*/*.mp4")
                   if split3_of(v.stem, 0.25, 0.3) == "test"}
    assert len(test_videos) >= 2

    run = tmp_path / "run"
    overrides = [x for item in TRAIN_SETTINGS for x in ("--set", item)]
    assert avsep_main(["train", "--dataset", "music", "--data", str(shards), "--config", "sop",
                       "--run-dir", str(run), *overrides]) == 0
    checkpoint = run / "checkpoint.pt"

    def evaluate(out: Path, *extra: str) -> dict:
        code = avsep_main(["evaluate", "--dataset", "music", "--data", str(shards),
                           "--checkpoint", str(checkpoint), "--out", str(out), "--workers", "0",
                           "--no-progress", *extra])
        assert code == 0, capsys.readouterr().err
        return json.loads((out / "results.json").read_text())

    first = evaluate(tmp_path / "ev1", "--mixtures", "4", "--seed", "1")
    again = evaluate(tmp_path / "ev2", "--mixtures", "4", "--seed", "1")
    reused = evaluate(tmp_path / "ev3", "--pairs", str(tmp_path / "ev1" / "pairs.json"))
    pairs_bytes = (tmp_path / "ev1" / "pairs.json").read_bytes()
    assert (tmp_path / "ev2" / "pairs.json").read_bytes() == pairs_bytes
    assert first["info"]["pairs"]["sha1"] == hashlib.sha1(pairs_bytes).hexdigest()
    assert reused["info"]["pairs"]["sha1"] == first["info"]["pairs"]["sha1"]
    for other in (again, reused):
        assert other["overall"] == first["overall"]
        assert other["per_instrument"] == first["per_instrument"]
    assert first["protocol"] == "music-solo-pairs" and first["counts"]["segments"] == 4
    pairs = json.loads(pairs_bytes)["pairs"]
    assert {p[s]["video_id"] for p in pairs for s in "ab"} <= test_videos
    assert set(first["per_instrument"]) == {p[s]["class"] for p in pairs for s in "ab"}
    ibm = first["overall"]["scores"]["ibm"]["sdr"]["mean"]
    assert ibm > first["overall"]["scores"]["mixture"]["sdr"]["mean"] + 10
    assert "Per class pair" in (tmp_path / "ev1" / "results.md").read_text()
    other_seed = evaluate(tmp_path / "ev4", "--mixtures", "4", "--seed", "2")
    assert other_seed["info"]["pairs"]["sha1"] != first["info"]["pairs"]["sha1"]

    duet = next(raw.glob("duet/*/*.mp4"))
    out = tmp_path / "heat"
    assert avsep_main(["localize", str(duet), "--checkpoint", str(checkpoint), "--out",
                       str(out), "--fps", "2", "--quiet"]) == 0
    assert (out / "overlay.mp4").is_file() and (out / "heatmaps.npz").is_file()


def _headers(folder: Path, video_id: str) -> dict:
    import tarfile

    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json") and f"__{video_id}__" in member.name:
                    return json.loads(tar.extractfile(member).read())
    raise AssertionError(f"{video_id} not in {folder}")
