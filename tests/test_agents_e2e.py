"""Agents end to end: RealtimeSession + AgentRuntime against the simulator (real websocket).

Every client message is checked by the protocol oracle (conftest's autouse fixture), and
the simulator runs strict (its own messages are checked too).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from daemon import events as ev
from daemon.agents import (
    AgentCallbacks,
    AgentRuntime,
    McpServer,
    RealtimeAgent,
    function_tool,
    regex_guardrail,
)
from daemon.realtime.session import RealtimeSession
from daemon.realtime.simulator import Simulator

pytestmark = pytest.mark.timeout(60)


@dataclass
class Run:
    sim: Simulator
    session: RealtimeSession
    runtime: AgentRuntime
    events: list[ev.Event] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # callbacks and playback, in order

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def sent(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.sim.sessions[0].client_messages if m.get("type") == type_]

    def outputs(self) -> list[dict[str, Any]]:
        return [
            m["item"]
            for m in self.sent("conversation.item.create")
            if m["item"]["type"] == "function_call_output"
        ]

    async def until(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0.01)

    async def turn_done(self, n: int, timeout: float = 10.0) -> None:
        """Wait until ``n`` responses have ended."""
        await self.until(lambda: len(self.of(ev.AgentEnd)) >= n, timeout)


class FakePlayer:
    """A PlaybackTracker stand-in: 'plays' each item for ``delay`` s after its audio ended."""

    def __init__(self, run: Run, delay: float) -> None:
        self.run = run
        self.delay = delay
        self.samples: dict[str, int] = {}
        self.hold = False  # keep everything 'playing' (never report finished)

    def on_audio(self, data: bytes, item_id: str, *_: Any) -> None:
        self.samples[item_id] = self.samples.get(item_id, 0) + len(data) // 2

    async def on_audio_stopped(self, item_id: str) -> None:
        if self.hold:
            return
        await asyncio.sleep(self.delay)
        self.run.runtime.playback_progress(item_id, self.samples.get(item_id, 0))
        self.run.log.append(f"played:{item_id}")
        self.run.runtime.playback_finished(item_id)


@asynccontextmanager
async def running(
    agents: list[RealtimeAgent],
    *,
    function_calls: dict[str, tuple[str, dict[str, Any]]] | None = None,
    answer: Callable[[str], str] | None = None,
    player_delay: float = 0.05,
    hold_playback: bool = False,
    **runtime_kw: Any,
) -> AsyncIterator[Run]:
    log: list[str] = []

    def set_volume(percent: int) -> None:
        log.append(f"volume:{percent}")

    def end_session() -> None:
        log.append("end_session")

    def stop_playback() -> None:
        log.append("stop_playback")

    def approval_pending(pending: bool) -> None:
        log.append(f"approval_pending:{pending}")

    callbacks = AgentCallbacks(
        set_volume=set_volume,
        end_session=end_session,
        stop_playback=stop_playback,
        approval_pending=approval_pending,
    )
    runtime = AgentRuntime(agents, callbacks=callbacks, **runtime_kw)
    async with Simulator(
        function_calls=function_calls or {},
        answer=answer,
        speech="tone",
        realtime_factor=8.0,
        strict=True,
    ) as sim:
        session = RealtimeSession(
            runtime.settings(), url=sim.url, api_key=None, tool_runner=runtime.tool_runner
        )
        run = Run(sim=sim, session=session, runtime=runtime, log=log)
        player = FakePlayer(run, player_delay)
        player.hold = hold_playback
        runtime.attach(session)
        session.on("audio", player.on_audio)
        session.on("audio_stopped", player.on_audio_stopped)

        async def collect() -> None:
            async for event in session:
                run.events.append(event)

        collector = asyncio.create_task(collect())
        await session.connect()
        try:
            yield run
        finally:
            await session.close()
            await asyncio.wait_for(collector, 10)
            assert not sim.violations


def tool_start(run: Run) -> list[ev.AgentToolStart]:
    return run.of(ev.AgentToolStart)


# --------------------------------------------------------------------------- tool failures


async def test_unknown_tool_is_answered_with_an_error_output_and_event() -> None:
    agent = RealtimeAgent(name="assistant", instructions="Be brief.", tools=("*",))
    async with running([agent], function_calls={"lights": ("no_such_tool", {})}) as run:
        run.session.send_text("turn on the lights")
        await run.turn_done(2)
        (out,) = run.outputs()
        assert "There is no tool named 'no_such_tool'" in json.loads(out["output"])["error"]
        assert "get_time" in out["output"]  # the model learns what exists
        (end,) = run.of(ev.AgentToolEnd)
        assert end.tool == "no_such_tool" and end.is_error
        errors = [e.error for e in run.of(ev.Error)]
        assert [e.code for e in errors] == ["unknown_tool"]
        # outputs, then exactly one response.create for the follow-up answer
        kinds = [m["type"] for m in run.sim.sessions[0].client_messages]
        after = kinds[kinds.index("conversation.item.create", 2) :]
        assert after.count("response.create") == 1


async def test_tool_exception_and_bad_arguments_become_outputs() -> None:
    @function_tool
    def lights(room: str) -> str:
        """Switch the lights of a room."""
        raise RuntimeError(f"the {room} lamp is unplugged")

    agent = RealtimeAgent(name="assistant", tools=(lights,))
    calls = {"lamp": ("lights", {"room": "kitchen"}), "bogus": ("lights", {"room": 7})}
    async with running([agent], function_calls=calls) as run:
        run.session.send_text("lamp please")
        await run.turn_done(2)
        run.session.send_text("bogus call")
        await run.turn_done(4)
        first, second = run.outputs()
        assert "RuntimeError: the kitchen lamp is unplugged" in first["output"]
        assert "arguments.room: expected string, got int 7" in second["output"]
        assert [e.error.code for e in run.of(ev.Error)] == ["tool_failed", "bad_arguments"]
        assert all(e.is_error for e in run.of(ev.AgentToolEnd))


async def test_tool_timeout_is_answered() -> None:
    ran: list[str] = []

    @function_tool
    async def slow() -> str:
        """Takes forever."""
        ran.append("started")
        await asyncio.sleep(30)
        return "never"

    agent = RealtimeAgent(name="assistant", tools=(slow,))
    async with running([agent], function_calls={"slow": ("slow", {})}, tool_timeout=0.3) as run:
        run.session.send_text("do the slow thing")
        await run.turn_done(2)
        (out,) = run.outputs()
        assert "did not finish within 0.3 seconds" in out["output"]
        assert ran == ["started"]
        assert [e.error.code for e in run.of(ev.Error)] == ["tool_timeout"]


# --------------------------------------------------------------------------- approvals


def _door_tool(opened: list[str]) -> Any:
    @function_tool(needs_approval=True)
    def open_door(door: str) -> str:
        """Open a door."""
        opened.append(door)
        return f"{door} door is open"

    return open_door


async def test_approval_by_button_press_runs_the_tool() -> None:
    opened: list[str] = []
    agent = RealtimeAgent(name="assistant", tools=(_door_tool(opened),))
    calls = {"door": ("open_door", {"door": "front"})}
    async with running([agent], function_calls=calls, approval_timeout=20.0) as run:
        run.session.send_text("open the door")
        await run.until(lambda: bool(run.of(ev.ToolApprovalRequested)))
        (req,) = run.of(ev.ToolApprovalRequested)
        assert (req.tool, req.server_label, json.loads(req.arguments)) == (
            "open_door",
            "",
            {"door": "front"},
        )
        assert opened == [] and run.outputs() == []  # nothing runs before the press
        assert run.runtime.pending_approvals[0].approval_id == req.approval_id
        assert run.runtime.approve()  # the appliance's button press
        await run.turn_done(2)
        assert opened == ["front"]
        assert run.outputs()[0]["output"] == "front door is open"
        assert "approval_pending:True" in run.log and "approval_pending:False" in run.log
        assert not run.runtime.approve()  # nothing left to approve


async def test_approval_timeout_rejects() -> None:
    opened: list[str] = []
    agent = RealtimeAgent(name="assistant", tools=(_door_tool(opened),))
    calls = {"door": ("open_door", {"door": "back"})}
    async with running([agent], function_calls=calls, approval_timeout=0.3) as run:
        run.session.send_text("open the door")
        await run.turn_done(2)
        assert opened == []
        (out,) = run.outputs()
        assert "did not answer in time" in out["output"]
        assert len(run.of(ev.ToolApprovalRequested)) == 1
        assert run.runtime.pending_approvals == ()


async def test_policy_never_rejects_without_asking() -> None:
    opened: list[str] = []
    agent = RealtimeAgent(name="assistant", tools=(_door_tool(opened),))
    calls = {"door": ("open_door", {"door": "side"})}
    async with running([agent], function_calls=calls, policy={"open_door": "never"}) as run:
        run.session.send_text("open the door")
        await run.turn_done(2)
        assert opened == [] and run.of(ev.ToolApprovalRequested) == []
        assert "not allowed" in run.outputs()[0]["output"]


# --------------------------------------------------------------------------- guardrails


async def test_guardrail_trips_on_a_20_character_reply() -> None:
    reply = "The secret is 12345."
    assert len(reply) == 20
    agent = RealtimeAgent(name="assistant")
    async with running(
        [agent],
        answer=lambda prompt: reply,
        hold_playback=True,  # the speaker is still playing when the check runs
        guardrails=[regex_guardrail([r"secret"])],
        guardrail_every=100,  # never reached by 20 characters: the end-of-item check trips
    ) as run:
        run.session.send_text("tell me")
        await run.until(lambda: bool(run.of(ev.GuardrailTripped)))
        (trip,) = run.of(ev.GuardrailTripped)
        assert trip.guardrail == "blocked_patterns" and trip.message == reply
        assert trip.details["pattern"] == "secret"
        assert "stop_playback" in run.log
        await run.until(lambda: bool(run.sent("conversation.item.truncate")))
        (truncate,) = run.sent("conversation.item.truncate")
        assert truncate["item_id"] == trip.details["item_id"]
        assert run.of(ev.AudioInterrupted)[0].item_id == trip.details["item_id"]


async def test_guardrail_does_not_trip_on_a_clean_reply() -> None:
    agent = RealtimeAgent(name="assistant")
    async with running(
        [agent], answer=lambda p: "All good here.", guardrails=[regex_guardrail(["secret"])]
    ) as run:
        run.session.send_text("hi")
        await run.turn_done(1)
        await run.until(lambda: "played:" in " ".join(run.log))
        assert run.of(ev.GuardrailTripped) == [] and "stop_playback" not in run.log
        assert run.sent("conversation.item.truncate") == []


# --------------------------------------------------------------------------- handoffs


async def test_handoff_then_a_tool_of_the_new_agent() -> None:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather forecast for a city."""
        return f"Sunny in {city}"

    weather = RealtimeAgent(
        name="weather",
        instructions="You are the weather expert.",
        handoff_description="forecasts",
        tools=(get_weather,),
    )
    main = RealtimeAgent(name="assistant", instructions="Route requests.", handoffs=(weather,))
    calls = {"transfer": ("transfer_to_weather", {}), "forecast": ("get_weather", {"city": "Oslo"})}
    async with running([main], function_calls=calls) as run:
        first_update = run.sent("session.update")[0]["session"]
        assert [t["name"] for t in first_update["tools"]] == ["transfer_to_weather"]
        run.session.send_text("transfer me to the weather desk")
        await run.turn_done(2)
        run.session.send_text("forecast please")
        await run.turn_done(4)
        assert [(h.from_agent, h.to_agent) for h in run.of(ev.AgentHandoff)] == [
            ("assistant", "weather")
        ]
        assert [e.agent_name for e in run.of(ev.SubagentStarted)] == ["weather"]
        updates = run.sent("session.update")
        assert len(updates) == 2
        new = updates[1]["session"]
        assert new["instructions"] == "You are the weather expert."
        assert [t["name"] for t in new["tools"]] == ["get_weather"]
        assert new["audio"]["output"]["voice"] == first_update["audio"]["output"]["voice"]
        # the update goes out before the transfer's output, so the next answer is the new agent's
        msgs = run.sim.sessions[0].client_messages
        kinds = [
            m["item"]["type"] if m["type"] == "conversation.item.create" else m["type"]
            for m in msgs
        ]
        assert kinds.index("session.update", 1) < kinds.index("function_call_output")
        starts = tool_start(run)
        assert [(s.tool, s.agent) for s in starts] == [
            ("transfer_to_weather", "assistant"),
            ("get_weather", "weather"),
        ]
        assert run.outputs()[1]["output"] == "Sunny in Oslo"


# --------------------------------------------------------------------------- end_session


async def test_end_session_closes_only_after_the_goodbye_played() -> None:
    agent = RealtimeAgent(name="assistant", tools=("*",))
    async with running(
        [agent], function_calls={"bye": ("end_session", {})}, player_delay=0.4
    ) as run:
        run.session.send_text("bye for now")
        await run.until(lambda: "end_session" in run.log)
        ends = run.of(ev.AgentEnd)
        assert len(ends) == 2  # the call, then the goodbye
        goodbye_items = {e.item_id for e in run.of(ev.AudioStart)}
        assert goodbye_items
        played = [entry for entry in run.log if entry.startswith("played:")]
        assert played == [f"played:{i}" for i in goodbye_items]
        assert run.log.index("end_session") > run.log.index(played[-1])
        assert "goodbye" in run.of(ev.AgentEnd)[1].output.lower()


async def test_set_volume_applies_to_the_player() -> None:
    agent = RealtimeAgent(name="assistant", tools=("set_volume",))
    calls = {"louder": ("set_volume", {"percent": 70}), "max": ("set_volume", {"percent": 140})}
    async with running([agent], function_calls=calls) as run:
        run.session.send_text("louder")
        await run.turn_done(2)
        run.session.send_text("max it")
        await run.turn_done(4)
        assert [e for e in run.log if e.startswith("volume")] == ["volume:70"]
        assert "expected 0 to 100" in run.outputs()[1]["output"]


# --------------------------------------------------------------------------- MCP


async def test_mcp_approval_by_button_and_call_completed() -> None:
    home = McpServer(
        label="home",
        url="https://mcp.example/home",
        require_approval="always",
        headers={"Authorization": "Bearer tok"},
    )
    other = McpServer(label="other", url="https://mcp.example/other")
    agent = RealtimeAgent(name="assistant", mcp_servers=("home",))
    async with running([agent], mcp_servers=[home, other], approval_timeout=20.0) as run:
        tools = run.sent("session.update")[0]["session"]["tools"]
        assert [t.get("server_label") for t in tools if t["type"] == "mcp"] == ["home"]
        await run.until(lambda: bool(run.of(ev.McpToolsChanged)))
        assert {t.server_label for t in run.of(ev.McpToolsChanged)[-1].tools} == {"home"}
        run.session.send_text("ask mcp for the answer")
        await run.until(lambda: bool(run.of(ev.ToolApprovalRequested)))
        (req,) = run.of(ev.ToolApprovalRequested)
        assert req.server_label == "home"
        assert run.runtime.approve()
        await run.until(lambda: bool(run.of(ev.McpToolCallCompleted)))
        (done,) = run.of(ev.McpToolCallCompleted)
        assert done.server_label == "home" and not done.error
        responses = [
            m["item"]
            for m in run.sent("conversation.item.create")
            if m["item"]["type"] == "mcp_approval_response"
        ]
        assert [(r["approval_request_id"], r["approve"]) for r in responses] == [
            (req.approval_id, True)
        ]


async def test_mcp_list_failure_is_an_error_event() -> None:
    broken = McpServer(label="broken", url="https://mcp.example/fail")
    agent = RealtimeAgent(name="assistant")
    async with running([agent], mcp_servers=[broken]) as run:
        await run.until(lambda: any(e.error.type == "mcp_error" for e in run.of(ev.Error)))
        (err,) = [e.error for e in run.of(ev.Error) if e.error.type == "mcp_error"]
        assert err.code == "mcp_list_tools_failed" and "broken" in err.message
