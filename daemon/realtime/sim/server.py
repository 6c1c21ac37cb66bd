"""The websocket server around SimProtocol: it only pumps frames and time.

One SimProtocol per accepted connection; its events go out in order, audio
on the schedule the protocol asks for (``next_deadline``). Faults apply to
connections made after ``set_faults``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from daemon.realtime import validate

from . import speech
from .answers import default_answer
from .faults import EXPIRED_MESSAGE, Faults
from .protocol import SimProtocol

log = logging.getLogger(__name__)

PATH = "/v1/realtime"
OVERSIZED_BYTES = 1_100_000  # the garbage fault's valid frame above 1 MiB


class SimViolation(AssertionError):
    """The simulator was about to send a message that fails the protocol oracle."""


class SimSession:
    """What tests inspect about one accepted connection."""

    def __init__(self, protocol: SimProtocol, *, headers: dict[str, str], faults: Faults) -> None:
        self.protocol = protocol
        self.headers = headers  # never print: Authorization carries the key
        self.faults = faults
        self.server_messages: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    def __repr__(self) -> str:
        return (
            f"SimSession(id={self.protocol.session_id!r}, messages_in={len(self.client_messages)}, "
            f"close_code={self.close_code})"
        )

    @property
    def session_id(self) -> str:
        return self.protocol.session_id

    @property
    def client_messages(self) -> list[dict[str, Any]]:
        return self.protocol.client_messages

    @property
    def audio_in(self) -> bytearray:
        return self.protocol.audio_in

    @property
    def user_items(self) -> list[tuple[str, bytes]]:
        return self.protocol.user_items

    @property
    def truncates(self) -> list[dict[str, Any]]:
        return self.protocol.truncates

    def sent(self, type_: str) -> list[dict[str, Any]]:
        """The server messages of one type, in order."""
        return [m for m in self.server_messages if m.get("type") == type_]


class Simulator:
    """A local OpenAI-Realtime-compatible websocket server; see the README."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults = Faults(),  # noqa: B008 (frozen, never mutated)
        transcripts: Sequence[str] = (),
        answer: Callable[[str], str] | None = None,
        speech: Literal["auto", "espeak", "tone"] | Callable[[str], bytes] = "auto",
        realtime_factor: float = 4.0,
        function_calls: Mapping[str, tuple[str, dict[str, Any]]] = {},
        strict: bool = False,
        chunk_ms: int = 100,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if not realtime_factor > 0:
            raise ValueError(f"realtime_factor: expected > 0, got {realtime_factor!r}")
        self.host = host
        self.port = port
        self.faults = faults
        self.transcripts = list(transcripts)
        self._transcript_iter = iter(self.transcripts)
        self.answer = answer
        # A callable (text -> PCM16 24 kHz mono) lets a test choose the exact answer audio.
        self._speak: Callable[[str], bytes] | None = speech if callable(speech) else None
        self.speech_mode = "tone" if callable(speech) else _speech_mode(speech)
        self.realtime_factor = realtime_factor
        self.function_calls = dict(function_calls)
        self.strict = strict  # validate every own message (tests): a bad one raises SimViolation
        self.chunk_ms = chunk_ms
        self.clock = clock
        self.sessions: list[SimSession] = []
        self.violations: list[str] = []
        self.url = ""
        self._server: Server | None = None
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, sessions={len(self.sessions)}, faults={self.faults})"

    def set_transcripts(self, transcripts: Sequence[str]) -> None:
        """User transcripts for the next turns, in order (shared by all connections)."""
        self.transcripts = list(transcripts)
        self._transcript_iter = iter(self.transcripts)

    def set_faults(self, faults: Faults) -> None:
        """Faults for the connections made from now on."""
        self.faults = faults

    # ================================================================ lifecycle

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=None,  # like the real server: appends and items may be large
            ping_interval=None,
            logger=log,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        # Listening on every address: the URL a client here can use (and the config accepts).
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        self.url = f"ws://{host}:{self.port}{PATH}"

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close(close_connections=True)
            await server.wait_closed()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ================================================================ connections

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") != PATH:
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"no realtime endpoint here; use {PATH}\n"
            )
        if self.faults.refuse:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "simulator: refusing connections (fault: refuse)\n"
            )
        return None

    def _next_transcript(self) -> str | None:
        return next(self._transcript_iter, None)

    def _answer(self, prompt: str) -> str:
        if self.answer is not None:
            return self.answer(prompt)
        return default_answer(prompt, self.clock())

    def _synthesize(self, text: str) -> bytes:
        if self._speak is not None:
            return self._speak(text)
        return speech.synthesize(text, self.speech_mode)

    async def _handle(self, ws: ServerConnection) -> None:
        faults = self.faults
        request = ws.request
        assert request is not None
        model = parse_qs(urlsplit(request.path).query).get("model", ["gpt-realtime"])[0]
        protocol = SimProtocol(
            session_id=f"sess_sim{next(self._ids):03d}{secrets.token_hex(4)}",
            model=model,
            synthesize=self._synthesize,
            answer=self._answer,
            next_transcript=self._next_transcript,
            function_calls=self.function_calls,
            realtime_factor=self.realtime_factor,
            chunk_ms=self.chunk_ms,
        )
        session = SimSession(protocol, headers=_headers(request.headers), faults=faults)
        self.sessions.append(session)
        try:
            if faults.silent:
                async for _ in ws:
                    pass  # accept, never answer
            else:
                await self._serve(ws, session, faults)
        except ConnectionClosed:
            pass
        except SimViolation:
            await ws.close(1011, "simulator sent an invalid message")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.wait_closed(), 5.0)
            session.close_code = ws.close_code
            session.closed.set()

    async def _serve(self, ws: ServerConnection, session: SimSession, faults: Faults) -> None:
        loop = asyncio.get_running_loop()
        protocol = session.protocol
        start = loop.time()
        inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for frame in ws:
                    inbox.put_nowait(frame)
            except ConnectionClosed:
                pass
            finally:
                inbox.put_nowait(None)

        reader = loop.create_task(read(), name="voicepi-sim-rx")
        try:
            protocol.connection_made()
            if not await self._flush(ws, session, faults):
                return
            if faults.garbage:
                await self._send_garbage(ws, session)
            while True:
                deadlines = [protocol.next_deadline()]
                if faults.expire_after is not None:
                    deadlines.append(start + faults.expire_after)
                if faults.close_after is not None:
                    deadlines.append(start + faults.close_after)
                due = min((d for d in deadlines if d is not None), default=None)
                timeout = None if due is None else max(0.0, due - loop.time())
                try:
                    frame = await asyncio.wait_for(inbox.get(), timeout)
                except TimeoutError:
                    frame = ""  # a tick: time moved on
                else:
                    if frame is None:
                        return  # the client went away
                now = loop.time()
                if frame:
                    protocol.receive_text(frame, now)
                protocol.advance(now)
                if not await self._flush(ws, session, faults):
                    return
                if faults.expire_after is not None and now >= start + faults.expire_after:
                    await self._send(ws, session, _expired_error(protocol))
                    await ws.close(1001, EXPIRED_MESSAGE)
                    return
                if faults.close_after is not None and now >= start + faults.close_after:
                    await ws.close(1000, "simulator: close_after")
                    return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _flush(self, ws: ServerConnection, session: SimSession, faults: Faults) -> bool:
        """Send what the protocol produced; False once the connection was dropped on purpose."""
        for msg in session.protocol.data_to_send():
            await self._send(ws, session, msg)
            if faults.drop_mid_answer and msg["type"] == "response.output_audio.delta":
                assert ws.transport is not None
                ws.transport.abort()  # no close frame: an abnormal drop (1006)
                return False
        return True

    async def _send(self, ws: ServerConnection, session: SimSession, msg: dict[str, Any]) -> None:
        if self.strict and validate.available():
            try:
                validate.check_server(msg)
            except validate.ProtocolViolation as exc:
                text = f"{msg.get('type')!r}: {exc} (param={exc.param})"
                self.violations.append(text)
                raise SimViolation(text) from None
        session.server_messages.append(msg)
        await ws.send(json.dumps(msg, separators=(",", ":")))

    async def _send_garbage(self, ws: ServerConnection, session: SimSession) -> None:
        """Frames a misbehaving server sends (not checked: they are meant to be wrong)."""
        tag = session.session_id
        frames: list[str] = [
            "this is not JSON {",
            "[1, 2, 3]",
            json.dumps({"type": "simulator.unknown_event", "event_id": f"event_{tag}_g1"}),
            json.dumps(  # valid, but larger than websockets' default 1 MiB limit
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "event_id": f"event_{tag}_g2",
                    "item_id": "item_garbage_oversized",
                    "content_index": 0,
                    "delta": "x" * OVERSIZED_BYTES,
                }
            ),
            json.dumps(  # out of order: audio for a response that was never created
                {
                    "type": "response.output_audio.delta",
                    "event_id": f"event_{tag}_g3",
                    "response_id": "resp_never_created",
                    "item_id": "item_never_created",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "AAAAAA==",
                }
            ),
        ]
        for frame in frames:
            await ws.send(frame)


def _expired_error(protocol: SimProtocol) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": f"event_{protocol.session_id}_expired",
        "error": {
            "type": "invalid_request_error",
            "code": "session_expired",
            "message": EXPIRED_MESSAGE,
            "param": None,
            "event_id": None,
        },
    }


def _headers(headers: Headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.raw_items()}


def _speech_mode(mode: str) -> Literal["espeak", "tone"]:
    if mode not in ("auto", "espeak", "tone"):
        raise ValueError(f"speech: expected auto, espeak or tone, got {mode!r}")
    return speech.resolve(mode)  # type: ignore[arg-type]
