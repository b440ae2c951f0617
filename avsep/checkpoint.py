"""Checkpoints that load with `torch.load(weights_only=True)` and rebuild through the registry.

A checkpoint is one file holding a plain dict:

    {"format": "avsep-checkpoint", "version": 1,
     "model_name": str, "model_kwargs": dict, "state_dict": {name: tensor},
     "config": dict, "step": int, **extra}

`extra` holds whatever the caller adds (optimizer / scheduler state, best validation loss,
...), as long as it is made of plain types: dicts, lists, tuples, str, int, float, bool,
None and tensors. No classes are pickled, so files stay loadable across code versions.

Files are written with the usual permissions (0o666 less the umask) through a temporary file
`.NAME.XXXXXXXX.tmp` beside them, renamed over NAME once complete. Every problem with a file
that is read (missing, truncated, foreign, too new, weights that do not fit) raises
`CheckpointError`, an `InputError`: the command line prints it as one line.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any

import torch

from avsep.config import to_dict
from avsep.faults import InputError
from avsep.models import Separator, create_model
from avsep.run_config import ConfigError, RunConfig, run_config_from_dict

FORMAT = "avsep-checkpoint"
VERSION = 1
_RESERVED = {"format", "version", "model_name", "model_kwargs", "state_dict", "config", "step"}
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)
_REQUIRED = ("model_name", "model_kwargs", "state_dict")
# The random part of a temporary name: 8 characters, as tempfile.mkstemp (which earlier
# versions used) and `_temporary_file` make them.
_TEMP_PART = r"[a-z0-9_]{8}"


class CheckpointError(InputError, ValueError):
    """A checkpoint file cannot be used: missing, truncated or corrupt, not an avsep
    checkpoint, written by a newer avsep, or holding weights that do not fit its model.

    The message starts with the file's path. A ValueError too, for callers that catch those.
    """


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (a FileNotFoundError too)."""


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint entry {where}: key {key!r} is not a str or int")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(
            f"checkpoint entry {where} is a {type(value).__name__}; only plain types "
            "(dict, list, tuple, str, int, float, bool, None, Tensor) can be stored"
        )


def _plain_config(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = to_dict(config)
    if not isinstance(config, dict):
        raise TypeError(f"checkpoint config must be a dict or dataclass, got {type(config)}")
    return config


def save_checkpoint(
    path: str | os.PathLike,
    model: Separator,
    step: int = 0,
    config: Any = None,
    **extra: Any,
) -> Path:
    """Write `model` (name, kwargs, weights), `config`, `step` and `extra` to `path` atomically.

    The file is written to a temporary file in the same folder and then renamed over
    `path`, so a crash never leaves a half-written checkpoint; the file gets the usual
    permissions (0o666 less the umask). Temporary files of `path` left by an earlier save that
    was killed (`.NAME.XXXXXXXX.tmp`) are deleted first: a folder is assumed to have one
    writer per checkpoint name (a run directory's main rank). Returns the path.
    """
    clashes = _RESERVED & set(extra)
    if clashes:
        raise ValueError(f"save_checkpoint: extra entries {sorted(clashes)} are reserved")
    model = getattr(model, "module", model)  # unwrap DDP / DataParallel
    if not hasattr(model, "model_name") or not hasattr(model, "model_kwargs"):
        raise TypeError(
            f"save_checkpoint: {type(model).__name__} has no model_name/model_kwargs; "
            "build models with avsep.create_model"
        )
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": model.model_name,
        "model_kwargs": dict(model.model_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": _plain_config(config),
        "step": int(step),
        **extra,
    }
    _check_plain(payload, "checkpoint")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = _temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _temporary_file(path: Path) -> tuple[int, str]:
    """A new file `.NAME.XXXXXXXX.tmp` beside `path`, opened for writing: (fd, its path).

    Created with mode 0o666 so that the umask applies, as for any file the user writes
    (tempfile.mkstemp makes 0600 files, which other users of a shared run folder could not
    read after the rename).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:  # another attempt's name: draw again
            continue


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed `save_checkpoint(path)` left beside `path`.

    A SIGKILL (or a power cut) during a save leaves `.NAME.XXXXXXXX.tmp`, as large as a
    checkpoint, which no handler can remove; the next save of the same name does. Returns
    the files removed.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{_TEMP_PART}\.tmp")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
    return removed


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """What a file written by `torch.save` holds, loaded with weights_only=True (tensors and
    plain values only: a pickled object is refused, never run).

    A damaged tensor in a zip checkpoint would load as garbage weights (torch does not check
    the archive's CRCs), so the CRCs are checked first.

    Raises:
        CheckpointNotFoundError: `path` does not exist (a FileNotFoundError too).
        CheckpointError: a folder, unreadable, truncated, corrupt, or holding Python objects.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: checkpoint not found")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise CheckpointError(f"{path}: truncated or corrupt: {exc}") from None
        if damaged is not None:
            raise CheckpointError(f"{path}: truncated or corrupt: its entry {damaged!r} fails "
                                  "its checksum")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:
        if isinstance(exc, RuntimeError) and "deserialize object on a CUDA device" in str(exc):
            raise  # the machine lacks the device asked for: not the file's fault
        raise CheckpointError(_unreadable(path, exc)) from exc


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, loaded with weights_only=True and checked for the format.

    Raises:
        CheckpointNotFoundError: `path` does not exist (a FileNotFoundError too).
        CheckpointError: `path` is a folder, cannot be read, is truncated or corrupt, holds
            Python objects (refused by weights_only, never executed), is not an avsep
            checkpoint, lacks the model entries, or was written by a newer version.
    """
    path = Path(path)
    payload = load_torch_file(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not an avsep checkpoint (no format={FORMAT!r} entry; original SoP "
            "weights are converted with `avsep import-sop`)"
        )
    version = payload.get("version", 0)
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: truncated or corrupt: its version is {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {version} is newer than this avsep "
            f"understands ({VERSION}); update avsep to read it"
        )
    missing = [key for key in _REQUIRED if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: truncated or corrupt: an avsep checkpoint without "
                              f"its {', '.join(missing)} entries")
    return payload


def _unreadable(path: Path, exc: Exception) -> str:
    """Why torch.load failed on `path`, in one line that starts with the path."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found or "Unsupported global" in text:
            what = f" ({found.group(1)})" if found else ""
            return (f"{path}: not an avsep checkpoint: it holds Python objects{what} that are "
                    "not loaded, for safety (avsep checkpoints hold only tensors and plain "
                    "values)")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as stat_error:
        return f"{path}: cannot be read ({stat_error.strerror or stat_error})"
    if "legacy .tar format" in text:
        return (f"{path}: not an avsep checkpoint: a file in torch's legacy .tar format, "
                "which is not loaded, for safety (avsep checkpoints are zip archives)")
    if size == 0:
        reason = "the file is empty"
    elif head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        reason = f"the archive's end is missing (the file was cut short at {size} bytes)"
    elif "PytorchStreamReader " in text:  # "...failed reading zip archive: <why>. This is..."
        reason = text.partition("PytorchStreamReader ")[2].split(". ", 1)[0]
    elif "WeightsUnpickler error:" in text:  # "...error: \n\nUnsupported operand 0\n\n..."
        detail = text.partition("WeightsUnpickler error:")[2].strip().splitlines()
        reason = f"its data is not a PyTorch checkpoint's ({detail[0] if detail else 'unreadable'})"
    else:
        first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else ""
        reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return f"{path}: truncated or corrupt: {reason}"


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> tuple[Separator, dict[str, Any]]:
    """Rebuild the model saved at `path` through the registry and load its weights.

    Args:
        path: a file written by `save_checkpoint`.
        map_location: where tensors are loaded; if it names a device the model is moved
            there too.

    Returns:
        (model in eval mode, the raw checkpoint dict with config, step and extra entries).

    Raises:
        CheckpointError: see `read_checkpoint`; also when the weights do not fit the model
            the file names (CheckpointNotFoundError when the file is missing).
    """
    payload = read_checkpoint(path, map_location)
    try:
        # The weights come from the file: never look for ImageNet weights again.
        model = create_model(payload["model_name"], initialise=False,
                             **payload["model_kwargs"])
    except (ValueError, TypeError) as exc:  # an unknown model or argument
        raise CheckpointError(f"{path}: cannot rebuild its model: {exc}") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit model {payload['model_name']!r}: "
                              f"{_one_line(exc)}") from None
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval(), payload


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """torch's multi-line state-dict message ('Error(s) in loading...:\n\tsize mismatch for
    a: ...\n\t...') as one line of at most `limit` characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = "; ".join(lines[1:] if len(lines) > 1 else lines) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def training_config(payload: dict[str, Any], path: str | os.PathLike[str]) -> RunConfig:
    """The training config a checkpoint recorded, parsed back into its types
    (`avsep.run_config.run_config_from_dict`; defaults when it records none, e.g. imported
    original weights). Clip geometry: `.data.clip`; mixing: `.data.mixing`.

    Raises:
        CheckpointError: the recorded config cannot be read back (it names `path`).
    """
    try:
        return run_config_from_dict(payload.get("config"))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its training config cannot be read ({exc})") from None
