"""Remote MCP servers (``[[mcp_servers]]``) as GA ``mcp`` tools in session.update.

Header values may name credentials as ``${credential:NAME}``: the secret is
read like the API key, from ``$CREDENTIALS_DIRECTORY/NAME`` (systemd
LoadCredential=) or else the environment variable NAME upper-cased with
``-``/``.`` as ``_``. Resolved values are ``Secret`` strings whose repr is
masked, so a logged SessionSettings or tool dict never shows them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import CREDENTIAL_REF, ConfigError, McpServerConfig
from daemon.urlpolicy import check_url


class Secret(str):
    """A str that serialises as itself (JSON) but never shows in a repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def credential(name: str, environ: Mapping[str, str]) -> str | None:
    """A credential by name: the systemd credential file first, then the environment."""
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        try:
            value = (Path(cred_dir) / name).read_text(encoding="utf-8").strip()
        except OSError:
            value = ""
        if value:
            return value
    value = environ.get(re.sub(r"[-.]", "_", name).upper(), "").strip()
    return value or None


def resolve_headers(
    headers: Mapping[str, str], environ: Mapping[str, str], path: str
) -> dict[str, str]:
    """Headers with every ``${credential:NAME}`` filled in; ConfigError if one is missing."""
    out: dict[str, str] = {}
    for key, template in headers.items():
        secret = False
        value = template
        for m in CREDENTIAL_REF.finditer(template):
            found = credential(m.group(1), environ)
            if found is None:
                env = re.sub(r"[-.]", "_", m.group(1)).upper()
                raise ConfigError(
                    f"{path}.headers.{key}",
                    f"credential {m.group(1)!r} not found ($CREDENTIALS_DIRECTORY/{m.group(1)} "
                    f"or ${env})",
                )
            value = value.replace(m.group(0), found)
            secret = True
        # A literal header may be a pasted token too: mask every header value.
        out[key] = Secret(value) if secret or value else value
    return out


@dataclass(frozen=True, kw_only=True)
class McpServer:
    label: str
    url: str
    description: str = ""
    allowed_tools: tuple[str, ...] = ()
    require_approval: str = "never"
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # The URL policy (daemon.urlpolicy) for embedders too; UrlPolicyError is a ValueError.
        check_url(
            self.url,
            f"mcp server {self.label!r} url",
            schemes=("https", "http"),
            refuse_metadata=True,
        )

    def tool(self) -> dict[str, Any]:
        """The GA ``{"type": "mcp", ...}`` tool entry."""
        entry: dict[str, Any] = {
            "type": "mcp",
            "server_label": self.label,
            "server_url": self.url,
            "require_approval": self.require_approval,
        }
        if self.description:
            entry["server_description"] = self.description
        if self.allowed_tools:
            entry["allowed_tools"] = list(self.allowed_tools)
        if self.headers:
            entry["headers"] = dict(self.headers)
        return entry


def servers_from_config(
    cfgs: tuple[McpServerConfig, ...], environ: Mapping[str, str]
) -> tuple[McpServer, ...]:
    return tuple(
        McpServer(
            label=c.label,
            url=c.url,
            description=c.description,
            allowed_tools=c.allowed_tools,
            require_approval=c.require_approval,
            headers=resolve_headers(c.headers, environ, f"mcp_servers[{i}]"),
        )
        for i, c in enumerate(cfgs)
    )
