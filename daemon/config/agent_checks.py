"""Cross-checks of the agents, tools, MCP and guardrails config (called by the loader).

Each problem is one ConfigError naming the key path, like every other config error.
The rules shared with the agents (argv placeholders, forbidden environment names,
credential references) are defined here, below the agents that apply them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from daemon.urlpolicy import UrlPolicyError, check_url
from daemon.vocab import BUILTIN_TOOL_NAMES, TOOL_NAME_RE

from .errors import ConfigError

if TYPE_CHECKING:
    from .schema import Config

# `{param}` in a command tool's argv: replaced by the validated argument.
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Never passed to a command tool, not even by its `env` allow-list: they lead to a secret.
FORBIDDEN_ENV = frozenset({"OPENAI_API_KEY", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET"})
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CREDENTIAL_REF = re.compile(r"\$\{credential:([A-Za-z0-9_.-]+)\}")


def _regex(pattern: str, path: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(path, f"invalid regex {pattern!r}: {exc}") from None


def _unique(names: list[str], what: str, key: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{what}[{i}].{key}", f"duplicate {key} {name!r}")
        seen.add(name)


def check_agents(cfg: Config) -> None:
    agent_names = [a.name for a in cfg.agents]
    _unique(agent_names, "agents", "name")
    _unique([t.name for t in cfg.tools], "tools", "name")
    _unique([m.label for m in cfg.mcp_servers], "mcp_servers", "label")
    for i, a in enumerate(cfg.agents):
        if not a.name.strip():
            raise ConfigError(f"agents[{i}].name", "expected a non-empty name")
        for j, target in enumerate(a.handoffs):
            if target not in agent_names or target == a.name:
                others = ", ".join(n for n in agent_names if n != a.name) or "none"
                raise ConfigError(
                    f"agents[{i}].handoffs[{j}]",
                    f"expected the name of another agent ({others}), got {target!r}",
                )
        labels = {m.label for m in cfg.mcp_servers}
        for j, label in enumerate(a.mcp_servers):
            if label != "*" and label not in labels:
                raise ConfigError(f"agents[{i}].mcp_servers[{j}]", f"no MCP server {label!r}")
    builtin = set(BUILTIN_TOOL_NAMES)
    for i, t in enumerate(cfg.tools):
        path = f"tools[{i}]"
        if not TOOL_NAME_RE.match(t.name):
            raise ConfigError(
                f"{path}.name", f"expected 1-64 letters, digits, _ or -, got {t.name!r}"
            )
        if t.name in builtin or t.name.startswith("transfer_to_"):
            raise ConfigError(f"{path}.name", f"{t.name!r} is reserved for a built-in tool")
        if not t.argv or not t.argv[0]:
            raise ConfigError(f"{path}.argv", "expected a command line (a non-empty list)")
        if PLACEHOLDER.search(t.argv[0]):
            raise ConfigError(f"{path}.argv[0]", "the program itself may not be an argument")
        for j, element in enumerate(t.argv):
            for m in PLACEHOLDER.finditer(element):
                if m.group(1) not in t.parameters:
                    raise ConfigError(
                        f"{path}.argv[{j}]", f"{{{m.group(1)}}} is not in {path}.parameters"
                    )
        for name, p in t.parameters.items():
            ppath = f"{path}.parameters.{name}"
            if p.pattern:
                _regex(p.pattern, f"{ppath}.pattern")
            if p.range and (len(p.range) != 2 or p.range[0] > p.range[1]):
                raise ConfigError(f"{ppath}.range", f"expected [min, max], got {list(p.range)}")
            if p.type == "path" and not p.base_dir.startswith("/"):
                raise ConfigError(
                    f"{ppath}.base_dir",
                    f'a "path" parameter needs an absolute base_dir, got {p.base_dir!r}',
                )
            if p.base_dir and p.type != "path":
                raise ConfigError(f"{ppath}.base_dir", 'only a "path" parameter has a base_dir')
        for j, name in enumerate(t.env):
            if not ENV_NAME.fullmatch(name):
                raise ConfigError(f"{path}.env[{j}]", f"expected a variable name, got {name!r}")
            if name in FORBIDDEN_ENV:
                raise ConfigError(
                    f"{path}.env[{j}]", f"{name} is never passed to a tool (it leads to a secret)"
                )
    for i, server in enumerate(cfg.mcp_servers):
        path = f"mcp_servers[{i}]"
        if not TOOL_NAME_RE.match(server.label):
            raise ConfigError(
                f"{path}.label", f"expected letters, digits, _ or -, got {server.label!r}"
            )
        try:
            check_url(server.url, f"{path}.url", schemes=("https", "http"), refuse_metadata=True)
        except UrlPolicyError as exc:
            raise ConfigError(exc.key, str(exc).removeprefix(f"{exc.key}: ")) from None
    for i, pattern in enumerate(cfg.guardrails.patterns):
        _regex(pattern, f"guardrails.patterns[{i}]")
    for name in cfg.tooling.policy:
        if not name:
            raise ConfigError("tooling.policy", "expected tool names as keys")
