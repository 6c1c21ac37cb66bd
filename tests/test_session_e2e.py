"""RealtimeSession against the simulator over loopback: turns, barge-in, tools, faults.

Client messages are checked by the conftest oracle hook and by the simulator
(which answers a bad one with an error event, asserted absent); server
messages by the simulator's strict mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from daemon import events as ev
from daemon.realtime.session import RealtimeSession
from daemon.realtime.settings import SessionSettings
from daemon.realtime.simulator import Faults, Simulator
from tests.sim_helpers import silence, speech_24k


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(strict=True, realtime_factor=50.0, speech="tone") as s:
        yield s
    assert not s.violations
    for session in s.sessions:
        errors = session.sent("error")
        assert all(e["error"]["code"] == "session_expired" for e in errors), errors


class Recorder:
    """Collects a session's events; ``wait`` returns the first matching one."""

    def __init__(self, session: RealtimeSession) -> None:
        self.events: list[ev.Event] = []
        self._changed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(session))

    async def _run(self, session: RealtimeSession) -> None:
        async for event in session:
            self.events.append(event)
            self._changed.set()

    async def wait(self, pred: Callable[[ev.Event], bool], timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if pred(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.events if e.type == type_]


async def open_session(sim: Simulator, **kw: Any) -> tuple[RealtimeSession, Recorder]:
    session = RealtimeSession(SessionSettings(), url=sim.url, api_key="sk-test", **kw)
    recorder = Recorder(session)
    await session.connect()
    return session, recorder


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``predicate`` (checked every 10 ms)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def is_type(type_: str) -> Callable[[ev.Event], bool]:
    return lambda e: e.type == type_


async def test_turn_audio_in_answer_out_transcripts(sim: Simulator) -> None:
    sim.set_transcripts(["what time is it"])
    session, rec = await open_session(sim)
    question = speech_24k("what_time_is_it") + silence(800)
    session.send_audio(question)
    end = await rec.wait(is_type("agent_end"))
    assert end.status == "completed"
    user = rec.of("user_transcript")
    assert [u.transcript for u in user] == ["what time is it"]
    said = rec.of("assistant_transcript")
    assert len(said) == 1 and said[0].transcript.startswith("It is ")
    sim_session = sim.sessions[0]
    deltas = sum(len(m["delta"]) * 3 // 4 for m in sim_session.sent("response.output_audio.delta"))
    assert sum(len(a.data) for a in rec.of("audio")) == deltas > 24000
    # What the mic produced reached the server intact (whole 20 ms chunks).
    assert bytes(sim_session.audio_in) == question[: len(sim_session.audio_in)]
    assert len(question) - len(sim_session.audio_in) < 960
    assert sim_session.user_items[0][0] == user[0].item_id
    assert sim_session.headers["authorization"] == "Bearer sk-test"
    order = [e.type for e in rec.events if e.type != "history_updated"]
    for a, b in [
        ("session_connected", "user_started_speaking"),
        ("user_started_speaking", "user_stopped_speaking"),
        ("user_stopped_speaking", "agent_start"),
        ("agent_start", "audio_start"),
        ("audio_start", "audio_stopped"),
        ("audio_stopped", "agent_end"),
    ]:
        assert order.index(a) < order.index(b), (a, b)
    await session.close()
    assert rec.events[-1] == ev.AgentStopped(reason="client_closed", code=1000)
    await asyncio.wait_for(sim_session.closed.wait(), 5)
    assert sim_session.close_code == 1000


async def test_interruption_truncates_at_samples_played(sim: Simulator) -> None:
    sim.answer = lambda prompt: "this answer goes on and on " * 10
    sim.realtime_factor = 2.0  # the answer still streams when the user talks over it
    session, rec = await open_session(sim)
    session.send_audio(speech_24k("what_time_is_it") + silence(800))
    start = await rec.wait(is_type("audio_start"))
    # Act as the speaker: 0.5 s played once at least that much has arrived.
    await rec.wait(lambda e: sum(len(a.data) for a in rec.of("audio")) >= 48 * 600)
    played_samples = 12_000
    session.playback_progress(start.item_id, played_samples)
    session.send_audio(speech_24k("stop"))
    cut = await rec.wait(is_type("audio_interrupted"))
    end = await rec.wait(is_type("agent_end"))
    assert end.status == "cancelled"
    sim_session = sim.sessions[0]
    # Every client message goes out in order: once a later one arrived, so did the truncate
    # (and any second one would have).
    session.send_raw({"type": "conversation.item.retrieve", "item_id": start.item_id})
    await until(
        lambda: any(m["type"] == "conversation.item.retrieve" for m in sim_session.client_messages)
    )
    assert len(sim_session.truncates) == 1
    truncate = sim_session.truncates[0]
    assert truncate["item_id"] == start.item_id and truncate["accepted"]
    played_ms = played_samples * 1000 // 24000
    assert abs(truncate["audio_end_ms"] - played_ms) <= 20
    assert cut.played_ms == truncate["audio_end_ms"]
    done = sim_session.sent("response.done")[0]["response"]
    assert done["status_details"]["reason"] == "turn_detected"
    assert not any(m["type"] == "response.cancel" for m in sim_session.client_messages)
    await session.close()


async def test_function_call_runs_tool_and_answers(sim: Simulator) -> None:
    class Runner:
        async def run(self, name: str, arguments_json: str, call_id: str) -> str:
            assert (name, arguments_json) == ("get_time", '{"zone": "UTC"}')
            return "10:15"

    sim.function_calls = {"time": ("get_time", {"zone": "UTC"})}
    sim.set_transcripts(["what time is it"])
    session, rec = await open_session(sim, tool_runner=Runner())
    session.send_audio(speech_24k("what_time_is_it") + silence(800))
    start = await rec.wait(is_type("agent_tool_start"))
    assert start.tool == "get_time"
    await rec.wait(is_type("agent_tool_end"))
    said = await rec.wait(is_type("assistant_transcript"))
    assert said.transcript == "The get_time tool says: 10:15"
    await session.close()


async def test_fault_drop_mid_answer_is_connection_lost(sim: Simulator) -> None:
    sim.set_faults(Faults(drop_mid_answer=True))
    session, rec = await open_session(sim)
    session.send_audio(speech_24k("what_time_is_it") + silence(800))
    assert await asyncio.wait_for(session.wait_closed(), 10) == "connection_lost"
    assert rec.events[-1].type == "agent_stopped"


@pytest.mark.parametrize(
    ("faults", "reason", "code"),
    [
        (Faults(expire_after=0.3), "session_expired", 1001),
        (Faults(close_after=0.3), "closed", 1000),
    ],
)
async def test_fault_server_close(sim: Simulator, faults: Faults, reason: str, code: int) -> None:
    sim.set_faults(faults)
    session, rec = await open_session(sim)
    assert await asyncio.wait_for(session.wait_closed(), 10) == reason
    stopped = await rec.wait(is_type("agent_stopped"))
    assert (stopped.reason, stopped.code) == (reason, code)
    if reason == "session_expired":
        assert any(e.error.code == "session_expired" for e in rec.of("error"))


async def test_fault_garbage_gives_errors_and_session_goes_on(sim: Simulator) -> None:
    sim.set_faults(Faults(garbage=True))
    session, rec = await open_session(sim)
    await rec.wait(lambda e: e.type == "error" and e.error.type == "unknown_event")
    kinds = {e.error.type for e in rec.of("error")}
    assert {"invalid_frame", "invalid_event", "unknown_event"} <= kinds
    assert session.connected
    # Act as the speaker: the ghost audio of the out-of-order delta played and drained.
    for audio in rec.of("audio"):
        session.playback_progress(audio.item_id, len(audio.data) // 2)
        session.playback_finished(audio.item_id)
    session.send_audio(speech_24k("what_time_is_it") + silence(800))
    end = await rec.wait(is_type("agent_end"))
    assert end.status == "completed"
    await session.close()


async def test_fault_silent_times_out_connecting(sim: Simulator) -> None:
    sim.set_faults(Faults(silent=True))
    session = RealtimeSession(
        SessionSettings(), url=sim.url, api_key="sk-test", connect_timeout=0.5
    )
    with pytest.raises(TimeoutError):
        await session.connect()
    assert session.stop_reason == "connect_failed"


async def test_fault_refuse_fails_connecting(sim: Simulator) -> None:
    sim.set_faults(Faults(refuse=True))
    session = RealtimeSession(SessionSettings(), url=sim.url, api_key="sk-test")
    rec = Recorder(session)
    with pytest.raises(ConnectionError, match="503"):
        await session.connect()
    stopped = await rec.wait(is_type("agent_stopped"))
    assert stopped.reason == "connect_failed"
    assert "sk-test" not in repr(session)
