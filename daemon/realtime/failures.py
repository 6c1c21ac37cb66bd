"""Failures the owner must see, typed: one vocabulary of kinds and the classifiers.

A *failure* is an ``error`` event whose ``ErrorInfo.kind`` is set: the session
(or the wake that would have started one) cannot go on, so the appliance shows
the ``error`` state and LED briefly, then idle. Errors without a kind (a bad
frame, a failing tool, ``response_cancel_not_active``) are reported but end
nothing.

Kinds: ``network`` (DNS, refused, TLS, timeout, a dead link), ``auth`` (no key,
401/403, ``invalid_api_key``), ``quota`` (``insufficient_quota``),
``rate_limit`` (429, ``rate_limit_exceeded``; ``retry_after`` in seconds when the
server says), ``server`` (5xx, ``server_error``, a failed or timed-out response)
and ``config`` (a URL or model the server does not know).

Sources of the server's ``code`` and ``message``: the handshake's HTTP response
body (``{"error": {"message", "type", "code"}}``, the OpenAI REST error shape),
``error`` server events, and ``response.done`` ``status_details.error``.
"""

from __future__ import annotations

import email.utils
import json
import socket
import ssl
import time
from typing import Any, Literal, get_args

from daemon.events import ErrorInfo

ErrorKind = Literal["network", "auth", "quota", "rate_limit", "server", "config"]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)

MESSAGE_LIMIT = 200  # characters of a server's message kept (a body may be a whole HTML page)

_CODE_KINDS: dict[str, ErrorKind] = {
    "invalid_api_key": "auth",
    "missing_api_key": "auth",
    "insufficient_quota": "quota",
    "rate_limit_exceeded": "rate_limit",
    "server_error": "server",
    "model_not_found": "config",
}
_TYPE_KINDS: dict[str, ErrorKind] = {
    "authentication_error": "auth",
    "insufficient_quota": "quota",
    "rate_limit_exceeded": "rate_limit",
    "server_error": "server",
}


class RealtimeFailure(ConnectionError):
    """A failure with its typed ``ErrorInfo`` (``kind`` set); str() is the message."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


def _short(text: str, secret: str | None = None) -> str:
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def kind_of(type_: str | None, code: str | None) -> ErrorKind | None:
    """The failure kind a server error ``type``/``code`` names; None if it ends nothing."""
    if code and code in _CODE_KINDS:
        return _CODE_KINDS[code]
    if type_ and type_ in _TYPE_KINDS:
        return _TYPE_KINDS[type_]
    return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (RFC 9110: delay-seconds or an HTTP date) in seconds; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def from_handshake(
    status: int, body: bytes, retry_after: str | None, secret: str | None
) -> ErrorInfo:
    """A refused websocket handshake (HTTP ``status``) as a typed failure."""
    err: dict[str, Any] = {}
    try:
        parsed = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        err = parsed["error"]
    code = err.get("code") if isinstance(err.get("code"), str) else None
    type_ = err.get("type") if isinstance(err.get("type"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    if not message:
        message = body.decode("utf-8", "replace") if body and not parsed else ""
    kind = kind_of(type_, code)
    if kind is None:
        if status in (401, 403):
            kind = "auth"
        elif status == 429:
            kind = "rate_limit"
        elif status in (400, 404):
            kind = "config"
        elif status >= 500:
            kind = "server"
        else:
            kind = "network"
    text = f"HTTP {status}" + (f": {_short(message, secret)}" if message else "")
    return ErrorInfo(
        type=type_ or "handshake_rejected",
        message=text,
        code=code or f"http_{status}",
        kind=kind,
        retry_after=retry_after_seconds(retry_after),
    )


def from_exception(exc: BaseException, secret: str | None = None) -> ErrorInfo:
    """A failure to connect (any exception ``connect()`` raised) as a typed failure."""
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, RealtimeFailure):
        return exc.info
    if isinstance(exc, InvalidStatus):
        resp = exc.response
        return from_handshake(
            resp.status_code, bytes(resp.body or b""), resp.headers.get("Retry-After"), secret
        )
    name = type(exc).__name__
    text = _short(str(exc), secret)
    if isinstance(exc, TimeoutError):
        code = "timeout"
    elif isinstance(exc, ssl.SSLError):
        code = "tls_error"
    elif isinstance(exc, ConnectionRefusedError):
        code = "connection_refused"
    elif isinstance(exc, socket.gaierror):
        code = "dns_error"
    else:
        code = "connect_failed"
    return ErrorInfo(
        type="network_error", message=f"{name}: {text}" if text else name, code=code, kind="network"
    )


def from_status_details(status: str, details: dict[str, Any]) -> ErrorInfo:
    """``response.done`` with ``status: "failed"``: ``status_details.error`` as a failure."""
    err = details.get("error")
    err = err if isinstance(err, dict) else {}
    code = err.get("code") if isinstance(err.get("code"), str) else None
    type_ = err.get("type") if isinstance(err.get("type"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else ""
    reason = details.get("reason") if isinstance(details.get("reason"), str) else ""
    text = f"response {status}" + (f": {type_}" if type_ else "") + (f" ({code})" if code else "")
    if message:
        text += f": {_short(message)}"
    elif reason:
        text += f": {reason}"
    return ErrorInfo(
        type=type_ or "response_failed",
        message=text,
        code=code or "response_failed",
        kind=kind_of(type_, code) or "server",
    )


def missing_key(where: str) -> ErrorInfo:
    """The typed failure of a wake without an API key; ``where`` says where it was looked for."""
    return ErrorInfo(
        type="authentication_error",
        message=f"no OpenAI API key (looked for {where})",
        code="missing_api_key",
        kind="auth",
    )


class MissingApiKey(RealtimeFailure, ValueError):
    """No API key for a non-loopback URL: a typed ``auth`` failure."""


class ConnectTimeout(RealtimeFailure, TimeoutError):
    """Not configured within connect_timeout: a typed ``network`` failure."""
