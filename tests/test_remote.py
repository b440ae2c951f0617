"""Shards read over HTTP (a loopback server) give the same numbers as the local folder; a
shard the server refuses is retried, then skipped and counted in training and an error in
evaluation."""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import webdataset as wds

from avsep.checkpoint import save_checkpoint
from avsep.cli import main as cli_main
from avsep.data.solos import shard_urls, stream_seed
from avsep.sources import ReadPolicy, ShardReadError, dataset_shards, shard_samples
from avsep.training import train
from avsep.training.tracking import read_metrics
from tests.test_evaluate import small_sop
from tests.test_train import tiny_config, train_losses

FAST_RETRY = ["data.read_retry_delay_s=0", "data.read_attempts=2",
              "train.steps_per_epoch=4", "train.checkpoint_every=4"]


class FlakyHandler(SimpleHTTPRequestHandler):
    """Serves a folder; answers 500 for the paths in `failing` and counts every request."""

    failing: ClassVar[set[str]] = set()
    requests: ClassVar[Counter] = Counter()

    def do_GET(self) -> None:
        type(self).requests[self.path] += 1
        if self.path in self.failing:
            self.send_error(500, "stand-in server error")
            return
        super().do_GET()

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server(prepared_tiny):
    """http://127.0.0.1:PORT serving the parent of the prepared `solos` and `urmp` folders."""
    root = prepared_tiny["solos"].parent
    handler = functools.partial(FlakyHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def healthy_server():
    FlakyHandler.failing, FlakyHandler.requests = set(), Counter()
    yield


def path_of(url: str, base: str) -> str:
    return url[len(base):]


def test_index_lists_the_files_prepare_wrote(prepared_tiny):
    for name, splits in (("solos", ("train", "val")), ("urmp", ("test",))):
        root = prepared_tiny[name]
        index = json.loads((root / "shards.json").read_text())
        assert sorted(index["splits"]) == sorted(splits)
        listed = sorted(e["path"] for entries in index["splits"].values() for e in entries)
        on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.tar"))
        assert listed == on_disk
        summary = json.loads((root / "summary.json").read_text())
        for split, entries in index["splits"].items():
            assert sum(e["samples"] for e in entries) == summary["samples_per_split"][split]
            for entry in entries:
                assert entry["bytes"] == (root / entry["path"]).stat().st_size


def test_url_prefix_list_file_and_brace_pattern_name_the_same_shards(prepared_tiny, server,
                                                                     tmp_path):
    local = shard_urls(prepared_tiny["solos"], "train")
    names = [Path(u).relative_to(prepared_tiny["solos"]).as_posix() for u in local]
    remote = shard_urls(f"{server}/solos", "train")
    assert remote == [f"{server}/solos/{name}" for name in names]
    listing = tmp_path / "shards.txt"
    listing.write_text("# train and val, relative to this file\n" + "\n".join(
        str(Path("..", *p.parts[-3:])) for p in map(Path, local)) + "\n../x/val/other.tar\n")
    (tmp_path / "sub").mkdir()
    moved = tmp_path / "sub" / "shards.txt"
    listing.rename(moved)
    assert dataset_shards(moved, "train") == sorted(
        str(moved.parent / ".." / Path(*Path(u).parts[-3:])) for u in local)
    assert dataset_shards(moved, "val") == [str(moved.parent / ".." / "x/val/other.tar")]
    pattern = f"{server}/solos/train/{{{','.join(Path(n).name for n in names)}}}"
    assert dataset_shards(pattern, "train") == remote


def test_inspect_streams_a_url_like_the_local_folder(prepared_tiny, server, capsys):
    for name in ("solos", "urmp"):
        assert cli_main(["inspect", str(prepared_tiny[name]), "--json"]) == 0
        local = json.loads(capsys.readouterr().out)
        assert cli_main(["inspect", f"{server}/{name}", "--json"]) == 0
        remote = json.loads(capsys.readouterr().out)
        assert local.pop("root") != remote.pop("root")
        assert remote == local and remote["samples"] > 0


def test_training_from_a_url_equals_the_local_folder(prepared_tiny, server, tmp_path):
    local = tiny_config(prepared_tiny["solos"], *FAST_RETRY)
    remote = tiny_config(f"{server}/solos", *FAST_RETRY)
    train(local, tmp_path / "local", progress=False)
    train(remote, tmp_path / "remote", progress=False)
    assert train_losses(tmp_path / "local") == train_losses(tmp_path / "remote")
    assert len(train_losses(tmp_path / "local")) == 4
    vals = [[{k: v for k, v in r.items() if k != "time"} for r in read_metrics(p / "metrics.jsonl")
             if r["kind"] == "val"] for p in (tmp_path / "local", tmp_path / "remote")]
    assert vals[0] == vals[1] and vals[0]
    records = read_metrics(tmp_path / "remote" / "metrics.jsonl")
    assert all(r["shard_failures"] == 0 for r in records if r["kind"] == "train")


def test_a_refused_training_shard_is_retried_reported_counted_and_skipped(
        prepared_tiny, server, tmp_path, capsys):
    config = tiny_config(f"{server}/solos", *FAST_RETRY)
    urls = shard_urls(f"{server}/solos", "train")
    # The first shard the stream of the first segment draws (one process, worker 0).
    shards = wds.ResampledShards(urls, seed=stream_seed("shards", config.train.seed, 0) % (2**31),
                                 deterministic=True)
    first = next(iter(shards))["url"]
    FlakyHandler.failing = {path_of(first, server)}
    train(config, tmp_path / "run", progress=False)
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # training went on
    counted = sum(r["shard_failures"] for r in records)
    refused = FlakyHandler.requests[path_of(first, server)]
    assert counted >= 1 and refused == 2 * counted  # two attempts per counted failure
    err = capsys.readouterr().err
    assert err.count(f"shard skipped after failed reads: {first}") == 1  # reported once


def test_evaluation_from_a_url_equals_the_local_folder_and_a_refused_shard_is_an_error(
        prepared_tiny, server, tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "model.pt", small_sop(), step=1,
                                 config={"data": {"image_size": 16, "num_frames": 2,
                                                  "frame_stride": 8}})
    results = {}
    for name, data in (("local", str(prepared_tiny["urmp"])), ("remote", f"{server}/urmp")):
        code = cli_main(["evaluate", "--data", data, "--checkpoint", str(checkpoint),
                         "--out", str(tmp_path / name), "--device", "cpu", "--no-progress",
                         "--batch-size", "2", "--workers", "0"])
        assert code == 0, capsys.readouterr().err
        results[name] = json.loads((tmp_path / name / "results.json").read_text())
    for result in results.values():
        result.pop("timing", None)
        result["info"].pop("shards")
    assert results["remote"] == results["local"]
    assert results["local"]["counts"]["scored_pairs"] > 0
    assert (tmp_path / "remote" / "segments.csv").read_text() == \
        (tmp_path / "local" / "segments.csv").read_text()

    broken = dataset_shards(f"{server}/urmp", None)[-1]
    FlakyHandler.failing, FlakyHandler.requests = {path_of(broken, server)}, Counter()
    capsys.readouterr()
    code = cli_main(["evaluate", "--data", f"{server}/urmp", "--checkpoint", str(checkpoint),
                     "--out", str(tmp_path / "broken"), "--device", "cpu", "--no-progress",
                     "--read-attempts", "2", "--read-retry-delay", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"error: {broken}: unreadable after 2 attempts" in err
    assert FlakyHandler.requests[path_of(broken, server)] == 2
    assert not (tmp_path / "broken" / "results.json").exists()


def test_a_shard_cut_off_mid_stream_is_read_again_without_repeating_samples(tmp_path):
    """A stream that breaks after some samples: the retry gives the rest, each sample once."""
    shard = tmp_path / "whole.tar"
    with wds.TarWriter(str(shard)) as sink:
        for i in range(8):
            sink.write({"__key__": f"s{i}", "json": {"i": i}, "bin": bytes(4096)})
    whole = [s["__key__"] for s in shard_samples(str(shard), ReadPolicy(1, 0))]
    assert whole == [f"s{i}" for i in range(8)]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    marker = tmp_path / "failed-once"
    # The first read gets half the file; later reads get all of it.
    command = (f"pipe:if [ -e {marker} ]; then cat {shard}; "
               f"else touch {marker}; cat {cut}; fi")
    keys = [s["__key__"] for s in shard_samples(command, ReadPolicy(2, 0))]
    assert marker.exists() and keys == whole
    with pytest.raises(ShardReadError, match="unreadable after 1 attempts"):
        list(shard_samples(f"pipe:cat {cut}", ReadPolicy(1, 0)))
