"""Function tools: Python callables whose JSON-schema parameters come from type hints.

``@function_tool`` turns ``def f(city: str, days: int = 1) -> str`` into a tool
the model can call; the arguments the model sends are checked against the
schema (``validate``) before the function runs, so a bad call becomes a clear
message to the model instead of a TypeError deep inside the tool.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from daemon.vocab import TOOL_NAME_RE

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's schema; the message says how."""


# --------------------------------------------------------------------------- schema


def _schema_for(tp: Any, where: str) -> dict[str, Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        schema = _schema_for(base, where)
        for m in meta:
            if isinstance(m, str):
                schema["description"] = m
        return schema
    if tp in _JSON_TYPES:
        return {"type": _JSON_TYPES[tp]}
    if origin is Literal:
        values = list(get_args(tp))
        kinds = {_JSON_TYPES.get(type(v)) for v in values}
        if len(kinds) != 1 or None in kinds:
            raise TypeError(f"{where}: Literal values must share one JSON type")
        return {"type": kinds.pop(), "enum": values}
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        item = _schema_for(args[0], where) if args else {}
        return {"type": "array", "items": item}
    if origin is dict or tp is dict:
        return {"type": "object"}
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _schema_for(args[0], where)
        return {"anyOf": [_schema_for(a, where) for a in args]}
    if tp is Any or tp is inspect.Parameter.empty:
        return {}
    raise TypeError(f"{where}: unsupported parameter type {tp!r}")


def schema_from_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of ``func``'s parameters (defaults make a parameter optional)."""
    hints = typing.get_type_hints(func, include_extras=True)
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        props[name] = _schema_for(hints.get(name, Any), f"{func.__name__}({name})")
        if param.default is param.empty:
            required.append(name)
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


# --------------------------------------------------------------------------- validation

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: Any, limit: int = 80) -> str:
    """A value's repr for an error message, cut (a 1 MB argument is not quoted whole)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def validate(schema: dict[str, Any], value: Any, path: str = "arguments") -> None:
    """Check ``value`` against the schema subset voicepi generates; ToolArgumentError."""
    if "anyOf" in schema:
        errors = []
        for sub in schema["anyOf"]:
            try:
                validate(sub, value, path)
                return
            except ToolArgumentError as exc:
                errors.append(str(exc))
        raise ToolArgumentError(" or ".join(errors))
    t = schema.get("type")
    if isinstance(t, str):
        ok = isinstance(value, _PY_TYPES[t]) and not (t != "boolean" and isinstance(value, bool))
        if not ok:
            raise ToolArgumentError(f"{path}: expected {t}, got {_kind(value)} {_shown(value)}")
    if "enum" in schema and value not in schema["enum"]:
        shown = ", ".join(json.dumps(v) for v in schema["enum"])
        raise ToolArgumentError(f"{path}: expected one of {shown}, got {_shown(value)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ToolArgumentError(f"{path}: expected {lo} to {hi}, got {value!r}")
    if (
        isinstance(value, str)
        and "pattern" in schema
        and re.fullmatch(schema["pattern"], value) is None
    ):
        raise ToolArgumentError(f"{path}: {_shown(value)} does not match {schema['pattern']!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict) and t == "object":
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise ToolArgumentError(f"{path}: missing required argument {name!r}")
        for name, item in value.items():
            if name in props:
                validate(props[name], item, f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                known = ", ".join(props) or "none"
                raise ToolArgumentError(f"{path}: unknown argument {name!r} (known: {known})")


def parse_arguments(schema: dict[str, Any], arguments_json: str) -> dict[str, Any]:
    """Decode and check the model's JSON arguments ("" counts as {})."""
    text = arguments_json.strip() or "{}"
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolArgumentError(f"arguments are not valid JSON ({exc.msg})") from None
    if not isinstance(args, dict):
        raise ToolArgumentError(f"arguments must be a JSON object, got {_kind(args)}")
    validate(schema, args)
    return args


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True, kw_only=True)
class FunctionTool:
    """A tool the model calls; ``func`` gets the validated arguments as keywords."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any] = field(repr=False)
    needs_approval: bool = False
    timeout: float | None = None  # None: the runtime's default (tooling.timeout)

    def __post_init__(self) -> None:
        if not TOOL_NAME_RE.match(self.name):
            raise ValueError(f"tool name {self.name!r}: expected 1-64 letters, digits, '_' or '-'")

    def schema(self) -> dict[str, Any]:
        """The GA ``session.update`` tool entry."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def parse(self, arguments_json: str) -> dict[str, Any]:
        return parse_arguments(self.parameters, arguments_json)

    async def invoke(self, args: dict[str, Any]) -> Any:
        result = self.func(**args)
        if inspect.isawaitable(result):
            result = await result
        return result


def _describe_func(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


@typing.overload
def function_tool(func: Callable[..., Any]) -> FunctionTool: ...


@typing.overload
def function_tool(
    func: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
    timeout: float | None = None,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
    timeout: float | None = None,
) -> Any:
    """Decorator (bare or with options) making a FunctionTool from a sync or async callable."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            name=name or f.__name__,
            description=description if description is not None else _describe_func(f),
            parameters=schema_from_hints(f),
            func=f,
            needs_approval=needs_approval,
            timeout=timeout,
        )

    return wrap(func) if func is not None else wrap


def as_tool(obj: FunctionTool | Callable[..., Any | Awaitable[Any]]) -> FunctionTool:
    """A FunctionTool as is, or a plain callable wrapped by ``function_tool``."""
    if isinstance(obj, FunctionTool):
        return obj
    if callable(obj):
        tool: FunctionTool = function_tool(obj)
        return tool
    raise TypeError(f"expected a FunctionTool or a callable, got {type(obj).__name__}")
