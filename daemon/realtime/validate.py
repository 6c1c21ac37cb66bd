"""Protocol oracle: check messages against the `openai` package's own realtime types.

`openai` is a test/dev dependency. The simulator validates every client
message with it when installed (as the real server would reject them) and the
test suite checks every message both ways. The models accept extra keys, so
``model_extra`` is walked to reject unknown ones, like the real server's
``unknown_parameter`` error.
"""

from __future__ import annotations

import functools
from typing import Any


class ProtocolViolation(Exception):
    """A message the real API would reject; ``param`` names the offending key path."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def available() -> bool:
    """True if the ``openai`` package (the protocol oracle's types) is installed."""
    try:
        import openai.types.realtime  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _adapters() -> tuple[Any, Any]:
    from typing import Annotated

    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
    from pydantic import Field, TypeAdapter

    client: TypeAdapter[Any] = TypeAdapter(
        Annotated[RealtimeClientEvent, Field(discriminator="type")]
    )
    server: TypeAdapter[Any] = TypeAdapter(
        Annotated[RealtimeServerEvent, Field(discriminator="type")]
    )
    return client, server


def _unknown_keys(model: Any, path: str) -> list[str]:
    from pydantic import BaseModel

    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}.{key}" if path else key)
        for name in type(model).model_fields:
            found.extend(_unknown_keys(getattr(model, name), f"{path}.{name}" if path else name))
    elif isinstance(model, list | tuple):
        for i, item in enumerate(model):
            found.extend(_unknown_keys(item, f"{path}[{i}]"))
    elif isinstance(model, dict):
        for key, item in model.items():
            found.extend(_unknown_keys(item, f"{path}.{key}" if path else str(key)))
    return found


# The real server sends these on session.created/updated though the GA types lack them.
_SERVER_EXTRAS = frozenset({"session.id", "session.object", "session.expires_at"})


def _check(adapter: Any, message: dict[str, Any], allowed: frozenset[str] = frozenset()) -> Any:
    from pydantic import ValidationError

    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolViolation(
            "The event must be a JSON object with a string 'type'.", code="invalid_event"
        )
    try:
        model = adapter.validate_python(message)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"][1:]) or None
        if first["type"] == "union_tag_invalid":
            raise ProtocolViolation(
                f"Invalid value: '{message['type']}'. Unsupported event type.",
                code="invalid_value",
                param="type",
            ) from None
        raise ProtocolViolation(
            f"Invalid value at '{loc}': {first['msg']}", code="invalid_value", param=loc
        ) from None
    unknown = [k for k in _unknown_keys(model, "") if k not in allowed]
    if unknown:
        raise ProtocolViolation(
            f"Unknown parameter: '{unknown[0]}'.", code="unknown_parameter", param=unknown[0]
        )
    return model


def check_client(message: dict[str, Any]) -> Any:
    """Validate a client event; raises ProtocolViolation."""
    return _check(_adapters()[0], message)


def check_server(message: dict[str, Any]) -> Any:
    """Validate a server event; raises ProtocolViolation."""
    return _check(_adapters()[1], message, _SERVER_EXTRAS)
