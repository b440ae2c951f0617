"""A generated corpus of broken and crafted input files, and every command that takes a file
run over it.

`build_corpus(folder)` writes the cases; `run_matrix(corpus, ...)` runs each command on each
case that fits its file argument, in this process (`avsep.cli.main`), and records the exit
code, the last line of stderr, whether the inputs changed and what was left in the output
folder. `tests/test_hostile_inputs.py` asserts on the records and prints the table of cases x
commands with their exit codes (`format_table`; `pytest -s tests/test_hostile_inputs.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from crafted import Expired, padded, tar_header, time_limit

# A command that runs this leaves MARKER behind: the injection cases fail if it appears.
MARKER_NAME = "INJECTED"
PARTIAL_SUFFIXES = (".tmp", ".part")
PARTIAL_PREFIXES = (".avsep-partial-",)
RUN_TIME_LIMIT_S = 60  # a reader that loops forever fails its case instead of hanging


@dataclass(frozen=True)
class Case:
    """One crafted input.

    Attributes:
        name: short key ('video/truncated_50').
        kind: 'video', 'checkpoint', 'shard', 'data' (a --data location), 'ids'.
        path: the file (or folder, or `pipe:` location) to pass.
        may_succeed: a valid if odd input (one frame, odd dimensions): exit 0 is right.
        names: text the error message must contain (the file or folder it is about).
    """

    name: str
    kind: str
    path: str
    may_succeed: bool = False
    names: str = ""


@dataclass
class Outcome:
    """What one command did with one case."""

    case: str
    command: str
    code: int
    message: str  # the last non-empty line of stderr
    traceback: bool
    internal: bool
    changed_inputs: list[str] = field(default_factory=list)
    partial_outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# Building the corpus


def write_video(path: Path, seconds: float, size: tuple[int, int] = (64, 160),
                 frames: int | None = None, audio: bool = True, video: bool = True,
                 pix_fmt: str = "yuv420p", fps: float = 8.0, sample_rate: int = 22050) -> Path:
    """A small H.264/AAC MP4 (PyAV): a red box on black and a tone; either stream optional."""
    import av

    height, width = size
    count = frames if frames is not None else max(1, round(seconds * fps))
    with av.open(str(path), "w") as container:
        stream = sound = None
        if video:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.pix_fmt = pix_fmt
            stream.height, stream.width = height, width
        if audio:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
        if stream is not None:
            for i in range(count):
                image = np.zeros((height, width, 3), np.uint8)
                image[height // 4: 3 * height // 4, (i * 3) % max(1, width // 2):][:, :8] = 200
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if sound is not None:
            t = np.arange(round(seconds * sample_rate)) / sample_rate
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
            for start in range(0, samples.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, start:start + 1024]), format="fltp",
                    layout="mono")
                chunk.sample_rate = sample_rate
                chunk.pts = start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def _garbage(data: bytes, at: float, length: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    start = int(len(data) * at)
    out = bytearray(data)
    out[start:start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    return bytes(out)


def _huge_dimensions(data: bytes) -> bytes:
    """The MP4 with its track header and sample entry declaring a 65535 x 65535 picture."""
    out = bytearray(data)
    tkhd = out.find(b"tkhd")
    if tkhd > 0:  # width and height: 16.16 fixed point, the last 8 bytes of the box
        size = struct.unpack(">I", out[tkhd - 4:tkhd])[0]
        end = tkhd - 4 + size
        out[end - 8:end] = struct.pack(">II", 0xFFFF0000, 0xFFFF0000)
    avc1 = out.find(b"avc1")
    if avc1 > 0:  # sample entry: 6 reserved + 2 index + 16 predefined, then width, height
        at = avc1 + 4 + 8 + 16
        out[at:at + 4] = struct.pack(">HH", 0xFFFF, 0xFFFF)
    return bytes(out)


def _shard_bytes() -> bytes:
    """A small webdataset-style shard: two samples of json + flac-named bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for key in ("piece_a", "piece_b"):
            for ext, payload in (("json", json.dumps({"key": key}).encode()),
                                 ("flac", bytes(range(256)) * 8)):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _member_boundaries(data: bytes) -> list[int]:
    """Byte offsets at which a member of the tar `data` starts."""
    offsets = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        offsets = [member.offset for member in archive]
    return offsets


class _Payload:
    """Unpickling this runs a command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def build_corpus(folder: str | os.PathLike, urmp_shard: Path | None = None,
                 checkpoint: Path | None = None) -> dict[str, Case]:
    """Write the cases into `folder`; return them by name.

    Args:
        urmp_shard: a real prepared URMP shard, cut at a member boundary for the
            'shard/cut_at_member' case (a shard evaluated as complete when it is not).
        checkpoint: a valid checkpoint to truncate (default: a tiny model's).
    """
    import torch

    import avsep

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER_NAME
    cases: dict[str, Case] = {}

    def add(name: str, kind: str, path: Path | str, **kw) -> None:
        cases[name] = Case(name, kind, str(path), names=kw.pop("names", Path(path).name), **kw)

    # Videos: every file a user might hand to separate / localize / prepare.
    videos = root / "videos"
    videos.mkdir(exist_ok=True)
    good = write_video(videos / "good.mp4", 3.0)
    data = good.read_bytes()
    (videos / "zero_byte.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("this is not a video\n")
    (videos / "image.mp4").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    for share in (10, 50, 90):
        (videos / f"truncated_{share}.mp4").write_bytes(data[:len(data) * share // 100])
    (videos / "garbage_early.mp4").write_bytes(_garbage(data, 0.3, 2000, 1))
    (videos / "garbage_late.mp4").write_bytes(_garbage(data, 0.8, 2000, 2))
    (videos / "huge_dimensions.mp4").write_bytes(_huge_dimensions(data))
    write_video(videos / "no_audio.mp4", 3.0, audio=False)
    write_video(videos / "audio_only.mp4", 3.0, video=False)
    write_video(videos / "one_frame.mp4", 3.0, frames=1)
    write_video(videos / "odd_dimensions.mp4", 3.0, size=(67, 161), pix_fmt="yuv444p")
    write_video(videos / "short.mp4", 0.3, size=(32, 32))
    # Valid if odd: exit 0 is the right answer. The huge dimensions are only declared by the
    # container; the decoder takes the stream's own (small) picture size, as players do.
    odd_ok = {"one_frame", "odd_dimensions", "short", "good", "huge_dimensions"}
    for path in sorted(videos.glob("*.mp4")):
        add(f"video/{path.stem}", "video", path, may_succeed=path.stem in odd_ok)

    # Checkpoints: what --checkpoint, import-sop and a resumed run read.
    checkpoints = root / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    if checkpoint is None:
        torch.manual_seed(0)
        checkpoint = avsep.save_checkpoint(checkpoints / "good.pt",
                                           avsep.create_model("avsep_unittest"),
                                           config={"data": {"image_size": 64}})
    else:
        shutil.copyfile(checkpoint, checkpoints / "good.pt")
    blob = Path(checkpoint).read_bytes()
    (checkpoints / "zero_byte.pt").write_bytes(b"")
    (checkpoints / "text.pt").write_text("not a checkpoint\n")
    (checkpoints / "truncated.pt").write_bytes(blob[:len(blob) // 2])
    (checkpoints / "garbage_middle.pt").write_bytes(_garbage(blob, 0.5, 4096, 3))
    torch.save({"payload": _Payload(marker)}, checkpoints / "pickle_payload.pt")
    torch.save({"weight": torch.zeros(3)}, checkpoints / "foreign.pt")
    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "version": 99}, checkpoints / "newer_version.pt")
    payload["state_dict"] = {k: v[..., :1] if v.ndim else v
                             for k, v in payload["state_dict"].items()}
    torch.save(payload, checkpoints / "wrong_shapes.pt")
    (checkpoints / "tar.pt").write_bytes(_shard_bytes())
    for path in sorted(checkpoints.glob("*.pt")):
        if path.stem != "good":
            add(f"checkpoint/{path.stem}", "checkpoint", path)

    # Shards: what inspect, evaluate (URMP) and training read.
    shards = root / "shards"
    shards.mkdir(exist_ok=True)
    shard = _shard_bytes()
    boundaries = _member_boundaries(shard)
    tars = {
        "zero_byte": b"",
        "text": b"not a tar file\n" * 40,
        "truncated_mid_member": shard[:boundaries[1] + 700],
        "cut_at_member": shard[:boundaries[2]],
        "garbage_middle": _garbage(shard, 0.4, 1024, 4),
        "zero_length_pax": (tar_header(b"././@PaxHeader", 512, b"x") + padded(b"0 \n" * 4)
                            + tar_header(b"a.json", 2) + padded(b"{}") + bytes(1024)),
        "escaping_member": (tar_header(b"../../escaped.json", 2) + padded(b"{}")
                            + bytes(1024)),
        "huge_declared_size": (tar_header(b"a.flac", 0, size_field=b"77777777777\0")
                               + bytes(2048)),
        "negative_size": (tar_header(b"a.flac", 0, size_field=b"\xff" * 12) + bytes(2048)),
    }
    if urmp_shard is not None:
        real = Path(urmp_shard).read_bytes()
        tars["cut_at_member"] = real[:_member_boundaries(real)[3]]
    for name, content in tars.items():
        path = shards / f"{name}.tar"
        path.write_bytes(content)
        add(f"shard/{name}", "shard", path)

    # --data locations: shard indexes and lists (the injection, and their broken forms).
    locations = root / "locations"
    locations.mkdir(exist_ok=True)
    indexes = {
        "index_injection": {"splits": {"train": [
            {"path": f"train/x.tar; touch {marker} #", "samples": 1, "bytes": 10}],
            "val": [{"path": f"val/$(touch {marker}).tar", "samples": 1, "bytes": 10}]}},
        "index_escape": {"splits": {"train": [{"path": "../../x.tar", "samples": 1}],
                                    "val": [{"path": "/etc/x.tar", "samples": 1}]}},
        "index_scheme": {"splits": {"train": [{"path": "pipe:touch x", "samples": 1}],
                                    "val": [{"path": "https://h/x.tar", "samples": 1}]}},
        "index_wrong_type": ["not", "an", "index"],
    }
    for name, index in indexes.items():
        folder_ = locations / name
        folder_.mkdir(exist_ok=True)
        (folder_ / "shards.json").write_text(json.dumps(index))
        add(f"data/{name}", "data", f"pipe:cat {folder_}", names="shards.json")
    folder_ = locations / "index_not_json"
    folder_.mkdir(exist_ok=True)
    (folder_ / "shards.json").write_text("{ not json")
    add("data/index_not_json", "data", f"pipe:cat {folder_}", names="shards.json")
    (locations / "list_pipe.txt").write_text(f"train/a.tar\npipe:touch {marker}\n"
                                             f"val/pipe:touch {marker}.tar\n")
    add("data/list_pipe", "data", locations / "list_pipe.txt")
    (locations / "list_binary.txt").write_bytes(bytes(range(256)) * 4)
    add("data/list_binary", "data", locations / "list_binary.txt")

    # Id lists for `avsep download --ids`.
    ids = root / "ids"
    ids.mkdir(exist_ok=True)
    (ids / "zero_byte.json").write_bytes(b"")
    (ids / "not_json.json").write_text("{ nope")
    (ids / "wrong_structure.json").write_text("[1, 2, 3]")
    (ids / "escaping_id.json").write_text(json.dumps({"Violin": ["../../../etc/x"]}))
    (ids / "unknown_class.json").write_text(json.dumps({"Banjo": ["abcdefghijk"]}))
    (ids / "binary.json").write_bytes(bytes(range(256)))
    for path in sorted(ids.glob("*.json")):
        add(f"ids/{path.stem}", "ids", path)
    return cases


# ---------------------------------------------------------------------------------------------
# Running the commands


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _partial(path: Path) -> list[str]:
    if not path.exists():
        return []
    found = path.rglob("*") if path.is_dir() else [path]
    return [str(p) for p in found
            if p.name.endswith(PARTIAL_SUFFIXES) or p.name.startswith(PARTIAL_PREFIXES)]


def run_command(argv: list[str], corpus: Path, out: Path | None, case: Case,
                command: str) -> Outcome:
    """Run `avsep ARGV` in this process and describe what it did."""
    from avsep.cli import main

    before = _digest(corpus)
    err, stdout = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    try:
        with time_limit(RUN_TIME_LIMIT_S), contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(stdout):
            code = main(argv)
    except Expired as exc:
        code, err = 124, io.StringIO(f"timeout: {exc}")
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.strip() and "\r" not in line
             and not line.startswith(("[", "  0%", "100%"))]
    after = _digest(corpus)
    changed = sorted(name for name in set(before) | set(after)
                     if before.get(name) != after.get(name))
    partial = _partial(out) if out is not None else []
    if code != 0 and out is not None and out.exists() and out.is_dir() and command in (
            "separate", "localize", "import-sop", "evaluate"):
        partial += [str(p) for p in out.rglob("*")]  # a failed command leaves nothing
    if out is not None and code != 0 and out.is_file():
        partial.append(str(out))
    return Outcome(case.name, command, code, lines[-1] if lines else "",
                   "Traceback (most recent call last)" in text, "internal error" in text,
                   changed, partial, time.perf_counter() - start)


# (command, the case kinds it takes, argv builder(case path, corpus, out, context))
Builder = Callable[[str, Path, Path, dict], list[str]]


def _commands() -> list[tuple[str, tuple[str, ...], Builder]]:
    good_video = "videos/good.mp4"
    good_checkpoint = "checkpoints/good.pt"
    return [
        ("separate", ("video", "checkpoint"), lambda p, c, o, x: [
            "separate", *(_video_and_checkpoint(p, c, good_video, good_checkpoint)),
            "--out", str(o), "--quiet"]),
        ("localize", ("video", "checkpoint"), lambda p, c, o, x: [
            "localize", *(_video_and_checkpoint(p, c, good_video, good_checkpoint)),
            "--out", str(o), "--fps", "2", "--quiet", "--max-short-side", "0"]),
        ("inspect", ("shard", "data"), lambda p, c, o, x: ["inspect", p]),
        ("evaluate", ("shard", "data", "checkpoint"), lambda p, c, o, x: [
            "evaluate", "--data", p if not p.endswith(".pt") else x["urmp"],
            "--checkpoint", p if p.endswith(".pt") else x["checkpoint"], "--out", str(o),
            "--no-progress", "--read-attempts", "1", "--read-retry-delay", "0",
            "--limit-pieces", "1"]),
        ("train", ("shard", "data"), lambda p, c, o, x: [
            "train", "--dataset", "solos", "--data", _train_data(p, o), "--run-dir",
            str(o / "run"), "--set", "data.read_attempts=1", "--set",
            "data.read_retry_delay_s=0", *x["train_overrides"]]),
        ("train-resume", ("checkpoint",), lambda p, c, o, x: [
            "train", "--dataset", "solos", "--data", x["solos"], "--run-dir",
            _resume_dir(p, o), *x["train_overrides"]]),
        ("import-sop", ("checkpoint",), lambda p, c, o, x: [
            "import-sop", p, p, p, "--out", str(o / "sop.pt")]),
        ("download", ("ids",), lambda p, c, o, x: [
            "download", "solos", "--out", str(o), "--ids", p]),
    ]


def _video_and_checkpoint(path: str, corpus: Path, video: str, checkpoint: str) -> list[str]:
    if path.endswith(".pt"):
        return [str(corpus / video), "--checkpoint", path]
    return [path, "--checkpoint", str(corpus / checkpoint)]


def _train_data(path: str, out: Path) -> str:
    """A broken shard as both the train and the val shard of a dataset folder; other
    locations as they are."""
    if not path.endswith(".tar"):
        return path
    for split in ("train", "val"):
        (out / "data" / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / "data" / split / Path(path).name)
    return str(out / "data")


def _resume_dir(path: str, out: Path) -> str:
    """A run folder whose checkpoint.pt is the case."""
    run = out / "run"
    run.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, run / "checkpoint.pt")
    return str(run)


def run_matrix(corpus: Path, cases: dict[str, Case], context: dict,
               only: Callable[[str, Case], bool] | None = None) -> list[Outcome]:
    """Every command on every case of a kind it takes (`only` filters (command, case))."""
    outcomes = []
    work = corpus.parent / (corpus.name + "-out")
    for command, kinds, build in _commands():
        for case in cases.values():
            if case.kind not in kinds or (only is not None and not only(command, case)):
                continue
            out = work / command / case.name.replace("/", "-")
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            argv = build(case.path, corpus, out, context)
            if command in ("train", "train-resume"):
                outcome = run_command(argv, corpus, out / "run", case, command)
            else:
                outcome = run_command(argv, corpus, out, case, command)
            outcomes.append(outcome)
    return outcomes


def format_table(outcomes: list[Outcome]) -> str:
    """Cases x commands, each cell the exit code ('' where the command does not take it)."""
    commands = list(dict.fromkeys(o.command for o in outcomes))
    cases = list(dict.fromkeys(o.case for o in outcomes))
    cell = {(o.case, o.command): o for o in outcomes}
    lines = ["| case | " + " | ".join(commands) + " |",
             "|---|" + "---|" * len(commands)]
    for case in cases:
        row = []
        for command in commands:
            outcome = cell.get((case, command))
            row.append("" if outcome is None else str(outcome.code)
                       + ("!" if outcome.traceback or outcome.internal or outcome.changed_inputs
                          or outcome.partial_outputs else ""))
        lines.append(f"| {case} | " + " | ".join(row) + " |")
    bad = [o for o in outcomes if o.traceback or o.internal or o.changed_inputs
           or o.partial_outputs]
    lines.append(f"\n{len(outcomes)} runs; tracebacks {sum(o.traceback for o in outcomes)}, "
                 f"internal errors {sum(o.internal for o in outcomes)}, changed inputs "
                 f"{sum(bool(o.changed_inputs) for o in outcomes)}, partial outputs "
                 f"{sum(bool(o.partial_outputs) for o in outcomes)}, slowest run "
                 f"{max((o.seconds for o in outcomes), default=0.0):.1f} s ('!' marks them: "
                 f"{[(o.case, o.command) for o in bad]})")
    return "\n".join(lines)
