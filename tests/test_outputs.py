"""Output folders written whole or not at all, never over an input (avsep.outputs)."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
from hostile_corpus import write_video

import avsep
from avsep.cli import main
from avsep.outputs import STAGING_PREFIX, OutputError, check_outputs, staged_outputs

PATTERNS = ("overlay.mp4", "keyframes", "region_*.wav")


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_run_commits_its_files_and_replaces_an_earlier_runs(tmp_path):
    out = tmp_path / "out"
    with staged_outputs(out, PATTERNS, []) as staging:
        (staging.folder / "keyframes").mkdir()
        for i in range(3):
            (staging.folder / "keyframes" / f"frame_{i}.png").write_text(str(i))
        (staging.folder / "region_1_vn.wav").write_text("a")
        assert not (out / "keyframes").exists()  # nothing in place before the end
        assert staging.final(staging.folder / "keyframes" / "x.png") == out / "keyframes" / "x.png"
    (out / "notes.txt").write_text("mine")  # not an output: left alone
    with pytest.raises(OutputError, match=r"earlier run \(keyframes/ \(3 files\), "
                                          r"region_1_vn.wav\); pass --overwrite"):
        check_outputs(out, PATTERNS, [], overwrite=False)
    with staged_outputs(out, PATTERNS, [], overwrite=True) as staging:
        (staging.folder / "keyframes").mkdir()
        (staging.folder / "keyframes" / "frame_0.png").write_text("new")
        (staging.folder / "region_1.wav").write_text("b")
    # The earlier run's key frames and its differently named WAV are gone.
    assert _tree(out) == {"keyframes/frame_0.png": b"new", "notes.txt": b"mine",
                          "region_1.wav": b"b"}


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    (out / "keyframes").mkdir(parents=True)
    (out / "keyframes" / "old.png").write_text("old")
    before = _tree(out)
    with pytest.raises(RuntimeError, match="boom"), \
            staged_outputs(out, PATTERNS, [], overwrite=True) as staging:
        (staging.folder / "overlay.mp4").write_text("partial")
        raise RuntimeError("boom")
    assert _tree(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)]
    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError), staged_outputs(fresh, PATTERNS, []):
        raise RuntimeError("boom")
    assert not fresh.exists()  # a folder the failed run made is removed again


def test_inputs_are_never_outputs_and_out_must_be_a_folder(tmp_path):
    out = tmp_path / "out"
    (out / "keyframes").mkdir(parents=True)
    video = out / "overlay.mp4"
    video.write_text("input")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=r"the input .*overlay.mp4 is one of this "
                                              r"command's outputs"):
            check_outputs(out, PATTERNS, [video], overwrite=overwrite)
        with pytest.raises(OutputError, match="is one of this command's outputs"):
            check_outputs(out, PATTERNS, [out / "keyframes" / "x.png"], overwrite=overwrite)
    with pytest.raises(OutputError, match="is the input"):
        check_outputs(out, PATTERNS, [out], overwrite=True)
    with pytest.raises(OutputError, match="is a file; give a folder"):
        check_outputs(video, PATTERNS, [], overwrite=True)
    check_outputs(tmp_path / "other", PATTERNS, [video], overwrite=False)  # fine elsewhere


def test_stale_staging_folders_of_a_killed_run_are_removed(tmp_path):
    out = tmp_path / "out"
    stale = out / f"{STAGING_PREFIX}killed"
    stale.mkdir(parents=True)
    (stale / "overlay.mp4").write_text("half")
    with staged_outputs(out, PATTERNS, []) as staging:
        (staging.folder / "overlay.mp4").write_text("whole")
    assert sorted(os.listdir(out)) == ["overlay.mp4"]


def test_localize_refuses_to_write_over_its_own_input(tmp_path, capsys):
    """The issue's repro: `avsep localize OUT/overlay.mp4 --out OUT` truncated its input."""
    torch.manual_seed(0)
    checkpoint = avsep.save_checkpoint(tmp_path / "tiny.pt", avsep.create_model("avsep_unittest"),
                                       config={"data": {"image_size": 64}})
    out = tmp_path / "out"
    out.mkdir()
    video = write_video(out / "overlay.mp4", 2.0)
    digest = hashlib.sha256(video.read_bytes()).hexdigest()
    for extra in ([], ["--overwrite"]):
        code = main(["localize", str(video), "--checkpoint", str(checkpoint), "--out", str(out),
                     "--fps", "2", "--quiet", *extra])
        assert code == 2
        assert "is one of this command's outputs" in capsys.readouterr().err
    assert hashlib.sha256(video.read_bytes()).hexdigest() == digest
    assert sorted(os.listdir(out)) == ["overlay.mp4"]
    # separate: an --out that names an existing file fails before any work.
    assert main(["separate", str(video), "--checkpoint", str(checkpoint), "--out",
                 str(checkpoint), "--quiet"]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
