"""A scripted realtime websocket server on loopback, for session (transport) tests.

Unlike the simulator it has no behaviour of its own beyond the handshake: it
sends ``session.created`` on connect and (unless ``configure=False``) answers
the first ``session.update`` with ``session.updated``. Everything else the test
drives: ``send`` frames (valid events, garbage), ``close``/``abort`` the link,
``wait_for`` client messages. Every client message is also checked against the
protocol oracle here, so a message that slipped past the engine fixture fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from daemon.realtime import validate
from tests import engine_script as S

# The server's own debug log would print the client's request headers (the
# key): keep it quiet so key-leak assertions only judge the client.
_log = logging.getLogger("tests.scripted_server")
_log.setLevel(logging.WARNING)

TIMEOUT = 10.0  # generous: a tolerance for a loaded machine, not a speed check


class ScriptedServer:
    def __init__(
        self,
        *,
        configure: bool = True,
        reject_status: int | None = None,
        reject_body: bytes | None = None,
        reject_headers: dict[str, str] | None = None,
    ) -> None:
        self.configure = configure
        self.reject_status = reject_status
        self.reject_body = reject_body  # None: echo the credential back
        self.reject_headers = reject_headers or {}
        self.handshakes = 0  # connection attempts seen
        self.connections: list[ServerConnection] = []  # accepted, in order
        self.received: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self.request_headers: Headers | None = None
        self.path = ""
        self.conn: ServerConnection | None = None
        self.updated_sent_at: int | None = None  # len(received) when session.updated went out
        self.rejected_body = b""
        self._changed: asyncio.Condition | None = None
        self._connected = asyncio.Event()
        self._handler_done = asyncio.Event()
        self._server: Server | None = None
        self._url = ""
        self._paused = False

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> ScriptedServer:
        self._changed = asyncio.Condition()
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            max_size=None,
            logger=_log,
            process_request=self._process_request,
        )
        port = self._server.sockets[0].getsockname()[1]
        self._url = f"ws://127.0.0.1:{port}/v1/realtime"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        if self._paused and self.conn is not None:
            self.conn.transport.abort()  # a paused transport never notices the peer left
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), TIMEOUT)

    @property
    def url(self) -> str:
        assert self._url, "the server is not started"
        return self._url

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        self.request_headers = request.headers
        self.path = request.path
        self.handshakes += 1
        if self.reject_status is None:
            return None
        if self.reject_body is not None:
            response = conn.respond(HTTPStatus(self.reject_status), self.reject_body.decode())
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            for name, value in self.reject_headers.items():
                response.headers[name] = value
            return response
        # Echo the credential back, as a hostile or chatty server might: the
        # client must still never show it.
        auth = request.headers.get("Authorization", "")
        self.rejected_body = f"bad credential {auth}\n".encode()
        response = conn.respond(HTTPStatus(self.reject_status), self.rejected_body.decode())
        response.headers["X-Echo"] = auth
        return response

    async def _handler(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.updated_sent_at = None  # each connection is configured afresh
        self.connections.append(conn)
        self._connected.set()
        try:
            await conn.send(json.dumps(S.session_created()))
            async for frame in conn:
                msg = json.loads(frame)
                try:
                    validate.check_client(msg)
                except validate.ProtocolViolation as exc:
                    self.invalid.append(f"{msg.get('type')!r}: {exc}")
                await self._record(msg)
                if (
                    msg.get("type") == "session.update"
                    and self.configure
                    and self.updated_sent_at is None
                ):
                    await self.send_updated()
        except ConnectionClosed:
            pass
        finally:
            self._handler_done.set()

    async def _record(self, msg: dict[str, Any]) -> None:
        assert self._changed is not None
        async with self._changed:
            self.received.append(msg)
            self._changed.notify_all()

    # ---------------------------------------------------------------- driving

    async def wait_connected(self) -> ServerConnection:
        await asyncio.wait_for(self._connected.wait(), TIMEOUT)
        assert self.conn is not None
        return self.conn

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        conn = await self.wait_connected()
        await conn.send(event if isinstance(event, str | bytes) else json.dumps(event))

    async def send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.send(event)

    async def send_updated(self) -> None:
        self.updated_sent_at = len(self.received)
        await self.send(S.session_updated())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        conn = await self.wait_connected()
        await conn.close(code, reason)

    async def abort(self) -> None:
        """Drop the TCP link without a closing handshake (an abnormal closure)."""
        conn = await self.wait_connected()
        conn.transport.abort()

    async def pause(self) -> None:
        """Stop reading from the client: no pongs, no closing handshake (a hung peer)."""
        conn = await self.wait_connected()
        self._paused = True
        conn.transport.pause_reading()

    async def wait_handler_done(self) -> None:
        await asyncio.wait_for(self._handler_done.wait(), TIMEOUT)

    # ---------------------------------------------------------------- inspecting

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == type_]

    def types(self) -> list[str]:
        return [str(m.get("type")) for m in self.received]

    async def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool]) -> None:
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: predicate(self.received)), TIMEOUT
            )

    async def wait_for(self, type_: str, count: int = 1) -> list[dict[str, Any]]:
        """The first ``count`` client messages of ``type_`` (waits for them)."""
        await self.wait_until(lambda msgs: sum(m.get("type") == type_ for m in msgs) >= count)
        return self.of_type(type_)[:count]
