"""Issue 14: a server message over the frame cap ends the session with a typed error, and the
client never buffers it (websockets refuses it from the frame header)."""

from __future__ import annotations

import asyncio
import json

from daemon import events as ev
from daemon.realtime.session import MAX_FRAME_BYTES, RealtimeSession
from daemon.realtime.settings import SessionSettings
from tests import engine_script as S
from tests.scripted_server import TIMEOUT, ScriptedServer


async def test_a_50_mb_frame_is_a_typed_error_and_a_clean_stop() -> None:
    async with ScriptedServer() as srv:
        session = RealtimeSession(SessionSettings(), url=srv.url, api_key=None)
        seen: list[ev.Event] = []

        async def collect() -> None:
            async for event in session:
                seen.append(event)

        task = asyncio.create_task(collect())
        await session.connect()
        # A legitimate big message (2 MiB of audio, above websockets' 1 MiB default) passes.
        await srv.send_all([S.response_created(), S.output_item_added()])
        await srv.send(json.dumps(S.audio_delta(b"\x01\x02" * (1024 * 1024))))
        # 50 MB in one frame: what used to add 287 MiB of peak RSS.
        await srv.send('{"type":"response.output_audio.delta","delta":"' + "A" * 50_000_000)
        assert await asyncio.wait_for(session.wait_closed(), TIMEOUT) == "connection_lost"
        await asyncio.wait_for(task, TIMEOUT)
    assert any(isinstance(e, ev.Audio) for e in seen)
    errors = [e.error for e in seen if isinstance(e, ev.Error)]
    assert [(e.type, e.code) for e in errors] == [("frame_too_large", "message_too_big")]
    assert str(MAX_FRAME_BYTES) in errors[0].message
    kinds = [e.type for e in seen]
    assert kinds.index("error") < kinds.index("agent_stopped")
