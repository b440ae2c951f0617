"""Checkpoints that load with `torch.load(weights_only=True)` and rebuild through the registry.

A checkpoint is one file holding a plain dict:

    {"format": "avsep-checkpoint", "version": 1,
     "model_name": str, "model_kwargs": dict, "state_dict": {name: tensor},
     "config": dict, "step": int, **extra}

`extra` holds whatever the caller adds (optimizer / scheduler state, best validation loss,
...), as long as it is made of plain types: dicts, lists, tuples, str, int, float, bool,
None and tensors. No classes are pickled, so files stay loadable across code versions.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from avsep.config import to_dict
from avsep.models import Separator, create_model

FORMAT = "avsep-checkpoint"
VERSION = 1
_RESERVED = {"format", "version", "model_name", "model_kwargs", "state_dict", "config", "step"}
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


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
    `path`, so a crash never leaves a half-written checkpoint. Returns the path.
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, loaded with weights_only=True and checked for the format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not an avsep checkpoint (no format={FORMAT!r} entry; original SoP "
            "weights are converted with `avsep import-sop`)"
        )
    if payload.get("version", 0) > VERSION:
        raise ValueError(
            f"{path}: checkpoint version {payload['version']} is newer than this avsep "
            f"understands ({VERSION})"
        )
    return payload


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
    """
    payload = read_checkpoint(path, map_location)
    # The weights come from the file: never look for ImageNet weights again.
    kwargs = dict(payload["model_kwargs"])
    if "pretrained" in kwargs:
        kwargs["pretrained"] = False
    model = create_model(payload["model_name"], **kwargs)
    model.model_kwargs = dict(payload["model_kwargs"])
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit model {payload['model_name']!r}: {exc}"
                         ) from None
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval(), payload
