"""Running the model's function calls for a session: one task per call, every call answered.

The session hands each ``agent_tool_start`` to ``ToolCalls.start``; the call's
output (or an error output when the runner raised) goes back through
``answer(call_id, output, is_error)``, and a runner's exception is also put on
the event stream as an ``error`` (``tool_error``) through ``report``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Protocol

from daemon import events as ev
from daemon.events import ErrorInfo

log = logging.getLogger(__name__)


class ToolRunner(Protocol):
    """Runs the model's function calls for a session (``tool_runner=``).

    ``run`` is awaited in a task of its own for each ``agent_tool_start``, so
    the session keeps reading meanwhile. ``arguments_json`` is the model's JSON
    text, unparsed. The returned string is sent as the call's output; raising
    sends an error output instead and emits an ``error`` (``tool_error``).
    """

    async def run(self, name: str, arguments_json: str, call_id: str) -> str:
        """Run tool ``name``; the returned string is the call's output."""


class ToolCalls:
    """The session's running tool calls; without a runner, ``start`` does nothing."""

    def __init__(
        self,
        runner: ToolRunner | None,
        answer: Callable[[str, str, bool], None],
        report: Callable[[ev.Event], None],
    ) -> None:
        self.runner = runner
        self._answer = answer
        self._report = report
        self.tasks: set[asyncio.Task[None]] = set()  # cancelled when the session ends

    def start(self, event: ev.AgentToolStart) -> None:
        """Run ``event``'s call in a task of its own (the session keeps reading)."""
        if self.runner is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._run(self.runner, event), name=f"voicepi-tool-{event.tool}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, runner: ToolRunner, event: ev.AgentToolStart) -> None:
        is_error = False
        try:
            result = await runner.run(event.tool, event.arguments, event.call_id)
            output = result if isinstance(result, str) else json.dumps(result, default=str)
            # A runner may flag a failure it already explained (daemon.agents' ToolOutput).
            is_error = bool(getattr(result, "is_error", False))
        except Exception as exc:  # every call is answered, even a failing one
            is_error = True
            message = f"{type(exc).__name__}: {exc}"
            output = json.dumps({"error": f"tool {event.tool!r} failed: {message}"})
            log.warning("tool %s (call %s) failed: %s", event.tool, event.call_id, message)
            self._report(
                ev.Error(
                    error=ErrorInfo(
                        type="tool_error",
                        message=f"tool {event.tool!r} (call {event.call_id}) raised {message}",
                        code="tool_failed",
                    )
                )
            )
        self._answer(event.call_id, output, is_error)
