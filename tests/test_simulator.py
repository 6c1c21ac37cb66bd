"""The realtime simulator: sans-I/O protocol, VAD, websocket server, faults, CLI.

Every server message is checked against the `openai` package's types (the
simulator runs with ``strict=True`` and the raw client validates what it
receives); client messages are checked by the simulator itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from daemon.realtime import validate
from daemon.realtime.settings import SessionSettings
from daemon.realtime.sim.answers import default_answer
from daemon.realtime.sim.faults import Faults
from daemon.realtime.sim.protocol import SimProtocol
from daemon.realtime.sim.speech import synthesize
from daemon.realtime.sim.vad import EnergyVad
from daemon.realtime.simulator import Simulator
from tests.sim_helpers import RawClient, appends, silence, speech_24k

UPDATE = SessionSettings().session_update()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(strict=True, realtime_factor=50.0, speech="tone") as s:
        yield s
    assert not s.violations


async def raw(sim: Simulator, *, configure: bool = True) -> RawClient:
    ws = await connect(sim.url + "?model=gpt-realtime", max_size=None)
    client = RawClient(ws)
    assert (await client.recv())["type"] == "session.created"
    if configure:
        await client.send(UPDATE)
        await client.until("session.updated")
    return client


def types(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in msgs]


# --------------------------------------------------------------------------- sans-I/O


def make_protocol(**kw: Any) -> SimProtocol:
    return SimProtocol(
        session_id="sess_test",
        synthesize=lambda text: synthesize(text, "tone"),
        answer=lambda prompt: f"Answer to {prompt}",
        **kw,
    )


def test_protocol_turn_order_and_schedule() -> None:
    p = make_protocol(next_transcript=lambda: "hello there", realtime_factor=2.0)
    p.connection_made()
    p.receive_event(UPDATE, 0.0)
    for msg in appends(speech_24k("what_time_is_it") + silence(700)):
        p.receive_event(msg, 1.0)
    out = p.data_to_send()
    for msg in out:
        validate.check_server(msg)
    t = types(out)
    assert t[:3] == ["session.created", "conversation.created", "session.updated"]
    turn = t[3:]
    assert turn[:10] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
    ]
    assert out[-1]["type"] == "response.output_audio.delta"  # only the first chunk so far
    started = next(m for m in out if m["type"] == "input_audio_buffer.speech_started")
    stopped = next(m for m in out if m["type"] == "input_audio_buffer.speech_stopped")
    assert started["item_id"] == stopped["item_id"]
    assert stopped["audio_end_ms"] > started["audio_start_ms"]
    done = next(m for m in out if m["type"].endswith("transcription.completed"))
    assert done["transcript"] == "hello there"
    assert p.user_items[0][0] == started["item_id"]
    # 100 ms chunks at 2x real time: one every 50 ms of the injected clock.
    deadline = p.next_deadline()
    assert deadline == pytest.approx(1.05)
    p.advance(1.049)
    assert p.data_to_send() == []
    p.advance(1.05)
    assert types(p.data_to_send()) == ["response.output_audio.delta"]
    p.advance(100.0)
    rest = p.data_to_send()
    assert rest[-1]["type"] == "response.done"
    assert rest[-1]["response"]["status"] == "completed"
    for msg in rest:
        validate.check_server(msg)
    transcript = "".join(
        m["delta"] for m in out + rest if m["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript == "Answer to hello there"
    assert p.next_deadline() is None


def test_protocol_rejects_bad_client_events_and_goes_on() -> None:
    p = make_protocol()
    p.connection_made()
    p.data_to_send()
    p.receive_text("not json", 0.0)
    p.receive_text("[1]", 0.0)
    p.receive_event({"type": "session.update", "session": {"type": "realtime", "bogus": 1}}, 0.0)
    p.receive_event({"type": "no.such.event", "event_id": "c1"}, 0.0)
    bad_rate = json.loads(json.dumps(UPDATE))
    bad_rate["session"]["audio"]["input"]["format"] = {"type": "audio/pcmu"}
    p.receive_event(bad_rate, 0.0)
    errors = [m["error"] for m in p.data_to_send()]
    assert [e["code"] for e in errors] == [
        "invalid_json",
        "invalid_json",
        "unknown_parameter",
        "invalid_value",
        "invalid_value",
    ]
    assert errors[2]["param"] == "session.bogus"
    assert errors[3]["event_id"] == "c1"
    assert errors[4]["param"] == "session.audio.input.format"
    p.receive_event(UPDATE, 0.0)  # still alive
    assert types(p.data_to_send()) == ["session.updated"]


def test_vad_start_stop_with_prefix_and_hangover() -> None:
    vad = EnergyVad(threshold_db=-40.0, start_frames=3, silence_ms=200, prefix_ms=100)
    t = np.arange(24000) / 24000
    tone = (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()  # 1 s, about -15 dBFS
    events = vad.feed(silence(500) + tone + silence(400))
    assert [(e.kind, e.ms) for e in events] == [("start", 400), ("stop", 1700)]
    assert vad.total_ms == 1900


def test_default_answer_is_useful() -> None:
    from datetime import datetime

    now = datetime(2026, 11, 23, 9, 5)
    assert default_answer("what time is it", now) == "It is 9:05."
    assert "1.4 seconds" in default_answer("(1.4 s of speech)", now)
    assert default_answer("tool get_time returned: 10:00", now) == "The get_time tool says: 10:00"
    assert "sunny" in default_answer("what's the weather like today", now)
    assert default_answer("what day is it", now) == "Today is Monday, November 23."


def test_espeak_speech_is_24k_and_audible() -> None:
    pcm = synthesize("hello world", "espeak")
    samples = np.frombuffer(pcm, dtype="<i2")
    assert 0.4 < len(samples) / 24000 < 3.0
    assert np.abs(samples).max() > 3000


# --------------------------------------------------------------------------- websocket server


async def test_openai_client_holds_a_session(sim: Simulator) -> None:
    from openai import AsyncOpenAI

    sim.set_transcripts(["what time is it"])
    client = AsyncOpenAI(
        api_key="sk-test",
        base_url=sim.url.replace("ws://", "http://").removesuffix("/realtime"),
        websocket_base_url=sim.url.removesuffix("/realtime"),
    )
    async with client.realtime.connect(model="gpt-realtime") as conn:
        first = await conn.recv()
        assert first.type == "session.created"
        await conn.session.update(session=UPDATE["session"])
        seen: list[str] = []
        async with asyncio.timeout(20):
            while "session.updated" not in seen:
                seen.append((await conn.recv()).type)
            pcm = speech_24k("what_time_is_it") + silence(700)
            for i in range(0, len(pcm), 960):
                await conn.input_audio_buffer.append(
                    audio=base64.b64encode(pcm[i : i + 960]).decode()
                )
            transcript = ""
            while True:
                event = await conn.recv()
                seen.append(event.type)
                if event.type == "response.output_audio_transcript.done":
                    transcript = event.transcript
                if event.type == "response.done":
                    break
    assert "input_audio_buffer.speech_started" in seen
    assert "response.output_audio.delta" in seen
    assert transcript.startswith("It is ")
    session = sim.sessions[0]
    assert session.headers["authorization"] == "Bearer sk-test"
    assert session.user_items and len(session.audio_in) == len(pcm)
    await asyncio.wait_for(session.closed.wait(), 5)
    assert session.close_code == 1000
    assert not [m for m in session.server_messages if m["type"] == "error"]


async def test_server_errors_in_the_real_shape(sim: Simulator) -> None:
    c = await raw(sim)
    await c.send("{oops")
    assert (await c.error())["code"] == "invalid_json"
    await c.send({"type": "response.cancel", "event_id": "e1"})
    err = await c.error()
    assert (err["code"], err["event_id"]) == ("response_cancel_not_active", "e1")
    await c.send({"type": "input_audio_buffer.commit"})
    assert (await c.error())["code"] == "input_audio_buffer_commit_empty"
    await c.send({"type": "input_audio_buffer.append", "audio": "AAAA", "extra": 1})
    err = await c.error()
    assert (err["type"], err["code"], err["param"]) == (
        "invalid_request_error",
        "unknown_parameter",
        "extra",
    )
    await c.send({"type": "conversation.item.truncate", "item_id": "nope", "content_index": 0,
                  "audio_end_ms": 0})  # fmt: skip
    assert (await c.error())["param"] == "item_id"
    await c.close()


async def test_text_turn_response_queue_and_truncate_check(sim: Simulator) -> None:
    sim.answer = lambda prompt: "one two three four five six seven eight nine ten " * 3
    sim.realtime_factor = 1.0  # slow enough to overlap the next requests
    c = await raw(sim)
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    await c.send({"type": "conversation.item.create", "item": item})
    await c.until("conversation.item.done")
    await c.send({"type": "response.create"})
    msgs = await c.until("response.output_audio.delta")
    item_id = msgs[-1]["item_id"]
    await c.send({"type": "response.create", "event_id": "again"})
    err = await c.error()
    assert (err["code"], err["event_id"]) == ("conversation_already_has_active_response", "again")
    await c.send({"type": "response.cancel"})
    msgs = await c.until("response.done")
    assert msgs[-1]["response"]["status"] == "cancelled"
    assert msgs[-1]["response"]["status_details"]["reason"] == "client_cancelled"
    have = sim.sessions[0].truncates  # none yet
    assert have == []
    sent_ms = (
        sum(
            len(base64.b64decode(m["delta"]))
            for m in c.received
            if m["type"].endswith("audio.delta")
        )
        // 48
    )
    await c.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                  "audio_end_ms": sent_ms + 500})  # fmt: skip
    err = await c.error()
    assert (err["code"], err["param"]) == ("invalid_value", "audio_end_ms")
    assert f"{sent_ms}ms" in err["message"]
    await c.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                  "audio_end_ms": sent_ms - 10})  # fmt: skip
    done = (await c.until("conversation.item.truncated"))[-1]
    assert done["audio_end_ms"] == sent_ms - 10
    assert [t["accepted"] for t in sim.sessions[0].truncates] == [False, True]
    await c.close()


async def test_barge_in_cancels_with_turn_detected(sim: Simulator) -> None:
    sim.answer = lambda prompt: "a long answer " * 20
    sim.realtime_factor = 1.0
    c = await raw(sim)
    for msg in appends(speech_24k("what_time_is_it") + silence(700)):
        await c.send(msg)
    await c.until("response.output_audio.delta")
    for msg in appends(speech_24k("stop")):
        await c.send(msg)
    msgs = await c.until("response.done")
    t = types(msgs)
    assert t.index("input_audio_buffer.speech_started") < t.index("response.output_audio.done")
    assert msgs[-1]["response"]["status"] == "cancelled"
    assert msgs[-1]["response"]["status_details"] == {
        "type": "cancelled",
        "reason": "turn_detected",
    }
    item = next(m for m in msgs if m["type"] == "response.output_item.done")["item"]
    assert item["status"] == "incomplete"
    await c.close()


async def test_function_call_then_answer(sim: Simulator) -> None:
    sim.function_calls = {"time": ("get_time", {"zone": "UTC"})}
    sim.set_transcripts(["what time is it"])
    c = await raw(sim)
    for msg in appends(speech_24k("what_time_is_it") + silence(700)):
        await c.send(msg)
    msgs = await c.until("response.done")
    done = next(m for m in msgs if m["type"] == "response.function_call_arguments.done")
    assert (done["name"], json.loads(done["arguments"])) == ("get_time", {"zone": "UTC"})
    assert msgs[-1]["response"]["output"][0]["type"] == "function_call"
    assert "response.output_audio.delta" not in types(msgs)
    output = {"type": "function_call_output", "call_id": done["call_id"], "output": "10:15"}
    await c.send({"type": "conversation.item.create", "item": output})
    await c.send({"type": "response.create"})
    msgs = await c.until("response.done")
    spoken = next(m for m in msgs if m["type"] == "response.output_audio_transcript.done")
    assert spoken["transcript"] == "The get_time tool says: 10:15"
    await c.close()


async def test_mcp_list_approval_and_call(sim: Simulator) -> None:
    c = await raw(sim)
    update = json.loads(json.dumps(UPDATE))
    update["session"]["tools"] = [
        {
            "type": "mcp",
            "server_label": "kb",
            "server_url": "https://mcp.example/kb",
            "require_approval": "always",
            "headers": {"Authorization": "Bearer secret-token"},
        }
    ]
    await c.send(update)
    msgs = await c.until("conversation.item.done")
    assert "secret-token" not in json.dumps(msgs)
    assert types(msgs)[-4:] == [
        "conversation.item.added",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "conversation.item.done",
    ]
    assert [t["name"] for t in msgs[-1]["item"]["tools"]] == ["search", "add"]
    text = {"type": "input_text", "text": "ask mcp about cats"}
    await c.send({"type": "conversation.item.create",
                  "item": {"type": "message", "role": "user", "content": [text]}})  # fmt: skip
    await c.send({"type": "response.create"})
    msgs = await c.until("response.done")
    request = msgs[-1]["response"]["output"][0]
    assert (request["type"], request["name"]) == ("mcp_approval_request", "search")
    approval = {"type": "mcp_approval_response", "id": "appr_1",
                "approval_request_id": request["id"], "approve": True}  # fmt: skip
    await c.send({"type": "conversation.item.create", "item": approval})
    await c.send({"type": "response.create"})
    msgs = await c.until("response.done")
    t = types(msgs)
    assert t.index("response.mcp_call.in_progress") < t.index("response.mcp_call.completed")
    call = msgs[-1]["response"]["output"][0]
    assert call["type"] == "mcp_call" and call["approval_request_id"] == request["id"]
    assert "cats" in call["output"]
    assert "response.output_audio.delta" in t
    await c.close()


# --------------------------------------------------------------------------- faults


async def test_fault_refuse(sim: Simulator) -> None:
    sim.set_faults(Faults(refuse=True))
    with pytest.raises(InvalidStatus) as info:
        await connect(sim.url)
    assert info.value.response.status_code == 503
    sim.set_faults(Faults())
    c = await raw(sim, configure=False)  # later connections are served again
    await c.close()


async def test_fault_silent(sim: Simulator) -> None:
    sim.set_faults(Faults(silent=True))
    async with connect(sim.url) as ws:
        await ws.send(json.dumps(UPDATE))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)


async def test_fault_garbage_then_behaves(sim: Simulator) -> None:
    sim.set_faults(Faults(garbage=True))
    async with connect(sim.url, max_size=None) as ws:
        frames = [await ws.recv() for _ in range(7)]
        assert json.loads(frames[0])["type"] == "session.created"
        assert json.loads(frames[1])["type"] == "conversation.created"
        with pytest.raises(ValueError):
            json.loads(frames[2])
        assert json.loads(frames[3]) == [1, 2, 3]
        with pytest.raises(validate.ProtocolViolation):
            validate.check_server(json.loads(frames[4]))
        assert len(frames[5]) > 1024 * 1024
        validate.check_server(json.loads(frames[5]))
        assert json.loads(frames[6])["response_id"] == "resp_never_created"
        await ws.send(json.dumps(UPDATE))
        assert json.loads(await ws.recv())["type"] == "session.updated"


@pytest.mark.parametrize(
    ("faults", "code"),
    [(Faults(expire_after=0.2), 1001), (Faults(close_after=0.2), 1000)],
)
async def test_fault_timed_close(sim: Simulator, faults: Faults, code: int) -> None:
    sim.set_faults(faults)
    c = await raw(sim)
    with pytest.raises(ConnectionClosed):
        while True:
            await c.recv(timeout=5)
    assert c.ws.close_code == code
    if code == 1001:
        assert c.received[-1]["error"]["code"] == "session_expired"
        assert "maximum duration" in (c.ws.close_reason or "")


async def test_fault_drop_mid_answer(sim: Simulator) -> None:
    sim.set_faults(Faults(drop_mid_answer=True))
    c = await raw(sim)
    for msg in appends(speech_24k("what_time_is_it") + silence(700)):
        await c.send(msg)
    with pytest.raises(ConnectionClosed):
        while True:
            await c.recv(timeout=5)
    assert c.received[-1]["type"] == "response.output_audio.delta"
    assert c.ws.close_code == 1006
    await asyncio.wait_for(sim.sessions[-1].closed.wait(), 5)


# --------------------------------------------------------------------------- CLI


def test_cli_prints_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "simulator", "--port", "0", "--transcript", "hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ws://127.0.0.1:") and line.rstrip().endswith("/v1/realtime")

        async def probe() -> str:
            async with connect(line.strip()) as ws:
                return str(json.loads(await ws.recv())["type"])

        assert asyncio.run(probe()) == "session.created"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_unknown_fault() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "simulator", "--fault", "explode"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "unknown fault 'explode'" in proc.stderr
