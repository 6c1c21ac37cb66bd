"""Loading: TOML bytes -> data -> a checked Config, or one ConfigError naming the key.

One generic loader walks the dataclass tree (schema.py), so every section gets
the same checks for free: unknown keys, types, choices and ranges, each reported
as a single line naming the key path (``realtime.voice: expected one of ...``).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from .checks import check_object
from .errors import ConfigError, exit_config_error
from .schema import Config

DEFAULT_PATH = Path("/etc/voicepi/config.toml")

T = TypeVar("T")


def _describe(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _convert(tp: Any, value: object, path: str, meta: Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {_describe(value)}")
        return _build(tp, value, path)
    if origin is Literal:
        choices = get_args(tp)
        if isinstance(value, str) and value not in choices:  # "DEBUG" means "debug"
            folded = {c.lower(): c for c in choices if isinstance(c, str)}
            value = folded.get(value.lower(), value)
        if value not in choices:
            shown = ", ".join(repr(c) if c == "" else str(c) for c in choices)
            raise ConfigError(path, f"expected one of {shown}, got {_describe(value)}")
        return value
    if origin in (types.UnionType, typing.Union):
        errors = []
        for arg in get_args(tp):
            try:
                return _convert(arg, value, path, meta)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(path, " or ".join(errors))
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        return tuple(_convert(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if origin is dict:
        _key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {_describe(value)}")
        return {str(k): _convert(val_tp, v, f"{path}.{k}", meta) for k, v in value.items()}
    if tp is type(None):
        if value is not None:
            raise ConfigError(path, f"expected nothing, got {_describe(value)}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        return _check_range(value, path, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {_describe(value)}")
        return _check_range(float(value), path, meta)
    if tp is str:
        if meta.get("index") and type(value) is int and value >= 0:
            return str(value)  # audio.input = 3: the device with index 3
        if not isinstance(value, str):
            wanted = "a string or a device index" if meta.get("index") else "a string"
            raise ConfigError(path, f"expected {wanted}, got {_describe(value)}")
        return value
    raise ConfigError(path, f"unsupported type {tp!r}")  # pragma: no cover - schema bug


def _check_range(value: float, path: str, meta: Mapping[str, Any]) -> Any:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(path, f"expected a value from {lo:g} to {hi:g}, got {value!r}")
    if isinstance(value, float) and value != value:  # NaN passes both comparisons
        raise ConfigError(path, "expected a number, got nan")
    return value


def _build(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(path, f"unknown key (known keys here: {known})")
        kwargs[key] = _convert(hints[key], value, path, fields[key].metadata)
    obj = cls(**kwargs)
    check_object(obj, prefix)
    return obj


def parse(data: Mapping[str, Any]) -> Config:
    """Build a Config from already-decoded TOML data; raises ConfigError."""
    return _build(Config, data)


def load(path: Path | str | None = None) -> Config:
    """Read a config file; a missing default file means all defaults."""
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError("", f"config file {file} not found") from None
        return Config()
    except OSError as exc:
        raise ConfigError("", f"cannot read {file}: {exc.strerror}") from None
    return parse(decode_toml(raw, file))


def decode_toml(raw: bytes, file: Path | str) -> dict[str, Any]:
    """TOML bytes -> data; ConfigError (one line, with line and column) for anything else.

    A leading UTF-8 byte order mark (Windows editors write one) is skipped; other
    non-UTF-8 bytes are named by line and column, not a UnicodeDecodeError.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            "",
            f"{file}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, "
            f"column {column}); save the file as UTF-8",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{file}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit integer, [[[[...]]]] nesting
        raise ConfigError("", f"{file}: invalid TOML: {type(exc).__name__}: {exc}") from None


def load_or_exit(path: Path | str | None = None) -> Config:
    """The CLI's entry: one line on stderr and exit 78 on a bad config."""
    try:
        return load(path)
    except ConfigError as exc:
        exit_config_error(exc)


def replace(cfg: T, **changes: Any) -> T:
    return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]
