"""Faults of the environment or of avsep are never blamed on the input, and `avsep doctor`."""

from __future__ import annotations

import glob
import importlib.metadata
import json
import time
from pathlib import Path

import pytest
import torchaudio.functional
import webdataset as wds
import yaml

from avsep.cli import main as avsep_main
from avsep.faults import describe_fault
from data_prep.prepare.report import BAD_INPUT, Issue, UnitResult
from data_prep.prepare.runner import RunContext, WorkUnit, run_units
from data_prep.prepare.settings import PrepareSettings
from data_prep.prepare.writer import MarkerStore, UnitShardWriter
from tests.test_prepare_bad_input import write_mp4

BROKEN_SO = ("/opt/env/lib/python3.11/site-packages/torchaudio/lib/libtorchaudio.so: "
             "undefined symbol: torch_exception_get_what_without_backtrace")


def _raise(exc: BaseException):
    raise exc


# ------------------------------------------------------------------------ describe_fault


def test_a_broken_shared_library_is_named():
    try:
        _raise(OSError(BROKEN_SO))
    except OSError as exc:
        fault = describe_fault(exc)
    assert (fault.kind, fault.library) == ("library", "torchaudio")
    assert "undefined symbol" in fault.error
    assert "avsep doctor" in fault.message("preparing x.mp4")


def test_an_import_error_names_the_missing_module():
    try:
        import avsep_module_that_does_not_exist  # noqa: F401
    except ImportError as exc:
        fault = describe_fault(exc)
    assert (fault.kind, fault.library) == ("library", "avsep_module_that_does_not_exist")


def test_an_error_raised_inside_a_library_names_it_and_its_line():
    try:
        yaml.safe_load("{unclosed")
    except yaml.YAMLError as exc:
        fault = describe_fault(exc)
    assert (fault.kind, fault.library) == ("library", "yaml")
    assert fault.origin.startswith("yaml/") and ":" in fault.origin


def test_a_bug_in_our_code_is_internal_and_memory_is_memory():
    try:
        {}["missing"]
    except KeyError as exc:
        fault = describe_fault(exc)
    assert (fault.kind, fault.library) == ("internal", "")
    assert fault.origin == f"{Path(__file__).name}:{fault.origin.split(':')[1]}"
    assert "internal error in avsep" in fault.message("x")
    try:
        _raise(MemoryError())
    except MemoryError as exc:
        assert describe_fault(exc).kind == "memory"


# -------------------------------------------------------------- preparation stops at once


@pytest.fixture()
def two_videos(tmp_path):
    raw = tmp_path / "raw"
    write_mp4(raw / "Violin" / "aaaaaaaaaaa.mp4", 7.0)
    write_mp4(raw / "Cello" / "bbbbbbbbbbb.mp4", 7.0)
    return raw


def test_a_library_fault_stops_prepare_and_is_retried_by_the_next_run(
        two_videos, tmp_path, monkeypatch, capsys):
    calls = []

    def broken_resample(*args, **kwargs):
        calls.append(1)
        raise OSError(BROKEN_SO)

    monkeypatch.setattr(torchaudio.functional, "resample", broken_resample)
    out = tmp_path / "out"
    argv = ["prepare", "solos", "--src", str(two_videos), "--out", str(out), "--jobs", "0",
            "--val-fraction", "0"]
    code = avsep_main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert len(calls) == 1, "the run must stop at the first faulty video"
    assert "the library torchaudio failed" in err and "avsep doctor" in err
    assert "not about the input" in err
    assert list(MarkerStore(out).directory.glob("*.json")) == []
    records = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert [r for r in records if r["unit"]] == []  # nothing blamed on an input

    monkeypatch.undo()
    assert avsep_main(argv) == 0  # a plain rerun, without --retry-bad
    summary = json.loads((out / "summary.json").read_text())
    assert summary["units_with_samples"] == 2 and summary["units_bad"] == 0


def _fail_on_unit_named_bug(unit: WorkUnit, ctx: RunContext, writer: UnitShardWriter,
                            result: UnitResult) -> None:
    if unit.unit == "bug":
        {}["no such key"]  # an internal bug
    writer.write({"__key__": unit.unit, "txt": unit.unit})
    result.samples += 1


def _hang_on_unit_named_hang(unit: WorkUnit, ctx: RunContext, writer: UnitShardWriter,
                             result: UnitResult) -> None:
    if unit.unit == "hang":
        time.sleep(3600)
    writer.write({"__key__": unit.unit, "txt": unit.unit})
    result.samples += 1


def _units(tmp_path: Path, names: list[str]) -> tuple[list[WorkUnit], RunContext]:
    (tmp_path / "raw").mkdir(exist_ok=True)
    for name in names:
        (tmp_path / "raw" / name).write_bytes(b"x")
    units = [WorkUnit(n, n, n, "test", "", "t") for n in names]
    return units, RunContext(tmp_path / "raw", tmp_path / "out", PrepareSettings(), ("",))


def _keys(out: Path) -> list[str]:
    shards = sorted(glob.glob(str(out / "*.tar")))
    return sorted(s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False))


def test_an_internal_bug_in_a_worker_stops_the_run_without_a_record(tmp_path, capsys):
    units, ctx = _units(tmp_path, ["bug"])
    code = run_units(_fail_on_unit_named_bug, units, ctx, jobs=1)
    err = capsys.readouterr().err
    assert code == 1
    assert "internal error in avsep" in err and "KeyError" in err
    assert MarkerStore(ctx.out).load("bug") is None
    assert (ctx.out / "report.jsonl").read_text() == ""


def test_units_an_older_version_blamed_for_an_unexpected_error_are_redone(tmp_path):
    units, ctx = _units(tmp_path, ["a", "b"])
    assert run_units(_fail_on_unit_named_bug, units, ctx, jobs=0) == 0
    store = MarkerStore(ctx.out)
    old = store.load("a")
    old.samples, old.shards = 0, []
    old.issues.append(Issue("a", BAD_INPUT, "unexpected_error", "ImportError: ..."))
    store.save(old)
    assert run_units(_fail_on_unit_named_bug, units, ctx, jobs=0) == 0
    again = store.load("a")
    assert again.samples == 1 and not again.bad
    assert _keys(ctx.out) == ["a", "b"]


def test_a_hung_decoder_is_stopped_after_the_timeout_and_reported(tmp_path):
    units, ctx = _units(tmp_path, ["a", "hang", "c"])
    start = time.monotonic()
    code = run_units(_hang_on_unit_named_hang, units, ctx, jobs=2, unit_timeout_s=2.0)
    assert time.monotonic() - start < 60
    assert code == 0
    lines = [json.loads(line) for line in (ctx.out / "report.jsonl").read_text().splitlines()]
    assert [(r["source"], r["code"]) for r in lines] == [("hang", "timeout")]
    assert "2 s" in lines[0]["reason"]
    assert _keys(ctx.out) == ["a", "c"]


def test_an_unexpected_exception_in_any_command_points_to_the_doctor(monkeypatch, capsys):
    import data_prep.inspect

    monkeypatch.setattr(data_prep.inspect, "summarize_shards",
                        lambda path, policy=None: yaml.safe_load("{unclosed"))
    assert avsep_main(["inspect", "anything"]) == 1
    err = capsys.readouterr().err
    assert "the library yaml failed" in err and "avsep doctor" in err


# -------------------------------------------------------------------------------- doctor


def test_doctor_exercises_the_libraries(capsys):
    code = avsep_main(["doctor", "--only", "torchaudio", "OpenCV", "webdataset", "soundfile"])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("torchaudio", "OpenCV", "webdataset", "soundfile"):
        assert f"ok   {name}" in out
    assert "all 4 checks passed" in out


def test_doctor_names_a_broken_library_and_how_to_fix_it(monkeypatch, capsys):
    monkeypatch.setattr(torchaudio.functional, "resample", lambda *a, **k: _raise(OSError(BROKEN_SO)))
    code = avsep_main(["doctor", "--only", "torch", "torchaudio"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL torchaudio" in out and "undefined symbol" in out
    assert "fix: reinstall the locked environment" in out
    assert "broken: torchaudio" in out


def test_doctor_warns_when_a_version_differs_from_the_lock(tmp_path, capsys):
    lock = tmp_path / "requirements.lock"
    lock.write_text("webdataset==0.0.1    # via avsep\nnumpy==1.0 ; sys_platform == 'nowhere'\n")
    code = avsep_main(["doctor", "--only", "webdataset", "--lock", str(lock)])
    out = capsys.readouterr().out
    assert code == 0
    installed = importlib.metadata.version("webdataset")
    assert f"warning: requirements.lock has 0.0.1, installed {installed}" in out


def test_doctor_rejects_an_unknown_check(capsys):
    assert avsep_main(["doctor", "--only", "tensorflow"]) == 2
    assert "unknown check tensorflow" in capsys.readouterr().err


def test_a_decoder_library_that_does_not_load_stops_before_any_unit(tmp_path, monkeypatch, capsys):
    from data_prep.prepare import runner

    monkeypatch.setattr(runner, "DECODER_MODULES", ("json", "avsep_decoder_that_is_missing"))
    units, ctx = _units(tmp_path, ["a", "b"])
    assert run_units(_fail_on_unit_named_bug, units, ctx, jobs=2) == 1
    err = capsys.readouterr().err
    assert "the library avsep_decoder_that_is_missing failed" in err and "avsep doctor" in err
    assert MarkerStore(ctx.out).all() == [] and not list(ctx.out.glob("*.tar"))
