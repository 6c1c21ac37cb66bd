"""RealtimeAgent: who answers, with which instructions, tools, handoffs and guardrails.

Definable in Python (tools as FunctionTools or callables, handoffs as agents)
or in config.toml (``[[agents]]``, tools and handoffs by name). Only the first
(default) agent's voice is used: the voice cannot change once audio went out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from daemon.vocab import Voice

from .guardrails import OutputGuardrail
from .tools import FunctionTool


@dataclass(frozen=True, kw_only=True, eq=False)
class RealtimeAgent:
    name: str
    instructions: str = ""
    voice: Voice | Literal[""] = ""  # "" keeps the session's voice
    handoff_description: str = ""
    # FunctionTools, plain callables, or names of runtime tools ("*" = all of them).
    tools: tuple[FunctionTool | Callable[..., Any] | str, ...] = ()
    # Agents, or their names, this agent can transfer the conversation to.
    handoffs: tuple[RealtimeAgent | str, ...] = ()
    # MCP server labels this agent uses; None = every configured server.
    mcp_servers: tuple[str, ...] | None = None
    output_guardrails: tuple[OutputGuardrail, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("RealtimeAgent.name: expected a non-empty name")
        # Lists are friendlier to write; tuples keep the agent immutable.
        for attr in ("tools", "handoffs", "output_guardrails"):
            value = getattr(self, attr)
            if not isinstance(value, tuple):
                object.__setattr__(self, attr, tuple(value))
        if self.mcp_servers is not None and not isinstance(self.mcp_servers, tuple):
            object.__setattr__(self, "mcp_servers", tuple(self.mcp_servers))

    def __repr__(self) -> str:
        return f"RealtimeAgent(name={self.name!r})"
