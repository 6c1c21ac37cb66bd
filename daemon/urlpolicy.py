"""The one URL policy: which URLs may carry the API key or a tool's headers.

Used by the config checks (``realtime.url``, ``mcp_servers[].url``), by
RealtimeSession and by the MCP server setup, so the rule is written once:

- encrypted schemes (``wss``, ``https``) go anywhere allowed;
- cleartext schemes (``ws``, ``http``) only to a *literal* loopback address
  (127.0.0.0/8, ::1, an IPv4-mapped 127.x) or the name ``localhost``. The host is
  parsed with urllib.parse and ipaddress, never by string prefix, so
  ``127.0.0.1.example.test`` is a DNS name and refused;
- for MCP also no link-local or cloud metadata targets (169.254.0.0/16, fe80::/10,
  fd00:ec2::254, 100.100.100.200, ``metadata.google.internal``).

Every refusal is a UrlPolicyError naming the key and the rule.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# Cloud instance metadata endpoints that are not link-local (the link-local ones,
# 169.254.169.254 and friends, are refused as a range).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)


class UrlPolicyError(ValueError):
    """A URL the policy refuses; ``key`` names the setting, ``rule`` the broken rule."""

    def __init__(self, key: str, rule: str, message: str) -> None:
        super().__init__(f"{key}: {message} (rule: {rule})")
        self.key = key
        self.rule = rule


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """True for a literal loopback address or exactly ``localhost`` (any case).

    ``host`` is urlsplit's ``hostname`` (no brackets). A DNS name that merely starts
    with "127." is not loopback: it resolves wherever its owner wants.
    """
    if host.lower() == "localhost":
        return True
    addr = _address(host)
    if addr is None:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def is_metadata_host(host: str) -> bool:
    """Link-local addresses and the cloud metadata endpoints (an SSRF's favourite)."""
    if host.lower().rstrip(".") in METADATA_HOSTS:
        return True
    addr = _address(host)
    if addr is None:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_link_local or addr in METADATA_ADDRESSES


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is loopback by :func:`is_loopback_host`."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    return bool(host) and is_loopback_host(host or "")


def needs_api_key(url: str) -> bool:
    """True unless ``url`` is loopback: only a local server (the simulator) goes without
    the API key. The one place the appliance, the CLI and the SDK session decide it."""
    return not is_loopback_url(url)


def check_url(
    url: str, key: str, *, schemes: tuple[str, str], refuse_metadata: bool = False
) -> str:
    """Check ``url`` for the setting ``key``; returns its host, raises UrlPolicyError.

    ``schemes`` is (encrypted, cleartext), e.g. ("wss", "ws") for the Realtime
    websocket or ("https", "http") for MCP. ``refuse_metadata`` adds the
    link-local/metadata rule (URLs fetched on someone else's network).
    """
    secure, clear = schemes
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UrlPolicyError(key, "syntax", f"not a valid URL ({exc}): {url!r}") from None
    if parts.scheme not in schemes or not host:
        raise UrlPolicyError(
            key, "scheme", f"expected a {secure}:// URL ({clear}:// to loopback), got {url!r}"
        )
    if parts.scheme == clear and not is_loopback_host(host):
        raise UrlPolicyError(
            key,
            "cleartext-loopback-only",
            f"{clear}:// is allowed only to 127.0.0.0/8, ::1 or localhost, got host {host!r}; "
            f"use {secure}://",
        )
    if refuse_metadata and is_metadata_host(host):
        raise UrlPolicyError(
            key, "no-link-local", f"link-local and cloud metadata hosts are refused, got {host!r}"
        )
    return host
