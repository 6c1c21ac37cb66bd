"""A TCP relay on loopback the test can freeze: a dead Wi-Fi link, made of real sockets.

``freeze()`` stops forwarding in both directions without closing anything: no
FIN, no RST, the bytes in flight stay in the kernel's buffers, so the peer's
send buffer fills as it would behind a dead access point. Connections made
while frozen are accepted (the TCP handshake completes, as a NAT box would)
and carry nothing. ``thaw()`` makes new connections work again; a frozen one
stays dead (the client has given it up by then).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit


class FreezableRelay:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        assert parts.hostname and parts.port, target_url
        self._target = (parts.hostname, parts.port)
        self._target_url = parts
        self._server: asyncio.Server | None = None
        self._frozen = False
        self._links: list[asyncio.Event] = []  # per connection: set while it may flow
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def __aenter__(self) -> FreezableRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for w in self._writers:
            w.transport.abort()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        """The target's URL with the relay's address in its place."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return urlunsplit(self._target_url._replace(netloc=f"127.0.0.1:{port}"))

    def freeze(self) -> None:
        """Every link, current and new, stops carrying data (nothing is closed)."""
        self._frozen = True
        for flowing in self._links:
            flowing.clear()

    def thaw(self) -> None:
        """New connections flow again (the frozen ones stay dead)."""
        self._frozen = False

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(c_writer)
        flowing = asyncio.Event()
        self._links.append(flowing)
        if self._frozen:
            return  # accepted, never connected onwards: a black hole
        flowing.set()
        try:
            s_reader, s_writer = await asyncio.open_connection(*self._target)
        except OSError:
            c_writer.transport.abort()
            return
        self._writers.append(s_writer)
        for src, dst in ((c_reader, s_writer), (s_reader, c_writer)):
            task = asyncio.ensure_future(self._pump(src, dst, flowing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, flowing: asyncio.Event
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                await flowing.wait()  # frozen: stop reading, so the sender's buffers fill
                data = await src.read(65536)
                if not flowing.is_set():
                    await asyncio.Event().wait()  # caught in flight by the freeze: dropped
                if not data:
                    dst.close()
                    return
                dst.write(data)
                await dst.drain()
