"""What ``AgentRuntime.from_config`` builds from the config's agent tables.

``[[agents]]``, ``[[tools]]``, ``[tooling]``, ``[[mcp_servers]]`` and
``[guardrails]`` become the runtime's agents and keyword arguments; the
runtime's constructor checks the tool names against them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daemon.config import CREDENTIAL_REF, AgentConfig, Config, api_key
from daemon.realtime.settings import SessionSettings

from .agent import RealtimeAgent
from .command import ProcessLimit, command_tool
from .guardrails import OutputGuardrail, regex_guardrail
from .mcp import credential, servers_from_config
from .plugins import load_plugin_tools
from .tools import FunctionTool


def runtime_arguments(
    cfg: Config,
    *,
    environ: Mapping[str, str] | None = None,
    tools: Iterable[FunctionTool] = (),
    guardrails: Sequence[OutputGuardrail] = (),
) -> tuple[list[RealtimeAgent], dict[str, Any]]:
    """The agents and the ``AgentRuntime`` keyword arguments ``cfg`` describes.

    Raises ConfigError (naming the key) for a missing credential.
    """
    env = os.environ if environ is None else environ
    limit = ProcessLimit(cfg.tooling.max_processes)  # shared by every command tool
    extra = [
        command_tool(t, limit=limit, max_output_chars=cfg.tooling.max_output_chars, environ=env)
        for t in cfg.tools
    ] + list(tools)
    if cfg.tooling.plugins:
        plugin_tools, _problems = load_plugin_tools()  # problems are logged
        extra += plugin_tools
    agents_cfg = cfg.agents or (AgentConfig(),)
    agents = [
        RealtimeAgent(
            name=a.name,
            instructions=a.instructions or cfg.realtime.instructions,
            handoff_description=a.handoff_description,
            tools=a.tools,
            handoffs=a.handoffs,
            mcp_servers=None if "*" in a.mcp_servers else a.mcp_servers,
        )
        for a in agents_cfg
    ]
    every_guardrail = list(guardrails)
    if cfg.guardrails.patterns:
        every_guardrail.append(regex_guardrail(cfg.guardrails.patterns))
    mcp_servers = servers_from_config(cfg.mcp_servers, env)
    # What a tool's output must never show: the key and every credential header.
    secrets = [api_key(env) or ""]
    secrets += [
        credential(m.group(1), env) or ""
        for server in cfg.mcp_servers
        for template in server.headers.values()
        for m in CREDENTIAL_REF.finditer(template)
    ]
    return agents, {
        "tools": extra,
        "mcp_servers": mcp_servers,
        "secrets": secrets,
        "policy": cfg.tooling.policy,
        "guardrails": every_guardrail,
        "guardrail_every": cfg.guardrails.check_every,
        "tool_timeout": cfg.tooling.timeout,
        "approval_timeout": cfg.tooling.approval_timeout,
        "max_output_chars": cfg.tooling.max_output_chars,
        "base_settings": SessionSettings.from_config(cfg.realtime),
    }
