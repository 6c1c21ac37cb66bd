"""The ToolRunner the RealtimeSession calls for every function call.

Every call is answered. An unknown tool, bad arguments, a rejected approval,
an exception or a timeout become an output that tells the model what went
wrong (so it can say so or retry), and, except for a user's rejection, an
``error`` event. The session sends the outputs and then one response.create.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from daemon import events as ev
from daemon.events import ErrorInfo

from .approvals import ApprovalRequest, Approvals, Policy, policy_for
from .tools import FunctionTool, ToolArgumentError

log = logging.getLogger(__name__)


class ToolOutput(str):
    """A call's output; ``is_error`` marks a failed call (agent_tool_end.is_error)."""

    is_error: bool = False

    def __new__(cls, text: str, *, is_error: bool = False) -> ToolOutput:
        out = super().__new__(cls, text)
        out.is_error = is_error
        return out


def _failure(message: str) -> ToolOutput:
    return ToolOutput(json.dumps({"error": message}), is_error=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (a tool may print what it can read)."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def render(result: Any, limit: int) -> str:
    """A tool's return value as the output string (JSON unless already a string), cut to limit."""
    text = result if isinstance(result, str) else json.dumps(result, default=str)
    if len(text) > limit:
        text = text[: limit - 20] + " ... (output cut)"
    return text


class AgentToolRunner:
    def __init__(
        self,
        *,
        tools: Callable[[], Mapping[str, FunctionTool]],
        agent: Callable[[], str],
        approvals: Approvals,
        policy: Mapping[str, Policy],
        emit: Callable[[ev.Event], None],
        timeout: float = 10.0,
        max_output_chars: int = 4000,
        secrets: Sequence[str] = (),
    ) -> None:
        self._tools = tools
        self._agent = agent
        self.approvals = approvals
        self.policy = policy
        self._emit = emit
        self.timeout = timeout
        self.max_output_chars = max_output_chars
        # The API key and credential header values: scrubbed from every output and message.
        self.secrets = tuple(sorted((x for x in secrets if x), key=len, reverse=True))

    def _error(self, code: str, message: str) -> None:
        message = scrub(message, self.secrets)
        log.warning("%s", message)
        self._emit(ev.Error(error=ErrorInfo(type="tool_error", message=message, code=code)))

    async def run(self, name: str, arguments_json: str, call_id: str) -> str:
        output = await self._run(name, arguments_json, call_id)
        clean = scrub(output, self.secrets)
        if clean is output:
            return output
        return ToolOutput(clean, is_error=getattr(output, "is_error", False))

    async def _run(self, name: str, arguments_json: str, call_id: str) -> str:
        tools = self._tools()
        tool = tools.get(name)
        if tool is None:
            known = ", ".join(sorted(tools)) or "none"
            self._error("unknown_tool", f"unknown tool {name!r} (call {call_id})")
            return _failure(f"There is no tool named {name!r}. Available tools: {known}.")
        try:
            args = tool.parse(arguments_json)
        except ToolArgumentError as exc:
            self._error("bad_arguments", f"tool {name!r} (call {call_id}): bad arguments: {exc}")
            return _failure(f"Bad arguments for {name}: {exc}. Call it again with valid ones.")
        policy = policy_for(self.policy, name, default="ask" if tool.needs_approval else "always")
        if policy == "never":
            return ToolOutput(
                json.dumps({"rejected": f"The {name} tool is not allowed on this device."})
            )
        if policy == "ask":
            request = ApprovalRequest(
                approval_id=call_id, tool=name, arguments=arguments_json, agent=self._agent()
            )
            self._emit(
                ev.ToolApprovalRequested(
                    approval_id=call_id, agent=request.agent, tool=name, arguments=arguments_json
                )
            )
            decision = await self.approvals.ask(request)
            if not decision.approved:
                why = "did not answer in time" if decision.reason == "timeout" else "declined"
                return ToolOutput(json.dumps({"rejected": f"The user {why}; {name} was not run."}))
        timeout = tool.timeout if tool.timeout is not None else self.timeout
        try:
            async with asyncio.timeout(timeout):
                result = await tool.invoke(args)
        except TimeoutError:
            self._error(
                "tool_timeout", f"tool {name!r} (call {call_id}) timed out after {timeout:g} s"
            )
            return _failure(f"The {name} tool did not finish within {timeout:g} seconds.")
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            self._error("tool_failed", f"tool {name!r} (call {call_id}) raised {message}")
            return _failure(f"The {name} tool failed: {message}")
        return ToolOutput(render(result, self.max_output_chars))
