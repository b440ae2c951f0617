"""Hostile and broken inputs through every command that takes a file (tests/hostile_corpus.py):
no command runs from data, no input changes, no traceback, no partial output."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hostile_corpus import MARKER_NAME, Outcome, build_corpus, format_table, run_matrix
from test_train import TINY_OVERRIDES

from avsep.cli import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, prepared_tiny):
    root = tmp_path_factory.mktemp("hostile") / "corpus"
    urmp_shard = min(Path(prepared_tiny["urmp"]).glob("*.tar"))
    cases = build_corpus(root, urmp_shard=urmp_shard)
    return root, cases


@pytest.fixture(scope="module")
def outcomes(corpus, prepared_tiny) -> list[Outcome]:
    root, cases = corpus
    context = {"urmp": str(prepared_tiny["urmp"]),
               "checkpoint": str(root / "checkpoints" / "good.pt"),
               "solos": str(prepared_tiny["solos"]),
               "train_overrides": [f"--set={o}" for o in TINY_OVERRIDES]}
    results = run_matrix(root, cases, context)
    print("\n" + format_table(results))
    return results


def _listing(bad: list[Outcome]) -> str:
    return "\n".join(f"{o.command} {o.case}: exit {o.code}: {o.message}" for o in bad)


def test_no_command_runs_from_data(corpus, outcomes):
    root, _ = corpus
    assert outcomes
    assert not (root / MARKER_NAME).exists(), "a command ran a shell command read from data"


def test_every_case_gives_a_clear_error_or_the_right_answer(corpus, outcomes):
    _, cases = corpus
    tracebacks = [o for o in outcomes if o.traceback or o.internal]
    assert not tracebacks, _listing(tracebacks)
    wrong = [o for o in outcomes if o.code != 2 and not (o.code == 0 and cases[o.case].may_succeed)]
    assert not wrong, _listing(wrong)
    # A resumed run reads the case as RUN/checkpoint.pt, and must say so.
    unclear = [o for o in outcomes if o.code == 2 and not (
        o.message.startswith("error: ") and ".cc:" not in o.message and (
            "checkpoint.pt" if o.command == "train-resume" else cases[o.case].names
        ) in o.message)]
    assert not unclear, _listing(unclear)


def test_no_input_changes_and_no_partial_output(outcomes):
    changed = [o for o in outcomes if o.changed_inputs]
    assert not changed, "\n".join(f"{o.command} {o.case}: {o.changed_inputs}" for o in changed)
    partial = [o for o in outcomes if o.partial_outputs]
    assert not partial, "\n".join(f"{o.command} {o.case}: {o.partial_outputs}" for o in partial)


def test_every_command_that_takes_a_file_is_covered(outcomes):
    commands = {o.command for o in outcomes}
    assert commands >= {"separate", "localize", "inspect", "evaluate", "train", "train-resume",
                        "import-sop", "download"}


def test_a_shard_cut_at_a_member_boundary_is_not_evaluated_as_complete(corpus, outcomes):
    cut = [o for o in outcomes if o.case == "shard/cut_at_member" and o.command == "evaluate"]
    assert cut and cut[0].code == 2 and "truncated" in cut[0].message, _listing(cut)


def test_prepare_reports_every_broken_video_and_changes_none(corpus, tmp_path, capsys):
    _, cases = corpus
    raw = tmp_path / "raw" / "Violin"
    raw.mkdir(parents=True)
    names = {}
    for number, case in enumerate(c for c in cases.values() if c.kind == "video"):
        video_id = f"case{number:07d}"  # 11 characters, as a YouTube id
        shutil.copyfile(case.path, raw / f"{video_id}.mp4")
        names[f"Violin/{video_id}.mp4"] = case
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    out = tmp_path / "out"
    code = main(["prepare", "solos", "--src", str(tmp_path / "raw"), "--out", str(out),
                 "--jobs", "0"])
    err = capsys.readouterr().err
    assert code in (0, 2)
    assert "Traceback" not in err and "internal error" not in err
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()} == before
    unusable = {entry["source"] for entry in map(json.loads,
                                                 (out / "report.jsonl").read_text().splitlines())
                if entry["kind"] == "bad_input"}
    for source, case in names.items():
        assert source in unusable or case.may_succeed, f"{case.name}: prepared as if fine"
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_the_issue_repro_index_injection_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    (tmp_path / "r" / "train").mkdir(parents=True)
    (tmp_path / "r" / "shards.json").write_text(json.dumps({"splits": {"train": [
        {"path": f"train/x.tar; echo RAN > {marker} #", "samples": 1, "bytes": 10}]}}))
    assert main(["inspect", f"pipe:cat {tmp_path / 'r'}"]) == 2
    assert "is not a plain relative shard path" in capsys.readouterr().err
    assert not marker.exists()


def test_a_list_file_runs_pipe_lines_only_when_allowed(tmp_path, capsys):
    from avsep.sources import ReadPolicy, ShardIndexError, dataset_shards

    listing = tmp_path / "shards.txt"
    listing.write_text(f"# mine\npipe:cat {tmp_path}/train/a.tar\n")
    with pytest.raises(ShardIndexError, match=r"shards.txt:2: a 'pipe:' line"):
        dataset_shards(listing, "train")
    allowed = dataset_shards(listing, "train", ReadPolicy(allow_pipe_lists=True))
    assert allowed == [f"pipe:cat {tmp_path}/train/a.tar"]


def test_a_missing_local_shard_is_not_retried_as_if_remote(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from avsep import sources

    sleeps: list[float] = []  # the retries' waits (not the pipe's own polling)
    monkeypatch.setattr(sources, "time", SimpleNamespace(sleep=sleeps.append))
    policy = sources.ReadPolicy(attempts=3, retry_delay_s=2.0)
    with pytest.raises(sources.BadShardError, match=r"gone.tar: no such file"):
        list(sources.shard_samples(str(tmp_path / "gone.tar"), policy))
    with pytest.raises(sources.BadShardError, match="no such file"):
        sources.read_bytes(str(tmp_path / "gone.json"), policy)
    assert sleeps == []
    # A URL is tried `attempts` times; a damaged shard there is the input's fault too.
    (tmp_path / "bad.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(sources.BadShardError, match=r"unreadable after 3 attempts"):
        list(sources.shard_samples(f"pipe:cat {tmp_path / 'bad.tar'}", policy))
    assert sleeps == [2.0, 2.0]


def test_url_template_placeholders_are_checked_before_any_download(tmp_path, capsys):
    for template, expected in [("https://v/{x}/{id}", "unknown placeholder {x}"),
                               ("https://v/{id.__class__}", "unknown placeholder {id.__class__}"),
                               ("https://v/{id", "expected '}' before end of string"),
                               ("https://v/{{id}}", "must contain {id}")]:
        assert main(["download", "solos", "--out", str(tmp_path / "raw"),
                     "--url-template", template]) == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "raw").exists()


def test_doctor_names_a_malformed_lock_line(tmp_path, capsys):
    lock = tmp_path / "requirements.lock"
    lock.write_text('numpy==2.0.0\ntorch==2.9.1 ; python_version >>> "3.10"\n')
    assert main(["doctor", "--lock", str(lock), "--only", "python"]) == 2
    assert ("requirements.lock:2: malformed environment marker 'python_version >>> \"3.10\"'"
            in capsys.readouterr().err)


def test_decoder_messages_are_said_in_words():
    from avsep.media import _first_line

    stack = ("[16:49:19] /src/video/ffmpeg/threaded_decoder.cc:218: Check failed: "
             "avcodec_send_packet(dec_ctx_.get(), pkt.get()) >= 0 (-1094995529 vs. 0) "
             "Thread worker: Error sending packet.")
    assert _first_line(RuntimeError(stack)) == "invalid data found when decoding (corrupt file)"
    assert _first_line(RuntimeError("av_read_frame failed with 1094995529")) == \
        "invalid data found when decoding (corrupt file)"
    graph = ("[17:44:49] /src/video/ffmpeg/threaded_decoder.cc:292: [17:44:49] "
             "/src/video/ffmpeg/filter_graph.cc:100: Check failed: feed(x) >= 0 "
             "(-22 vs. 0) Error while feeding the filter graph")
    assert _first_line(RuntimeError("context\n" + graph)) == "Error while feeding the filter graph"
