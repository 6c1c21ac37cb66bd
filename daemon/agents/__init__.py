"""Agents: function/command/plugin tools, handoffs, approvals, MCP servers, guardrails.

>>> from daemon.agents import AgentRuntime, AgentCallbacks, RealtimeAgent, function_tool
"""

from __future__ import annotations

from .agent import RealtimeAgent
from .approvals import ApprovalDecision, ApprovalRequest, Approvals
from .guardrails import GuardrailResult, OutputGuardrail, output_guardrail, regex_guardrail
from .mcp import McpServer
from .runner import AgentToolRunner, ToolOutput
from .runtime import AgentCallbacks, AgentRuntime
from .tools import FunctionTool, ToolArgumentError, function_tool

__all__ = [
    "AgentCallbacks",
    "AgentRuntime",
    "AgentToolRunner",
    "ApprovalDecision",
    "ApprovalRequest",
    "Approvals",
    "FunctionTool",
    "GuardrailResult",
    "McpServer",
    "OutputGuardrail",
    "RealtimeAgent",
    "ToolArgumentError",
    "ToolOutput",
    "function_tool",
    "output_guardrail",
    "regex_guardrail",
]
