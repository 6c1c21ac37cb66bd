"""Function calls, MCP calls, MCP approvals and MCP tool lists: a sans-I/O unit.

The engine hands over finished output items; methods return the events they
cause (``agent_tool_start``, ``mcp_tool_call_completed``,
``tool_approval_requested``, ``mcp_tools_changed``), each at most once per
call, approval or change however often the server repeats the item.
"""

from __future__ import annotations

from typing import Any

from daemon import events as ev
from daemon.events import Event, HistoryItem, McpTool

from . import wire as w


class Tools:
    """Which calls started and are answered, and which MCP tools the active agent sees."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # call_id -> tool name
        self._approvals_seen: set[str] = set()
        self._mcp_calls_seen: set[str] = set()
        self._mcp_tools: dict[str, tuple[McpTool, ...]] = {}  # server label -> its tools
        self._mcp_tools_shown: tuple[McpTool, ...] = ()
        self._approval_seq = 0
        # MCP server labels of the active agent; None shows every server's tools.
        self.mcp_server_labels: frozenset[str] | None = None

    def name_of(self, call_id: str) -> str:
        """The tool a started call named ("" if unknown)."""
        return self._names.get(call_id, "")

    def call(self, agent: str, call_id: str, name: str, arguments: str) -> list[Event]:
        """A function call is complete: ``agent_tool_start`` once per call id."""
        if not call_id or call_id in self._names:
            return []
        self._names[call_id] = name
        return [ev.AgentToolStart(agent=agent, tool=name, call_id=call_id, arguments=arguments)]

    def item_done(
        self, agent: str, item: dict[str, Any], history_item: HistoryItem | None
    ) -> list[Event]:
        """Events of a finished output item (the call's history entry as ``history_item``)."""
        t = w.text(item, "type")
        if t == "function_call" and w.text(item, "status") != "incomplete":
            return self.call(
                agent, w.text(item, "call_id"), w.text(item, "name"), w.text(item, "arguments")
            )
        if t == "mcp_call":
            item_id = w.text(item, "id")
            if not item_id or item_id in self._mcp_calls_seen:
                return []
            self._mcp_calls_seen.add(item_id)
            err = item.get("error")
            if isinstance(err, dict):
                error = w.text(err, "message") or w.text(err, "type") or "error"
            else:
                error = err if isinstance(err, str) else ""
            return [
                ev.McpToolCallCompleted(
                    agent=agent,
                    item=history_item,
                    server_label=w.text(item, "server_label"),
                    error=error,
                )
            ]
        if t == "mcp_approval_request":
            approval_id = w.text(item, "id")
            if not approval_id or approval_id in self._approvals_seen:
                return []
            self._approvals_seen.add(approval_id)
            return [
                ev.ToolApprovalRequested(
                    approval_id=approval_id,
                    agent=agent,
                    tool=w.text(item, "name"),
                    arguments=w.text(item, "arguments"),
                    server_label=w.text(item, "server_label"),
                )
            ]
        if t == "mcp_list_tools":
            return self.mcp_list(item)
        return []

    def approval_response(self, approval_id: str, approve: bool) -> dict[str, Any]:
        """The conversation item answering an MCP approval request."""
        self._approval_seq += 1
        return {
            "type": "mcp_approval_response",
            "id": f"voicepi_mcpr_{self._approval_seq}",
            "approval_request_id": approval_id,
            "approve": approve,
        }

    def mcp_list(self, item: dict[str, Any]) -> list[Event]:
        """An mcp_list_tools item: ``mcp_tools_changed`` if what the agent sees changed."""
        label = w.text(item, "server_label")
        raw_tools = item.get("tools")
        if not isinstance(raw_tools, list):
            return []
        tools = tuple(
            McpTool(
                server_label=label, name=w.text(t, "name"), description=w.text(t, "description")
            )
            for t in raw_tools
            if isinstance(t, dict)
        )
        if self._mcp_tools.get(label) == tools:
            return []
        self._mcp_tools[label] = tools
        return self.mcp_changed()

    def mcp_changed(self) -> list[Event]:
        """``mcp_tools_changed`` with the active agent's servers' tools, if they changed."""
        labels = self.mcp_server_labels
        every = tuple(
            t
            for ts in self._mcp_tools.values()
            for t in ts
            if labels is None or t.server_label in labels
        )
        if every == self._mcp_tools_shown:
            return []
        self._mcp_tools_shown = every
        return [ev.McpToolsChanged(tools=every)]
