"""Rendering: the effective config as plain data, as TOML, and as the README's table."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, get_args, get_origin

from .schema import Config


def to_dict(obj: object, *, redact: bool = True) -> dict[str, Any]:
    """The effective config as plain data, secrets redacted."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value, redact=redact)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            out[f.name] = [to_dict(v, redact=redact) for v in value]
        elif isinstance(value, dict) and any(dataclasses.is_dataclass(v) for v in value.values()):
            out[f.name] = {k: to_dict(v, redact=redact) for k, v in value.items()}
        elif redact and isinstance(value, dict) and f.metadata.get("secret"):
            out[f.name] = {k: "<redacted>" for k in value}
        elif redact and f.metadata.get("secret") and value:
            out[f.name] = "<redacted>"
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(cfg: Config, *, redact: bool = True) -> str:
    """Render the effective config as TOML (what `voicepi check-config` prints).

    Written by ``tomli_w``, so quoting (a dotted ``tooling.policy`` key, control
    characters) is right and the output is valid input again.
    """
    import tomli_w

    return tomli_w.dumps(to_dict(cfg, redact=redact))


def field_docs(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, default, doc) rows for the README's config reference."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            rows.extend(field_docs(tp, path))
            continue
        item_tp = get_args(tp)[0] if get_origin(tp) is tuple else None
        if dataclasses.is_dataclass(item_tp) and isinstance(item_tp, type):
            rows.extend(field_docs(item_tp, f"{path}[]"))  # [[array]] of tables
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        shown = _toml_value(list(default) if isinstance(default, tuple) else default)
        rows.append((path, shown, str(f.metadata.get("doc", ""))))
    return rows
