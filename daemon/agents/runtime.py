"""AgentRuntime: agents, tools, handoffs, approvals, MCP and guardrails for one session.

The appliance (or an embedder) builds it once from the Config and callbacks,
then per session::

    runtime = AgentRuntime.from_config(cfg, AgentCallbacks(set_volume=..., end_session=...,
                                                           stop_playback=...))
    session = RealtimeSession(runtime.settings(), url=..., api_key=...,
                              tool_runner=runtime.tool_runner)
    runtime.attach(session)            # consumes the session's events via session.on()
    player.tracker = SessionTracker(runtime)  # daemon.realtime: the player's reports, on the loop

A button press calls ``runtime.approve()``, a double press ``runtime.reject()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from daemon import events as ev
from daemon.config import Config, ConfigError
from daemon.events import ErrorInfo
from daemon.realtime.engine import RealtimeProtocol
from daemon.realtime.settings import SessionSettings

from .agent import RealtimeAgent
from .approvals import ApprovalRequest, Approvals, Policy, policy_for
from .builtin import builtin_tools
from .from_config import runtime_arguments
from .guardrails import GuardrailMonitor, OutputGuardrail
from .handoffs import handoff_events, handoff_tool
from .mcp import McpServer
from .runner import AgentToolRunner
from .tools import FunctionTool, as_tool

log = logging.getLogger(__name__)

GOODBYE_TIMEOUT = 30.0  # seconds: end_session closes by then even if playback never reports


@dataclass(frozen=True, kw_only=True)
class AgentCallbacks:
    """What the tools and guardrails do to the appliance; each may be sync or async."""

    set_volume: Callable[[int], object] | None = None  # percent 0-100
    # Close the session now: called once the goodbye after end_session has played.
    end_session: Callable[[], object] | None = None
    stop_playback: Callable[[], object] | None = None  # flush the speaker (guardrail trip)
    approval_pending: Callable[[bool], object] | None = None  # an approval waits / none left


class SessionPort(Protocol):
    """The parts of RealtimeSession the runtime uses."""

    @property
    def protocol(self) -> RealtimeProtocol: ...

    def emit(self, event: ev.Event) -> None: ...

    def on(self, name: str, handler: Callable[..., Any]) -> Callable[[], None]: ...

    def update_session(self, settings: SessionSettings) -> None: ...

    def interrupt(self) -> None: ...

    def approve_tool(self, approval_id: str, approve: bool = True) -> None: ...

    def playback_progress(self, item_id: str, samples_played: int) -> None: ...

    def playback_finished(self, item_id: str) -> None: ...


_BACKGROUND: set[asyncio.Future[Any]] = set()


def _call(cb: Callable[..., object] | None, *args: Any) -> None:
    """Run a sync or async callback without waiting for it."""
    if cb is None:
        return
    result = cb(*args)
    if inspect.isawaitable(result):
        fut = asyncio.ensure_future(result)
        _BACKGROUND.add(fut)  # keep a reference until it is done
        fut.add_done_callback(_BACKGROUND.discard)


def _collect_agents(agents: Sequence[RealtimeAgent]) -> dict[str, RealtimeAgent]:
    """Every agent by name: the given ones and any reachable through handoffs."""
    found: dict[str, RealtimeAgent] = {}
    todo = list(agents)
    while todo:
        agent = todo.pop(0)
        other = found.get(agent.name)
        if other is not None:
            if other is not agent:
                raise ValueError(f"two different agents are named {agent.name!r}")
            continue
        found[agent.name] = agent
        todo.extend(h for h in agent.handoffs if isinstance(h, RealtimeAgent))
    return found


class AgentRuntime:
    def __init__(
        self,
        agents: Sequence[RealtimeAgent],
        *,
        tools: Iterable[FunctionTool] = (),
        mcp_servers: Sequence[McpServer] = (),
        policy: Mapping[str, Policy] | None = None,
        guardrails: Sequence[OutputGuardrail] = (),
        guardrail_every: int = 100,
        tool_timeout: float = 10.0,
        approval_timeout: float = 10.0,
        max_output_chars: int = 4000,
        callbacks: AgentCallbacks | None = None,
        base_settings: SessionSettings | None = None,
        goodbye_timeout: float = GOODBYE_TIMEOUT,
        secrets: Sequence[str] = (),
    ) -> None:
        if not agents:
            raise ValueError("agents: expected at least one agent (the first is the default)")
        self.callbacks = callbacks or AgentCallbacks()
        self.base_settings = base_settings or SessionSettings()
        self.default = agents[0]
        self.agents = _collect_agents(agents)
        self.mcp_servers = {m.label: m for m in mcp_servers}
        self.guardrails = tuple(guardrails)
        self.guardrail_every = guardrail_every
        self.goodbye_timeout = goodbye_timeout
        # The shared registry ("*" and names refer to it): built-ins, then the given tools.
        self.tools: dict[str, FunctionTool] = {}
        cb = self.callbacks
        for tool in [
            *builtin_tools(
                set_volume=cb.set_volume,
                end_session=self._end_session_requested if cb.end_session else None,
            ),
            *tools,
        ]:
            self.tools[tool.name] = tool
        self._agent_tools = {a.name: self._resolve_tools(a) for a in self.agents.values()}
        self.approvals = Approvals(approval_timeout, self._approval_changed)
        self.tool_runner = AgentToolRunner(
            tools=lambda: self._agent_tools[self.active.name],
            agent=lambda: self.active.name,
            approvals=self.approvals,
            policy=dict(policy or {}),
            emit=self.emit,
            timeout=tool_timeout,
            max_output_chars=max_output_chars,
            secrets=secrets,
        )
        self.events: list[ev.Event] = []  # what was emitted while no session is attached
        self.active = self.default
        self._session: SessionPort | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._reset_session_state()

    def __repr__(self) -> str:
        return f"AgentRuntime(agents={list(self.agents)!r}, active={self.active.name!r})"

    # ================================================================ building

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        callbacks: AgentCallbacks | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        tools: Iterable[FunctionTool] = (),
        guardrails: Sequence[OutputGuardrail] = (),
    ) -> AgentRuntime:
        """From ``[[agents]]``, ``[[tools]]``, ``[tooling]``, ``[[mcp_servers]]``, ``[guardrails]``.

        Raises ConfigError (naming the key) for a tool name no agent can get or a
        missing credential.
        """
        agents, kwargs = runtime_arguments(cfg, environ=environ, tools=tools, guardrails=guardrails)
        try:
            return cls(agents, callbacks=callbacks, **kwargs)
        except _UnknownTool as exc:
            raise ConfigError(f"agents[{exc.agent_index}].tools", str(exc)) from None

    def _resolve_tools(self, agent: RealtimeAgent) -> dict[str, FunctionTool]:
        out: dict[str, FunctionTool] = {}
        for entry in agent.tools:
            if entry == "*":
                out.update(self.tools)
            elif isinstance(entry, str):
                if entry not in self.tools:
                    index = list(self.agents).index(agent.name)
                    raise _UnknownTool(index, entry, sorted(self.tools))
                out[entry] = self.tools[entry]
            else:
                tool = as_tool(entry)
                out[tool.name] = tool
        for h in agent.handoffs:
            target = self.agents[h] if isinstance(h, str) else h
            tool = handoff_tool(target, self._switch)
            out[tool.name] = tool
        return out

    # ================================================================ what the session gets

    def mcp_labels(self, agent: RealtimeAgent | None = None) -> frozenset[str]:
        agent = agent or self.active
        if agent.mcp_servers is None:
            return frozenset(self.mcp_servers)
        return frozenset(label for label in agent.mcp_servers if label in self.mcp_servers)

    def settings(
        self, agent: RealtimeAgent | None = None, *, base: SessionSettings | None = None
    ) -> SessionSettings:
        """SessionSettings for ``agent`` (default: the active one); the default's voice."""
        agent = agent or self.active
        base = base or self.base_settings
        tools = [t.schema() for t in self._agent_tools[agent.name].values()]
        tools += [self.mcp_servers[label].tool() for label in sorted(self.mcp_labels(agent))]
        return dataclasses.replace(
            base,
            instructions=agent.instructions or base.instructions,
            voice=self.default.voice or base.voice,
            tools=tuple(tools),
        )

    # ================================================================ session binding

    def attach(self, session: SessionPort) -> Callable[[], None]:
        """Bind to a (new) session: default agent, event handlers; returns detach."""
        self.detach()
        self._reset_session_state()
        self.active = self.default
        self._session = session
        session.protocol.set_agent(self.default.name, self.mcp_labels())
        for cls in _CONSUMED:
            self._unsubscribe.append(session.on(_type(cls), _rebuild(cls, self.handle)))
        return self.detach

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._stop()
        self._session = None

    def emit(self, event: ev.Event) -> None:
        if self._session is not None:
            self._session.emit(event)
        else:
            self.events.append(event)

    def _reset_session_state(self) -> None:
        self.monitor = GuardrailMonitor(self.guardrail_every)
        self._ending = False
        self._goodbye_rid: str | None = None
        self._goodbye_items: set[str] = set()
        self._goodbye_done = False
        self._finished_items: set[str] = set()
        self._closed_called = False
        self._goodbye_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._mcp_list_labels: dict[str, str] = {}

    def _stop(self) -> None:
        self.approvals.reject_all()
        if self._goodbye_timer is not None:
            self._goodbye_timer.cancel()
            self._goodbye_timer = None
        for task in self._tasks:
            task.cancel()

    # ================================================================ approvals

    @property
    def pending_approvals(self) -> tuple[ApprovalRequest, ...]:
        return self.approvals.pending

    def approve(self, approval_id: str | None = None) -> bool:
        """Approve the oldest pending request (or ``approval_id``); False if none waited."""
        return self.approvals.approve(approval_id)

    def reject(self, approval_id: str | None = None) -> bool:
        return self.approvals.reject(approval_id)

    def _approval_changed(self, pending: bool) -> None:
        _call(self.callbacks.approval_pending, pending)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_mcp_approval(self, request: ApprovalRequest) -> None:
        decision = await self.approvals.ask(request)
        if self._session is not None:
            self._session.approve_tool(request.approval_id, decision.approved)

    # ================================================================ playback (SessionTracker)

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        if self._session is not None:
            self._session.playback_progress(item_id, samples_played)

    def playback_finished(self, item_id: str) -> None:
        if self._session is not None:
            self._session.playback_finished(item_id)
        self._finished_items.add(item_id)
        self._maybe_close()

    # ================================================================ handoffs

    def _switch(self, target: RealtimeAgent) -> None:
        old = self.active
        if target is old:
            return
        self.active = target
        session = self._session
        if session is not None:
            session.protocol.set_agent(target.name, self.mcp_labels(target))
            session.update_session(self.settings(target, base=session.protocol.settings))
        for event in handoff_events(old, target, self.default):
            self.emit(event)

    # ================================================================ end_session

    def _end_session_requested(self) -> None:
        """The end_session tool ran: close once the goodbye that follows has played."""
        if self._ending:
            return
        self._ending = True
        with contextlib.suppress(RuntimeError):  # no loop: nothing to time out
            self._goodbye_timer = asyncio.get_running_loop().call_later(
                self.goodbye_timeout, self._close_now
            )

    def _maybe_close(self) -> None:
        if self._ending and self._goodbye_done and self._goodbye_items <= self._finished_items:
            self._close_now()

    def _close_now(self) -> None:
        if self._closed_called:
            return
        self._closed_called = True
        if self._goodbye_timer is not None:
            self._goodbye_timer.cancel()
        _call(self.callbacks.end_session)

    # ================================================================ events in

    async def handle(self, event: ev.Event) -> None:
        """One session event (the handlers attach() installs call this)."""
        try:
            await self._handle(event)
        except Exception as exc:  # a runtime bug must not end the session
            log.exception("agents runtime failed on %s", event.type)
            self.emit(
                ev.Error(
                    error=ErrorInfo(
                        type="agents_error",
                        message=f"agents runtime failed on {event.type!r}: "
                        f"{type(exc).__name__}: {exc}",
                    )
                )
            )

    async def _handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.AssistantTranscriptDelta):
            text = self.monitor.delta(event.item_id, event.delta)
            if text is not None:
                await self._check_guardrails(event.item_id, text)
        elif isinstance(event, ev.AssistantTranscript):
            text = self.monitor.final(event.item_id, event.transcript)
            if text is not None:
                await self._check_guardrails(event.item_id, text)
        elif isinstance(event, ev.ToolApprovalRequested) and event.server_label:
            self._mcp_approval(event)
        elif isinstance(event, ev.McpToolCallCompleted) and event.error:
            name = event.item.name if event.item is not None else "?"
            self.emit(
                ev.Error(
                    error=ErrorInfo(
                        type="mcp_error",
                        code="mcp_call_failed",
                        message=f"MCP tool {event.server_label}.{name} failed: {event.error}",
                    )
                )
            )
        elif isinstance(event, ev.TransportEvent):
            self._transport(event.data)
        elif isinstance(event, ev.AgentStart):
            if self._ending and self._goodbye_rid is None:
                self._goodbye_rid = event.response_id
        elif isinstance(event, ev.Audio):
            if self._ending and event.response_id == self._goodbye_rid:
                self._goodbye_items.add(event.item_id)
        elif isinstance(event, ev.AudioInterrupted):
            self._finished_items.update(self._goodbye_items)  # cut: nothing left to play
            self._maybe_close()
        elif isinstance(event, ev.AgentEnd):
            if self._ending and event.response_id == self._goodbye_rid:
                self._goodbye_done = True
                self._maybe_close()
        elif isinstance(event, ev.AgentStopped):
            self._stop()

    def _transport(self, data: Mapping[str, Any]) -> None:
        t = data.get("type")
        item = data.get("item")
        if isinstance(item, dict) and item.get("type") == "mcp_list_tools":
            self._mcp_list_labels[str(item.get("id", ""))] = str(item.get("server_label", ""))
        if t == "mcp_list_tools.failed":
            label = self._mcp_list_labels.get(str(data.get("item_id", "")), "?")
            self.emit(
                ev.Error(
                    error=ErrorInfo(
                        type="mcp_error",
                        code="mcp_list_tools_failed",
                        message=f"listing the tools of MCP server {label!r} failed",
                    )
                )
            )

    def _mcp_approval(self, event: ev.ToolApprovalRequested) -> None:
        policy = policy_for(
            self.tool_runner.policy, event.tool, server_label=event.server_label, default="ask"
        )
        if policy != "ask":
            if self._session is not None:
                self._session.approve_tool(event.approval_id, policy == "always")
            return
        request = ApprovalRequest(
            approval_id=event.approval_id,
            tool=event.tool,
            arguments=event.arguments,
            server_label=event.server_label,
            agent=event.agent,
        )
        self._spawn(self._answer_mcp_approval(request))

    async def _check_guardrails(self, item_id: str, text: str) -> None:
        for guardrail in (*self.guardrails, *self.active.output_guardrails):
            try:
                result = await guardrail.run(text)
            except Exception as exc:
                self.emit(
                    ev.Error(
                        error=ErrorInfo(
                            type="guardrail_error",
                            message=f"guardrail {guardrail.name!r} raised "
                            f"{type(exc).__name__}: {exc}",
                        )
                    )
                )
                continue
            if result.tripped:
                self.monitor.trip(item_id)
                # Silence first: the speaker is flushed before the bookkeeping.
                _call(self.callbacks.stop_playback)
                if self._session is not None:
                    self._session.interrupt()
                self.emit(
                    ev.GuardrailTripped(
                        agent=self.active.name,
                        guardrail=guardrail.name,
                        message=text,
                        details={"item_id": item_id, **result.info},
                    )
                )
                return


class _UnknownTool(ValueError):
    def __init__(self, agent_index: int, name: str, known: list[str]) -> None:
        super().__init__(f"unknown tool {name!r} (known: {', '.join(known) or 'none'})")
        self.agent_index = agent_index


def _type(cls: type[ev.Event]) -> str:
    return str(cls.__dataclass_fields__["type"].default)


def _rebuild(cls: type[ev.Event], sink: Callable[[ev.Event], Any]) -> Callable[..., Any]:
    """A session.on handler (positional event fields) that passes the event object on."""
    names = [f.name for f in dataclasses.fields(cls) if f.name != "type"]

    def handler(*args: Any) -> Any:
        return sink(cls(**dict(zip(names, args, strict=True))))

    return handler


_CONSUMED: tuple[type[ev.Event], ...] = (
    ev.AssistantTranscriptDelta,
    ev.AssistantTranscript,
    ev.ToolApprovalRequested,
    ev.McpToolCallCompleted,
    ev.TransportEvent,
    ev.AgentStart,
    ev.Audio,
    ev.AudioInterrupted,
    ev.AgentEnd,
    ev.AgentStopped,
)
