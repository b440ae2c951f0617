"""`avsep doctor`: is this installation able to run avsep?

Every native part that avsep relies on is *exercised* on a tiny generated input, not just
imported, because the failures seen in practice load fine and break on first use (a
torchaudio whose `libtorchaudio.so` does not match torch fails at the first resample; a
torchvision that does not match torch fails at its first operator). Each check returns a
`Check` with the version, what was exercised and, when it failed, how to fix it.

The checks use the libraries directly, not avsep's own wrappers, so that a failure here is
a fault of the environment and never of avsep's code or of a user's input.
"""

from __future__ import annotations

import importlib.metadata
import io
import math
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avsep.faults import InputError, describe_fault

REINSTALL = "reinstall the locked environment: bash scripts/setup.sh (or pip install -r requirements.lock)"
SOUNDFONTS = {  # the General MIDI soundfonts the stand-in generator uses -> Debian package
    "/usr/share/sounds/sf2/FluidR3_GM.sf2": "fluid-soundfont-gm",
    "/usr/share/sounds/sf2/TimGM6mb.sf2": "timgm6mb-soundfont",
}


@dataclass
class Check:
    """The outcome of one check.

    Attributes:
        name: what was checked ('torchaudio', 'PyAV', ...).
        ok: False when the part is broken; `fix` then says what to do.
        version: the version found ('' if it could not be read).
        detail: what was exercised, or the error.
        fix: how to repair a failure.
        warning: a problem that does not stop avsep (e.g. no GPU, a version off the lock).
    """

    name: str
    ok: bool = True
    version: str = ""
    detail: str = ""
    fix: str = ""
    warning: str = ""


@dataclass
class Probe:
    """One named check: `run(check)` fills `check.version`/`detail` or raises."""

    name: str
    run: Callable[[Check, Path], None]
    fix: str = REINSTALL
    depends: tuple[str, ...] = field(default_factory=tuple)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _check_python(check: Check, _: Path) -> None:
    check.version = platform.python_version()
    check.detail = f"{platform.python_implementation()} at {sys.executable}"


def _check_torch(check: Check, _: Path) -> None:
    import torch

    check.version = torch.__version__
    signal = torch.sin(torch.arange(4096, dtype=torch.float32) * 0.05)
    spec = torch.stft(signal, 1022, 256, window=torch.hann_window(1022), return_complex=True)
    back = torch.istft(spec, 1022, 256, window=torch.hann_window(1022), length=4096)
    error = float((back[1022:-1022] - signal[1022:-1022]).abs().max())
    if error > 1e-4:
        raise RuntimeError(f"STFT -> ISTFT round trip is off by {error:.2e}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        on_gpu = torch.ones(8, device="cuda").sum().item()
        if on_gpu != 8:
            raise RuntimeError("a sum on the GPU gave a wrong result")
        check.detail = f"STFT round trip ok; CUDA {torch.version.cuda}: {names}"
    else:
        built = torch.version.cuda or "none"
        check.detail = f"STFT round trip ok; CPU only (built for CUDA {built}, no GPU visible)"


def _check_torchaudio(check: Check, _: Path) -> None:
    import torch
    import torchaudio
    import torchaudio.functional as F

    check.version = torchaudio.__version__
    rate_in, rate_out = 44100, 11025
    t = torch.arange(rate_in) / rate_in
    tone = torch.sin(2 * math.pi * 440.0 * t)
    out = F.resample(tone, rate_in, rate_out)
    expected = torch.sin(2 * math.pi * 440.0 * torch.arange(rate_out) / rate_out)
    error = float((out[200:-200] - expected[200:-200]).abs().max())
    if out.shape[-1] != rate_out or error > 1e-2:
        raise RuntimeError(f"resampling a 440 Hz tone gave {out.shape[-1]} samples, error {error:.3f}")
    check.detail = f"resampled 1 s at {rate_in} Hz -> {rate_out} Hz (max error {error:.1e})"


def _check_torchvision(check: Check, _: Path) -> None:
    import torch
    import torchvision
    from torchvision.ops import nms

    check.version = torchvision.__version__
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50, 60, 60]])
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()
    if keep != [0, 2]:
        raise RuntimeError(f"torchvision.ops.nms gave {keep}, expected [0, 2]")
    check.detail = "native operator (nms) ok"


def _test_clip(workdir: Path) -> Path:
    """A 1-second MPEG-4 clip (64x48, 8 fps, moving bar) with a 440 Hz AAC tone, via PyAV."""
    import av

    path = workdir / "clip.mp4"
    if path.exists():
        return path
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=8)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=44100, layout="mono")
        for i in range(8):
            image = np.zeros((48, 64, 3), np.uint8)
            image[:, i * 8:(i + 1) * 8] = 255
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(video.encode(picture))
        container.mux(video.encode())
        samples = 0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
        block = 1024
        for start in range(0, 44100, block):
            chunk = samples[start:start + block].astype(np.float32)[None, :]
            sound = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            sound.sample_rate, sound.pts = 44100, start
            container.mux(audio.encode(sound))
        container.mux(audio.encode())
    return path


def _check_pyav(check: Check, workdir: Path) -> None:
    import av

    check.version = av.__version__
    path = _test_clip(workdir)
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    if frames != 8 or abs(samples - 44100) > 4096:
        raise RuntimeError(f"encoded 8 frames and 1 s of audio, decoded {frames} frames and "
                           f"{samples / 44100:.2f} s")
    check.detail = f"encoded and decoded a 1 s clip ({frames} frames, {samples} samples)"


def _check_decord(check: Check, workdir: Path) -> None:
    import decord

    check.version = _version("decord")
    path = _test_clip(workdir)
    video = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    frames = video.get_batch(list(range(len(video)))).asnumpy()
    brightest = [int(np.argmax(frame.mean(axis=(0, 2)))) // 8 for frame in frames]
    audio = decord.AudioReader(str(path), ctx=decord.cpu(0), sample_rate=-1, mono=False)
    samples = audio[:].asnumpy()
    if len(frames) != 8 or brightest != list(range(8)) or abs(samples.shape[-1] - 44100) > 4096:
        raise RuntimeError(f"decoded {len(frames)} frames (bar at {brightest}) and "
                           f"{samples.shape[-1]} samples from a clip of 8 frames and 44100")
    check.detail = f"decoded the clip: {len(frames)} frames, {samples.shape[-1]} samples"


def _check_opencv(check: Check, _: Path) -> None:
    import cv2

    check.version = cv2.__version__
    ramp = np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", ramp, [cv2.IMWRITE_JPEG_QUALITY, 90])
    back = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    if back is None or back.shape != ramp.shape:
        raise RuntimeError("JPEG encode/decode failed")
    error = float(np.abs(back.astype(float) - ramp).mean())
    if error > 8:
        raise RuntimeError(f"JPEG round trip mean error {error:.1f} (expected < 8)")
    check.detail = f"JPEG round trip (mean error {error:.2f})"


def _check_soundfile(check: Check, _: Path) -> None:
    import soundfile

    check.version = f"{soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__})"
    tone = (0.25 * np.sin(np.arange(11025) * 0.1)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, 11025, format="WAV", subtype="FLOAT")
    buffer.seek(0)
    back, rate = soundfile.read(buffer, dtype="float32")
    if rate != 11025 or not np.array_equal(back, tone):
        raise RuntimeError("float WAV round trip changed the samples")
    check.detail = "float WAV round trip exact"


def _check_webdataset(check: Check, workdir: Path) -> None:
    import webdataset as wds

    check.version = _version("webdataset")
    path = workdir / "check-000000.tar"
    with wds.TarWriter(str(path)) as sink:
        for i in range(3):
            sink.write({"__key__": f"s{i}", "txt": f"sample {i}", "npy": np.full(4, i)})
    samples = list(wds.WebDataset(str(path), shardshuffle=False).decode())
    got = [(s["__key__"], s["txt"], int(s["npy"][0])) for s in samples]
    if got != [(f"s{i}", f"sample {i}", i) for i in range(3)]:
        raise RuntimeError(f"wrote 3 samples, read back {got}")
    check.detail = "wrote and read a 3-sample shard"


def _check_wandb(check: Check, _: Path) -> None:
    import wandb

    check.version = wandb.__version__
    check.detail = "imports (runs log offline by default)"


def _check_fluidsynth(check: Check, _: Path) -> None:
    import fluidsynth

    check.version = f"pyfluidsynth {_version('pyfluidsynth')}"
    found = [path for path in SOUNDFONTS if Path(path).is_file()]
    if not found:
        raise FileNotFoundError("no General MIDI soundfont in /usr/share/sounds/sf2")
    synth = fluidsynth.Synth(samplerate=22050.0)
    try:
        font = synth.sfload(found[0])
        if font < 0:
            raise RuntimeError(f"FluidSynth could not load {found[0]}")
        synth.program_select(0, font, 0, 40)  # violin
        synth.noteon(0, 69, 100)
        samples = np.asarray(synth.get_samples(22050), dtype=np.float64)
    finally:
        synth.delete()
    rms = float(np.sqrt(np.mean(samples**2)))
    if rms < 10:  # int16 samples; a rendered note is in the hundreds or thousands
        raise RuntimeError("FluidSynth rendered silence for a violin note")
    check.detail = f"rendered a violin note with {Path(found[0]).name} (RMS {rms:.0f})"


def _check_soundfonts(check: Check, _: Path) -> None:
    missing = [f"{path} ({package})" for path, package in SOUNDFONTS.items()
               if not Path(path).is_file()]
    check.version = f"{len(SOUNDFONTS) - len(missing)} of {len(SOUNDFONTS)}"
    if missing:
        packages = " ".join(SOUNDFONTS[p] for p in SOUNDFONTS if not Path(p).is_file())
        check.fix = f"sudo apt-get install {packages}"
        raise FileNotFoundError("missing " + ", ".join(missing))
    check.detail = ", ".join(Path(p).name for p in SOUNDFONTS)


def _check_ffmpeg(check: Check, _: Path) -> None:
    executable = shutil.which("ffmpeg")
    if executable is None:
        raise FileNotFoundError("no ffmpeg on PATH")
    first = subprocess.run([executable, "-version"], capture_output=True, text=True,
                           timeout=30, check=True).stdout.splitlines()
    match = re.search(r"version (\S+)", first[0] if first else "")
    check.version = match.group(1) if match else "unknown"
    check.detail = executable


PROBES = [
    Probe("Python", _check_python),
    Probe("torch", _check_torch),
    Probe("torchaudio", _check_torchaudio, depends=("torch",)),
    Probe("torchvision", _check_torchvision, depends=("torch",)),
    Probe("PyAV", _check_pyav),
    Probe("decord", _check_decord, depends=("PyAV",)),  # the test clip is written with PyAV
    Probe("OpenCV", _check_opencv),
    Probe("soundfile", _check_soundfile),
    Probe("webdataset", _check_webdataset),
    Probe("wandb", _check_wandb),
    Probe("FluidSynth", _check_fluidsynth,
          fix="sudo apt-get install fluidsynth fluid-soundfont-gm; then " + REINSTALL),
    Probe("soundfonts", _check_soundfonts),
    Probe("ffmpeg", _check_ffmpeg, fix="sudo apt-get install ffmpeg"),
]

# Distribution names whose installed version is compared with requirements.lock.
LOCKED_PARTS = {"torch": "torch", "torchaudio": "torchaudio", "torchvision": "torchvision",
                "PyAV": "av", "decord": "decord", "OpenCV": "opencv-python-headless",
                "soundfile": "soundfile", "webdataset": "webdataset", "wandb": "wandb",
                "FluidSynth": "pyfluidsynth"}


def run_checks(only: list[str] | None = None, lock: dict[str, str] | None = None) -> list[Check]:
    """Run every probe (or those named in `only`) and return their outcomes in order.

    Args:
        only: probe names to run (case-insensitive); None for all.
        lock: {distribution: version} expected by requirements.lock, to flag differences.
    """
    wanted = None if only is None else {name.lower() for name in only}
    results: dict[str, Check] = {}
    with tempfile.TemporaryDirectory(prefix="avsep-doctor-") as tmp:
        for probe in PROBES:
            if wanted is not None and probe.name.lower() not in wanted:
                continue
            check = Check(probe.name)
            broken = [d for d in probe.depends if d in results and not results[d].ok]
            if broken:
                check.ok, check.detail = False, f"not exercised: {', '.join(broken)} is broken"
                check.fix = f"fix {', '.join(broken)} first"
            else:
                try:
                    probe.run(check, Path(tmp))
                except Exception as exc:  # noqa: BLE001 - any failure is the finding
                    fault = describe_fault(exc)
                    check.ok = False
                    check.detail = f"{fault.error} (at {fault.origin})"
                    check.fix = check.fix or probe.fix
            distribution = LOCKED_PARTS.get(probe.name)
            if lock and distribution:
                installed = _version(distribution)
                if not check.version:
                    check.version = installed
                expected = lock.get(distribution)
                if expected and installed != expected:
                    check.warning = f"requirements.lock has {expected}, installed {installed}"
                    if not check.ok:
                        check.fix = REINSTALL
            results[probe.name] = check
    return list(results.values())


class LockFileError(InputError, ValueError):
    """A lock file that cannot be read; names the file and the line."""


def locked_versions(path: Path) -> dict[str, str]:
    """{distribution: version} of the lines of a lock file that apply to this interpreter.

    Raises:
        LockFileError: the file is not text, or a line's environment marker is malformed.
    """
    from packaging.markers import InvalidMarker, Marker
    from packaging.utils import canonicalize_name

    versions: dict[str, str] = {}
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise LockFileError(f"{path}: not a lock file (not text)") from None
    for number, line in enumerate(text.splitlines(), 1):
        requirement = line.split("#", 1)[0].strip()
        if not requirement or "==" not in requirement:
            continue
        spec, _, marker = requirement.partition(";")
        try:
            applies = not marker.strip() or Marker(marker.strip()).evaluate()
        except InvalidMarker as exc:
            first = str(exc).splitlines()[0] if str(exc) else "invalid"
            raise LockFileError(f"{path}:{number}: malformed environment marker "
                                f"{marker.strip()!r} ({first})") from None
        if not applies:
            continue
        name, version = (part.strip() for part in spec.split("==", 1))
        versions[canonicalize_name(name)] = version
    return versions


def format_checks(checks: list[Check], quiet: bool = False) -> str:
    """A table of the checks and a verdict; with `quiet`, only problems and the verdict."""
    lines = []
    width = max((len(c.name) for c in checks), default=0)
    version_width = max((len(c.version) for c in checks), default=0)
    for check in checks:
        if quiet and check.ok and not check.warning:
            continue
        status = "ok  " if check.ok else "FAIL"
        lines.append(f"{status} {check.name:<{width}}  {check.version:<{version_width}}  {check.detail}")
        if check.warning:
            lines.append(f"     {'':<{width}}  warning: {check.warning}")
        if not check.ok and check.fix:
            lines.append(f"     {'':<{width}}  fix: {check.fix}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        lines.append(f"avsep doctor: broken: {', '.join(failed)}")
    else:
        lines.append(f"avsep doctor: all {len(checks)} checks passed")
    return "\n".join(lines)
