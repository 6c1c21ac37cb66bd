"""Issue 14: one URL policy for realtime.url, MCP URLs and RealtimeSession (daemon.urlpolicy)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from daemon import config
from daemon.agents.mcp import McpServer
from daemon.config import ConfigError
from daemon.realtime.session import RealtimeSession
from daemon.realtime.settings import SessionSettings
from daemon.urlpolicy import UrlPolicyError, check_url, is_loopback_host, needs_api_key

REALTIME = ("wss", "ws")
MCP = ("https", "http")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("wss://api.openai.com/v1/realtime", True),
        ("ws://127.0.0.1:8080/v1/realtime", True),
        ("ws://127.9.8.7/v1/realtime", True),
        ("ws://[::1]:8080/v1/realtime", True),
        ("ws://[::ffff:127.0.0.1]/v1/realtime", True),
        ("ws://localhost:8080/v1/realtime", True),
        ("ws://LOCALHOST/v1/realtime", True),
        # the repro: a DNS name that starts with 127.
        ("ws://127.0.0.1.example.test:8080/v1/realtime", False),
        ("ws://127.example.test/v1/realtime", False),
        ("ws://localhost.example.test/v1/realtime", False),
        ("ws://127.1/v1/realtime", False),  # not a literal address by ipaddress' rules
        ("ws://0x7f000001/v1/realtime", False),
        ("ws://10.0.0.5/v1/realtime", False),
        ("ws://[::2]/v1/realtime", False),
        ("ws://evil.test#@127.0.0.1/", False),
        ("http://127.0.0.1/v1/realtime", False),
        ("ws:///v1/realtime", False),
        ("ws://127.0.0.1:99999/", False),
    ],
)
def test_realtime_url_table(url: str, ok: bool) -> None:
    if ok:
        check_url(url, "realtime.url", schemes=REALTIME)
        config.parse({"realtime": {"url": url}})
        return
    with pytest.raises(UrlPolicyError, match=r"^realtime\.url: .*\(rule: [a-z-]+\)$"):
        check_url(url, "realtime.url", schemes=REALTIME)
    with pytest.raises(ConfigError, match=r"^realtime\.url: .*rule: "):
        config.parse({"realtime": {"url": url}})


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1.example.test/mcp", "cleartext-loopback-only"),
        ("https://169.254.169.254/latest/meta-data", "no-link-local"),
        ("https://[fe80::1]/mcp", "no-link-local"),
        ("https://[fd00:ec2::254]/mcp", "no-link-local"),
        ("https://100.100.100.200/mcp", "no-link-local"),
        ("https://metadata.google.internal/computeMetadata/v1", "no-link-local"),
        ("http://[::ffff:169.254.169.254]/", "cleartext-loopback-only"),
        ("https://[::ffff:169.254.169.254]/", "no-link-local"),
        ("ftp://mcp.example/", "scheme"),
    ],
)
def test_mcp_url_refusals(url: str, rule: str) -> None:
    with pytest.raises(ConfigError, match=rf"^mcp_servers\[0\]\.url: .*\(rule: {rule}\)"):
        config.parse({"mcp_servers": [{"label": "m", "url": url}]})
    with pytest.raises(ValueError, match=rf"rule: {rule}"):
        McpServer(label="m", url=url)


def test_mcp_urls_accepted() -> None:
    for url in ("https://mcp.example.com/mcp", "http://127.0.0.1:9000/mcp", "http://localhost/"):
        config.parse({"mcp_servers": [{"label": "m", "url": url}]})


def test_the_session_applies_the_policy() -> None:
    with pytest.raises(ValueError, match="cleartext-loopback-only"):
        RealtimeSession(
            SessionSettings(), url="ws://127.0.0.1.example.test:8080/v1/realtime", api_key="k"
        )
    # No key is needed for a loopback simulator, and only for one.
    RealtimeSession(SessionSettings(), url="ws://[::1]:8080/v1/realtime", api_key=None)
    with pytest.raises(ValueError, match="required for a non-loopback URL"):
        RealtimeSession(SessionSettings(), url="wss://127.0.0.1.example.test/", api_key=None)


_PIECES = st.sampled_from(
    [
        "127.0.0.1",
        "127",
        "0",
        "1",
        ".",
        "localhost",
        "example.test",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "::1",
        "@",
        ":",
        "%2e",
        "#",
        "/",
        "?",
        "\\",
        "0x7f",
        "[",
        "]",
        "-",
        "user:pw",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=6).map("".join))
def test_no_host_string_gets_cleartext_to_a_non_loopback_address(host: str) -> None:
    """Whatever the host text, an accepted ws:// URL is one websockets connects to a
    literal loopback address or localhost with (its own parser, not ours)."""
    url = f"ws://{host}/v1/realtime"
    try:
        check_url(url, "realtime.url", schemes=REALTIME)
    except UrlPolicyError:
        return
    try:
        target = parse_uri(url).host
    except InvalidURI:
        return  # websockets will not connect anywhere
    if target.lower() == "localhost":
        return
    addr = ipaddress.ip_address(target)  # a name would be resolved elsewhere: must not happen
    mapped = getattr(addr, "ipv4_mapped", None)
    assert (mapped or addr).is_loopback, url
    assert is_loopback_host(target)


def test_only_a_loopback_url_goes_without_the_api_key() -> None:
    assert needs_api_key("wss://api.openai.com/v1/realtime")
    assert needs_api_key("ws://127.0.0.1.example.test/v1/realtime")  # a DNS name
    assert not needs_api_key("ws://127.0.0.1:8765/v1/realtime")
    assert not needs_api_key("ws://[::1]:8765/v1/realtime")
    assert not needs_api_key("ws://localhost:8765/v1/realtime")
