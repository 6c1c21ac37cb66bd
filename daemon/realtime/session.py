"""The asyncio websocket transport around the sans-I/O engine; it only pumps.

Frames in -> ``RealtimeProtocol.receive_text``; ``data_to_send`` -> frames
out (one writer task, in order); ``events_received`` -> the dispatcher
(async iterator, ``on()`` handlers, listener). Function calls run on the
optional ``tool_runner``. The API key goes only into the Authorization
header: it is redacted from websockets' debug log and never in a repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from daemon import events as ev
from daemon.apikey import key_problem
from daemon.events import ErrorInfo, Event
from daemon.listener import AgentListener
from daemon.urlpolicy import UrlPolicyError, check_url, is_loopback_url, needs_api_key

from .dispatch import EventDispatcher
from .engine import RealtimeProtocol
from .failures import (
    ConnectTimeout,
    MissingApiKey,
    RealtimeFailure,
    from_exception,
    missing_key,
)
from .linkwatch import LinkWatch
from .liveness import Liveness, LivenessBounds
from .settings import SessionSettings
from .toolcalls import ToolCalls, ToolRunner
from .transport import MAX_FRAME_BYTES, RedactingLogger, with_model

__all__ = [
    "MAX_FRAME_BYTES",
    "ConnectTimeout",
    "MissingApiKey",
    "RealtimeSession",
    "ToolRunner",
]

log = logging.getLogger(__name__)
ws_log = logging.getLogger("daemon.realtime.websocket")

CLOSE_TIMEOUT = 5.0  # seconds for the closing handshake before the TCP link is cut
DRAIN_TIMEOUT = 5.0  # seconds close() waits for handlers to see agent_stopped


class RealtimeSession:
    """One realtime conversation over a websocket (README: "Embedding the realtime engine").

    Create it, consume its events (``async for event in session``,
    ``session.on(name, handler)`` or ``listener=``), then ``await connect()``
    (or ``async with session``); feed it with ``send_audio``, ``send_text``,
    ``interrupt`` and the player's ``playback_progress``/``playback_finished``;
    end with ``await close()``. Every way the connection ends is one
    ``agent_stopped``, the last event. Call every method from the event loop
    that runs ``connect()``; none of the inputs blocks or raises once closed
    (they are ignored).

    Args:
        settings: the session's configuration, sent as the first ``session.update``.
        url: ``wss://`` endpoint (``ws://`` only for a loopback host); ``?model=`` is
            added from ``settings.model`` unless the URL names one.
        api_key: sent only as ``Authorization: Bearer``; None only for a loopback URL.
        listener: an ``AgentListener`` receiving every event as ``on_*`` calls.
        agent_name: the ``agent`` field of agent_start/agent_end/tool events.
        ping_interval: seconds of silence while listening before a ping checks the link.
        connect_timeout: seconds ``connect()`` waits for ``session.updated``.
        tool_runner: runs function calls (see ``ToolRunner``); without it, answer them
            with ``send_tool_output``.
        playback_tracking: False if no player reports progress (received audio then
            counts as played).
        liveness: bounds for a dead link and a stalled answer (``LivenessBounds``).
        clock: monotonic seconds, for liveness (tests inject one).
        max_frame_bytes: the largest server message accepted; a bigger one ends the
            session with an ``error`` (``frame_too_large``).

    Raises:
        ValueError: a malformed URL or key, or a non-positive interval (the message
            names the argument, never the key). ``MissingApiKey`` (also a
            ``RealtimeFailure``) without a key for a non-loopback URL.
    """

    def __init__(
        self,
        settings: SessionSettings,
        *,
        url: str,
        api_key: str | None,
        listener: AgentListener | None = None,
        agent_name: str = "assistant",
        ping_interval: float = 20.0,
        connect_timeout: float = 10.0,
        tool_runner: ToolRunner | None = None,
        playback_tracking: bool = True,
        liveness: LivenessBounds | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        try:
            check_url(url, "url", schemes=("wss", "ws"))
        except UrlPolicyError as exc:
            raise ValueError(str(exc)) from None
        if api_key is None and needs_api_key(url):
            # A typed auth failure (and still a ValueError for SDK callers).
            raise MissingApiKey(missing_key("an api_key; required for a non-loopback URL"))
        problem = None if api_key is None else key_problem(api_key)
        if problem is not None:
            raise ValueError(f"api_key: {problem}")  # never the key itself
        if ping_interval <= 0 or connect_timeout <= 0:
            raise ValueError("ping_interval and connect_timeout must be positive")
        self.url = with_model(url, settings.model)
        self.__api_key = api_key  # name-mangled; never logged or shown
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        # ping_interval is the quiet time while listening before a ping checks the link.
        self.liveness_bounds = liveness or LivenessBounds(listen_silence=ping_interval)
        self._clock = clock
        self._liveness: Liveness | None = None
        self._link: LinkWatch | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._expecting = False
        self.max_frame_bytes = max_frame_bytes
        self._engine = RealtimeProtocol(
            settings, agent_name=agent_name, playback_tracking=playback_tracking
        )
        self._dispatcher = EventDispatcher(listener)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._outbox: deque[dict[str, Any]] = deque()
        self._outbox_ready = asyncio.Event()
        self._outbox_empty = asyncio.Event()
        self._outbox_empty.set()
        self._ready = asyncio.Event()  # configured, or stopped
        self._stopped = asyncio.Event()
        self._tools = ToolCalls(tool_runner, self._tool_answered, self._dispatcher.emit)
        self._started = False
        self._closing = False

    def __repr__(self) -> str:
        return (
            f"RealtimeSession(url={self.url!r}, session_id={self.session_id!r}, "
            f"connected={self.connected})"
        )

    # ================================================================ state

    @property
    def protocol(self) -> RealtimeProtocol:
        """The sans-I/O engine this session pumps (read its state; do not feed it)."""
        return self._engine

    @property
    def tool_runner(self) -> ToolRunner | None:
        """What runs function calls (None: answer them with ``send_tool_output``)."""
        return self._tools.runner

    @property
    def session_id(self) -> str:
        """The server's session id ("" until ``session.created``)."""
        return self._engine.session_id

    @property
    def connected(self) -> bool:
        """The websocket is open and the session configured, and it has not stopped."""
        return self._ws is not None and self._engine.configured and not self._engine.closed

    @property
    def stop_reason(self) -> str | None:
        """Why the session stopped (``agent_stopped.reason``); None while it runs."""
        return self._engine.stop_reason

    # ================================================================ lifecycle

    async def connect(self) -> None:
        """Emit agent_starting, open the websocket, configure the session.

        Returns once ``session.updated`` arrived (``session_connected`` emitted); then
        send input and consume events. Start an iterator before this returns, or at
        once after it, to see every event from ``agent_starting`` on.

        Raises:
            RealtimeFailure: the connection failed (a ``ConnectionError`` whose
                ``.info`` is the typed ``ErrorInfo``: network, auth, rate_limit ...);
                ``ConnectTimeout`` (also a ``TimeoutError``) after ``connect_timeout``.
                A typed ``error`` and agent_stopped(reason="connect_failed") were
                emitted first.
            ConnectionError: the server ended the session before configuring it.
            RuntimeError: called a second time (one session, one connection).
        """
        if self._started:
            raise RuntimeError("connect() may be called only once per session")
        self._started = True
        self._dispatcher.emit(ev.AgentStarting())
        key = self.__api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with asyncio.timeout(self.connect_timeout):
                try:
                    self._ws = await connect(
                        self.url,
                        additional_headers=headers,
                        max_size=self.max_frame_bytes,
                        # Our own liveness check replaces websockets' keepalive: its
                        # ping waits behind a full send buffer on a dead link.
                        ping_interval=None,
                        close_timeout=CLOSE_TIMEOUT,
                        open_timeout=None,  # the timeout above covers it
                        proxy=None if is_loopback_url(self.url) else True,
                        logger=RedactingLogger(ws_log, key),
                    )
                except Exception as exc:
                    info = from_exception(exc, key)
                    info = dataclasses.replace(
                        info, message=f"cannot connect to {self.url}: {info.message}"
                    )
                    self._engine.connection_failed(info)
                    self._pump()
                    raise RealtimeFailure(info) from None
                self._engine.connection_made()
                loop = asyncio.get_running_loop()
                self._liveness = Liveness(self.liveness_bounds, self._clock())
                self._link = LinkWatch(
                    self._liveness,
                    self._clock,
                    closed=lambda: self._engine.closed,
                    expecting=lambda: self._engine.expecting_server,
                    dead=self._link_dead,
                    timed_out=self._response_timed_out,
                )
                self._writer = loop.create_task(self._write_loop(self._ws), name="voicepi-ws-tx")
                self._reader = loop.create_task(self._read_loop(self._ws), name="voicepi-ws-rx")
                self._pump()
                await self._ready.wait()
        except TimeoutError:
            info = from_exception(
                TimeoutError(
                    f"session not configured within {self.connect_timeout:g} s ({self.url})"
                )
            )
            await self._abort(info)
            raise ConnectTimeout(info) from None
        except asyncio.CancelledError:
            await self._abort()
            raise
        finally:
            self._dispatcher.seal()
        if self._engine.closed:
            raise ConnectionError(
                f"session ended before it was configured ({self._engine.stop_reason})"
            )
        assert self._link is not None and self._ws is not None
        self._watcher = asyncio.get_running_loop().create_task(
            self._link.run(self._ws), name="voicepi-ws-liveness"
        )

    async def _abort(self, info: ErrorInfo | None = None) -> None:
        """Connecting failed half way: drop the socket, stop with connect_failed."""
        self._engine.connection_failed(info)
        self._pump()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), CLOSE_TIMEOUT)
        await self._finish()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close cleanly and wait for handlers to see ``agent_stopped``.

        What was queued (the last audio, a tool output) is sent first; then the
        closing handshake (``code``, ``reason``), at most ``CLOSE_TIMEOUT`` s each.
        Emits agent_stopped(reason="client_closed") unless already stopped. Safe to
        call more than once and after the session ended; never raises.
        """
        self._closing = True
        ws = self._ws
        if ws is not None and not self._engine.closed:
            # What was queued (the last audio, a tool output) goes out before the close.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_empty.wait(), CLOSE_TIMEOUT)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code, reason), CLOSE_TIMEOUT * 2)
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._reader), CLOSE_TIMEOUT)
        self._engine.connection_lost(code, reason, by_client=True)  # no-op if already stopped
        self._pump()
        await self._finish()

    async def _finish(self) -> None:
        current = asyncio.current_task()
        pings = self._link.pings if self._link is not None else ()
        tasks = [
            t
            for t in (*self._tools.tasks, *pings, self._watcher, self._writer, self._reader)
            if t is not None
        ]
        for task in tasks:
            if task is not current and not task.done():
                task.cancel()
        others = [t for t in tasks if t is not current]
        if others:
            # asyncio.wait, unlike awaiting each task under suppress(BaseException), lets a
            # cancellation of the caller through (swallowing it hung the appliance's shutdown).
            await asyncio.wait(others)
            for task in others:
                if not task.cancelled():
                    task.exception()  # retrieved: reported elsewhere, not "never retrieved"
        await self._dispatcher.drain(DRAIN_TIMEOUT)

    async def wait_closed(self) -> str:
        """Wait until the session stopped and handlers saw ``agent_stopped``.

        Returns the stop reason: ``closed``, ``session_expired``, ``connection_lost``,
        ``client_closed`` or ``connect_failed``. Never hangs on a dead link: liveness
        ends it as ``connection_lost``.
        """
        await self._stopped.wait()
        await self._dispatcher.drain(DRAIN_TIMEOUT)
        return self._engine.stop_reason or ""

    async def __aenter__(self) -> RealtimeSession:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ================================================================ consuming

    def __aiter__(self) -> AsyncIterator[Event]:
        """Every event in order (frozen dataclasses of ``daemon.events``), ending after
        ``agent_stopped``. Events are queued for an iterator only while one runs (and
        the start-up ones until ``connect()`` returns); use one iterator per session."""
        return self._dispatcher.events()

    def on(self, name: str, handler: Callable[..., Any]) -> Callable[[], None]:
        """Call ``handler(*event.args())`` (sync or async) for each ``name`` event.

        ``name`` is an event type or an alias (``audio_end``, ``tool_start`` ...);
        the handler gets the event's fields in declaration order, ``type`` left
        out. Handlers run in order in a task of their own; one that raises is
        logged and reported as an ``error`` (``listener_error``). Returns a
        function that unsubscribes. Raises ValueError for an unknown name (listing
        the valid ones), TypeError if ``handler`` is not callable.
        """
        return self._dispatcher.on(name, handler)

    # ================================================================ inputs

    def send_audio(self, pcm: bytes) -> None:
        """Mic audio: PCM16 LE mono 24 kHz, any length (whole samples).

        Sent as 20 ms ``input_audio_buffer.append`` events; audio given before the
        session is configured (even before ``connect()``) is kept and sent in order.
        """
        self._engine.send_audio(pcm)
        self._pump()

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        """The speaker has played ``samples_played`` 24 kHz samples of ``item_id`` so far
        (cumulative): where an interruption truncates it. From a player's audio thread,
        go through ``SessionTracker``."""
        self._engine.playback_progress(item_id, samples_played)
        self._pump()

    def playback_finished(self, item_id: str) -> None:
        """The speaker played ``item_id`` to its end: it can no longer be interrupted."""
        self._engine.playback_finished(item_id)
        self._pump()

    def interrupt(self) -> None:
        """Barge in (a button): emit ``audio_interrupted``, truncate what plays at what was
        heard, cancel the active response and drop queued ones. Flush your speaker on
        ``audio_interrupted``."""
        self._engine.interrupt()
        self._pump()

    def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        """Answer function call ``call_id`` (from ``agent_tool_start``) with ``output``;
        emits ``agent_tool_end``. One ``response.create`` follows once every pending call
        of the response is answered. Not needed with a ``tool_runner``."""
        self._engine.send_tool_output(call_id, output, is_error=is_error)
        self._pump()

    def approve_tool(self, approval_id: str, approve: bool = True) -> None:
        """Answer a ``tool_approval_requested`` (an MCP approval request); a response
        follows either way."""
        self._engine.approve_tool(approval_id, approve)
        self._pump()

    def send_text(self, text: str) -> None:
        """A user text message, then a response to it."""
        self._engine.send_text(text)
        self._pump()

    def update_session(self, settings: SessionSettings) -> None:
        """Send a ``session.update`` with what changed from the current settings (the
        voice cannot change once answer audio was sent)."""
        self._engine.update_session(settings)
        self._pump()

    def create_response(self, **response: Any) -> None:
        """``response.create`` with these response parameters (``instructions=`` ...);
        queued until no response is active: never two at once."""
        self._engine.create_response(**response)
        self._pump()

    def send_raw(self, event: dict[str, Any]) -> None:
        """Send any client event as is, in order with the others (the server checks it)."""
        self._engine.send_raw(event)
        self._pump()

    def emit(self, event: Event) -> None:
        """Put an event of a layer above (agents: handoffs, guardrails, tool errors) on the
        stream, in order; dropped after ``agent_stopped``."""
        self._dispatcher.emit(event)

    # ================================================================ pumping

    def _pump(self) -> None:
        out = self._engine.data_to_send()
        if out:
            self._outbox.extend(out)
            self._outbox_empty.clear()
            self._outbox_ready.set()
        for event in self._engine.events_received():
            self._dispatcher.emit(event)
            if isinstance(event, ev.AgentToolStart):
                self._tools.start(event)
        if self._engine.configured or self._engine.closed:
            self._ready.set()
        if self._engine.closed:
            self._stopped.set()
        expecting = self._engine.expecting_server
        if expecting != self._expecting or self._engine.closed:
            self._expecting = expecting
            if self._link is not None:
                self._link.kick()  # the liveness bounds changed

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if self._liveness is not None:
                    self._liveness.frame(self._clock())
                self._engine.receive_text(frame)
                self._pump()
        except ConnectionClosed:
            pass  # the close code says how it ended
        except Exception as exc:  # a transport bug must still end in agent_stopped
            log.warning("websocket reader failed: %s: %s", type(exc).__name__, exc)
        code = ws.close_code
        reason = ws.close_reason or ""
        sent = ws.protocol.close_sent
        why: ErrorInfo | None = None
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG and not self._closing:
            why = ErrorInfo(
                type="frame_too_large",
                code="message_too_big",
                message=f"the server sent a message over {self.max_frame_bytes} bytes; "
                "the session was closed",
                kind="server",
            )
        log.info("websocket closed: code=%s reason=%r", code, reason)
        self._engine.connection_lost(code, reason, by_client=self._closing, error=why)
        self._pump()
        self._outbox_ready.set()  # let the writer see the end

    async def _write_loop(self, ws: ClientConnection) -> None:
        try:
            while not self._engine.closed:
                await self._outbox_ready.wait()
                while self._outbox:
                    msg = self._outbox.popleft()
                    await ws.send(json.dumps(msg, separators=(",", ":")))
                self._outbox_ready.clear()
                self._outbox_empty.set()
        except ConnectionClosed:
            pass  # the reader reports the close
        finally:
            self._outbox.clear()
            self._outbox_empty.set()

    def _link_dead(self, message: str) -> None:
        self._engine.link_dead(message)
        self._pump()

    def _response_timed_out(self, seconds: float) -> None:
        self._engine.response_timed_out(seconds)
        self._pump()

    def _tool_answered(self, call_id: str, output: str, is_error: bool) -> None:
        self._engine.send_tool_output(call_id, output, is_error=is_error)
        self._pump()
