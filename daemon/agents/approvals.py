"""Approvals: a tool call waits for approve()/reject(), or is rejected on timeout.

Function tools marked ``needs_approval`` and MCP approval requests both go
through ``Approvals.ask``. Per-tool policy (``tooling.policy``) answers some
without asking: "always" approves, "never" rejects, "ask" waits (on the
appliance, for a button press). Pending requests are answered oldest first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Policy = Literal["always", "never", "ask"]


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest:
    approval_id: str
    tool: str
    arguments: str = ""
    server_label: str = ""  # MCP requests
    agent: str = ""


@dataclass(frozen=True, kw_only=True)
class ApprovalDecision:
    approved: bool
    reason: Literal["policy", "user", "timeout", "closed"]


def policy_for(
    policies: Mapping[str, Policy], tool: str, *, server_label: str = "", default: Policy
) -> Policy:
    """The policy for a tool: "label.tool", then "label" (MCP), then the tool name."""
    keys = [f"{server_label}.{tool}", server_label] if server_label else [tool]
    for key in keys:
        if key in policies:
            return policies[key]
    return default


class Approvals:
    def __init__(
        self,
        timeout: float = 10.0,
        on_change: Callable[[bool], object] | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"approval timeout: expected > 0 s, got {timeout!r}")
        self.timeout = timeout
        self.on_change = on_change
        self._pending: dict[str, tuple[ApprovalRequest, asyncio.Future[ApprovalDecision]]] = {}

    @property
    def pending(self) -> tuple[ApprovalRequest, ...]:
        return tuple(req for req, _ in self._pending.values())

    async def ask(self, request: ApprovalRequest) -> ApprovalDecision:
        """Wait for approve()/reject(); rejected after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ApprovalDecision] = loop.create_future()
        was_idle = not self._pending
        self._pending[request.approval_id] = (request, fut)
        timer = loop.call_later(
            self.timeout,
            self._decide,
            request.approval_id,
            ApprovalDecision(approved=False, reason="timeout"),
        )
        if was_idle:
            self._changed()
        try:
            return await fut
        finally:
            timer.cancel()
            # Still there only if the waiter was cancelled (the call's task ended).
            if self._pending.pop(request.approval_id, None) is not None and not self._pending:
                self._changed()

    def approve(self, approval_id: str | None = None) -> bool:
        """Approve one request (the oldest if no id); False if nothing was pending."""
        return self._answer(approval_id, True)

    def reject(self, approval_id: str | None = None) -> bool:
        return self._answer(approval_id, False)

    def reject_all(self) -> None:
        """The session ended: nothing may stay waiting."""
        for approval_id in list(self._pending):
            self._decide(approval_id, ApprovalDecision(approved=False, reason="closed"))

    def _answer(self, approval_id: str | None, approved: bool) -> bool:
        if approval_id is None:
            if not self._pending:
                return False
            approval_id = next(iter(self._pending))
        if approval_id not in self._pending:
            return False
        return self._decide(approval_id, ApprovalDecision(approved=approved, reason="user"))

    def _decide(self, approval_id: str, decision: ApprovalDecision) -> bool:
        entry = self._pending.pop(approval_id, None)
        if entry is None:
            return False
        if not entry[1].done():
            entry[1].set_result(decision)
        if not self._pending:
            self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(bool(self._pending))
