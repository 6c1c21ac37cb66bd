"""The failure vocabulary (daemon/realtime/failures.py): each cause gets its kind and code."""

from __future__ import annotations

import email.utils
import json
import socket
import ssl

import pytest

from daemon.realtime.failures import (
    from_exception,
    from_handshake,
    from_status_details,
    kind_of,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("type_", "code", "kind"),
    [
        ("server_error", None, "server"),
        ("invalid_request_error", "invalid_api_key", "auth"),
        ("insufficient_quota", "insufficient_quota", "quota"),
        ("requests", "rate_limit_exceeded", "rate_limit"),
        ("invalid_request_error", "model_not_found", "config"),
        ("invalid_request_error", "input_audio_buffer_commit_empty", None),
        ("invalid_request_error", "session_expired", None),  # a normal end, not a failure
        (None, None, None),
    ],
)
def test_server_error_kinds(type_: str | None, code: str | None, kind: str | None) -> None:
    assert kind_of(type_, code) == kind


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    when = email.utils.formatdate(1_000_060, usegmt=True)
    assert retry_after_seconds(when, now=1_000_000) == pytest.approx(60, abs=1)
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (401, b"", "auth", "http_401"),
        (403, b"<html>forbidden</html>", "auth", "http_403"),
        (404, b"", "config", "http_404"),
        (429, b"", "rate_limit", "http_429"),
        (502, b"bad gateway", "server", "http_502"),
        (
            429,
            json.dumps({"error": {"code": "insufficient_quota", "message": "quota"}}).encode(),
            "quota",
            "insufficient_quota",
        ),
    ],
)
def test_handshake_statuses(status: int, body: bytes, kind: str, code: str) -> None:
    info = from_handshake(status, body, None, None)
    assert (info.kind, info.code) == (kind, code)
    assert info.message.startswith(f"HTTP {status}")


def test_a_handshake_body_is_bounded_and_never_shows_the_key() -> None:
    info = from_handshake(401, b"key sk-SECRET " + b"x" * 5000, "5", "sk-SECRET")
    assert "sk-SECRET" not in info.message and len(info.message) < 300
    assert info.retry_after == 5.0


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection_refused"),
        (socket.gaierror(-2, "Name or service not known"), "dns_error"),
        (socket.gaierror(-3, "Temporary failure in name resolution"), "dns_error"),
        (ssl.SSLCertVerificationError("certificate verify failed"), "tls_error"),
        (TimeoutError("timed out"), "timeout"),
        (OSError(101, "Network is unreachable"), "connect_failed"),
    ],
)
def test_connect_exceptions_are_network_failures(exc: BaseException, code: str) -> None:
    info = from_exception(exc)
    assert (info.kind, info.code) == ("network", code)


def test_failed_response_details() -> None:
    info = from_status_details(
        "failed", {"type": "failed", "error": {"type": "server_error", "code": None}}
    )
    assert (info.kind, info.code) == ("server", "response_failed")
    info = from_status_details("failed", {"error": {"code": "rate_limit_exceeded"}})
    assert (info.kind, info.code) == ("rate_limit", "rate_limit_exceeded")
