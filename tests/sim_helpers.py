"""Helpers for the simulator tests: speech fixtures at 24 kHz and a raw protocol client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import wave
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from daemon import dsp
from daemon.realtime import validate

SPEECH = Path(__file__).parent / "fixtures" / "speech"
BYTES_PER_MS = 48


@functools.cache
def speech_24k(name: str) -> bytes:
    """A speech fixture as PCM16 mono 24 kHz."""
    with wave.open(str(SPEECH / f"{name}.wav")) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    return dsp.array_to_pcm16(dsp.Resampler(rate, 24000).process(dsp.pcm16_to_array(pcm)))


def silence(ms: int) -> bytes:
    return bytes(ms * BYTES_PER_MS)


def appends(pcm: bytes, chunk: int = 960) -> list[dict[str, Any]]:
    return [
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(pcm[i : i + chunk]).decode(),
        }
        for i in range(0, len(pcm), chunk)
    ]


class RawClient:
    """A bare websocket client that checks every server message against the oracle."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, msg: dict[str, Any] | str) -> None:
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        msg = json.loads(frame)
        validate.check_server(msg)
        self.received.append(msg)
        return dict(msg)

    async def until(self, type_: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Messages up to and including the first of ``type_``."""
        out: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv()
                out.append(msg)
                if msg["type"] == type_:
                    return out

    async def close(self) -> None:
        """Close while draining: an unread receive queue would hold back the close frame."""

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in self.ws:
                    pass

        task = asyncio.get_running_loop().create_task(drain())
        await self.ws.close()
        await task

    async def error(self, timeout: float = 10.0) -> dict[str, Any]:
        return (await self.until("error", timeout))[-1]["error"]  # type: ignore[no-any-return]
