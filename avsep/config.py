"""Typed, frozen dataclass configs from YAML mappings and type-checked `key=value` overrides.

The machinery under `avsep.run_config` (which holds the run's config tree and reads it from
presets and checkpoints): `from_dict(cls, mapping)` builds a tree of frozen dataclasses and
checks every key and type against the fields, so a typo is an error that names the key
instead of a silently ignored setting; `apply_overrides` applies `train.lr=0.01` or
`model.kwargs.ngf=32` to a mapping; `to_dict` and `save_config` write a config back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from avsep.faults import InputError

T = TypeVar("T")


class ConfigError(InputError, ValueError):
    """A preset or override does not match the config's fields or types."""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a YAML/CLI value to `annotation`, or raise ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: {value!r} matches none of {annotation}")
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{key}: {value!r} is not one of {typing.get_args(annotation)}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {annotation.__name__}")
        return from_dict(annotation, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from a nested mapping; unknown keys are errors."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        known = ", ".join(sorted(types_))
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!s} (known: {known})")
    kwargs = {name: _coerce(value, types_[name], f"{prefix}{name}") for name, value in data.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict (YAML/JSON friendly) of a dataclass config."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    result: dict[str, Any] = plain(config)
    return result


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], cls: type
                    ) -> dict[str, Any]:
    """Apply `dotted.key=value` strings (values parsed as YAML) to a nested dict.

    Keys are checked against `cls` so that an unknown key fails with its full dotted name;
    keys below a free-form `dict` field (such as `model.kwargs.ngf`) are accepted as given.
    """
    data = to_dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        node_cls: type | None = cls
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if node_cls is not None:
                types_ = _field_types(node_cls)
                if part not in types_:
                    known = ", ".join(sorted(types_))
                    raise ConfigError(f"unknown config key {key!r} (known at this level: {known})")
                annotation = types_[part]
                node_cls = (annotation if isinstance(annotation, type)
                            and dataclasses.is_dataclass(annotation) else None)
            if last:
                node[part] = yaml.safe_load(raw)
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"override {key!r}: {part!r} is not a mapping")
    return data


def read_mapping(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in the file at `path` (an empty file is an empty mapping).

    Raises:
        ConfigError: the file holds something other than a mapping.
        FileNotFoundError: no file at `path`.
    """
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a YAML mapping")
    return data


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`base` updated by `update`, mappings merged key by key (neither input changes)."""
    out = dict(base)
    for key, value in update.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = merge(current, value)
        else:
            out[key] = value
    return out


def save_config(config: Any, path: str | Path) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(to_dict(config), f, sort_keys=False)
