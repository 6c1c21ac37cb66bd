"""Handoffs: ``transfer_to_<agent>`` tools and the events a switch of agent emits.

The realtime session stays the same: a handoff is a session.update with the
new agent's instructions and tools (the voice stays, it cannot change).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from daemon import events as ev

from .agent import RealtimeAgent
from .tools import FunctionTool

PREFIX = "transfer_to_"


def handoff_tool_name(agent_name: str) -> str:
    return PREFIX + re.sub(r"[^a-z0-9_-]", "_", agent_name.lower())[: 64 - len(PREFIX)]


def handoff_tool(target: RealtimeAgent, switch: Callable[[RealtimeAgent], None]) -> FunctionTool:
    """A parameterless tool that makes ``target`` the active agent."""

    def transfer() -> str:
        switch(target)
        return json.dumps(
            {"assistant": target.name, "note": f"You are now {target.name}. Continue."}
        )

    about = f": {target.handoff_description}" if target.handoff_description else "."
    return FunctionTool(
        name=handoff_tool_name(target.name),
        description=f"Hand the conversation over to the {target.name} agent{about}",
        parameters={
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        },
        func=transfer,
    )


def handoff_events(
    old: RealtimeAgent, new: RealtimeAgent, default: RealtimeAgent
) -> list[ev.Event]:
    """agent_handoff, then subagent_finished (leaving a subagent) / subagent_started."""
    out: list[ev.Event] = [ev.AgentHandoff(from_agent=old.name, to_agent=new.name)]
    if old is not default:
        out.append(ev.SubagentFinished(agent_name=old.name))
    if new is not default:
        out.append(ev.SubagentStarted(agent_name=new.name))
    return out
