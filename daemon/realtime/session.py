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
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from daemon import events as ev
from daemon.config import ConfigError, check_url, key_problem
from daemon.events import ErrorInfo, Event
from daemon.listener import AgentListener
from daemon.urlpolicy import is_loopback_url

from .dispatch import EventDispatcher
from .engine import RealtimeProtocol
from .failures import RealtimeFailure, from_exception, missing_key
from .liveness import Liveness, LivenessBounds
from .settings import SessionSettings

log = logging.getLogger(__name__)
ws_log = logging.getLogger("daemon.realtime.websocket")

CLOSE_TIMEOUT = 5.0  # seconds for the closing handshake before the TCP link is cut
DRAIN_TIMEOUT = 5.0  # seconds close() waits for handlers to see agent_stopped
# Largest server message accepted (websockets max_size). The largest legitimate event
# measured against the simulator is session.updated echoing 120 tools with 1 KB
# descriptions and 8 KB of instructions: 178 KB; audio deltas are 6.6 KB. 4 MiB is 23
# times that, and still holds a retrieved 40 s input audio item. A bigger frame is refused
# from its header (no 50 MB buffered): an `error` (frame_too_large), then agent_stopped.
MAX_FRAME_BYTES = 4 * 1024 * 1024


class MissingApiKey(RealtimeFailure, ValueError):
    """No API key for a non-loopback URL: a typed ``auth`` failure."""


class ConnectTimeout(RealtimeFailure, TimeoutError):
    """Not configured within connect_timeout: a typed ``network`` failure."""


class ToolRunner(Protocol):
    """Runs a function call; the returned string is sent as the call's output."""

    async def run(self, name: str, arguments_json: str, call_id: str) -> str: ...


def with_model(url: str, model: str) -> str:
    """``url`` with ``?model=`` appended unless it already names one."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "model" for k, _ in query) or not model:
        return url
    query.append(("model", model))
    return urlunsplit(parts._replace(query=urlencode(query)))


_AUDIO_FRAMES = (
    b'"input_audio_buffer.append"',
    b'"response.output_audio.delta"',
    b'"response.audio.delta"',
)


def _is_audio_frame(frame: Any) -> bool:
    """A websockets Frame carrying audio (bulk base64), by its first bytes."""
    head = bytes(getattr(frame, "data", b"")[:160])
    return any(marker in head for marker in _AUDIO_FRAMES)


class _Redacting(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs request headers at DEBUG; the key must not reach any log."""

    def __init__(self, logger: logging.Logger, secret: str | None) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def _clean(self, value: Any) -> Any:
        if self._secret and isinstance(value, str) and self._secret in value:
            return value.replace(self._secret, "***")
        return value

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            if msg in ("> %s", "< %s") and args and _is_audio_frame(args[0]):
                return  # 50 mic frames a second: transport_event records say what matters
            clean = tuple(self._clean(a) for a in args)
            self.logger.log(level, self._clean(msg), *clean, **kwargs)


class RealtimeSession:
    """One realtime conversation over a websocket; see the README's sdk section."""

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
            check_url(url, "url")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if api_key is None and not is_loopback_url(url):
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
        self._watcher: asyncio.Task[None] | None = None
        self._watch_kick = asyncio.Event()
        self._expecting = False
        self._pings: set[asyncio.Task[None]] = set()
        self.max_frame_bytes = max_frame_bytes
        self.tool_runner = tool_runner
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
        self._tool_tasks: set[asyncio.Task[None]] = set()
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
        return self._engine

    @property
    def session_id(self) -> str:
        return self._engine.session_id

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._engine.configured and not self._engine.closed

    @property
    def stop_reason(self) -> str | None:
        return self._engine.stop_reason

    # ================================================================ lifecycle

    async def connect(self) -> None:
        """Emit agent_starting, open the websocket, configure the session.

        Returns once ``session.updated`` arrived. If that does not happen, emits a
        typed ``error`` (failures.py: network, auth, rate_limit ...) and
        agent_stopped(reason="connect_failed"), then raises ``RealtimeFailure``
        (a ConnectionError carrying that ErrorInfo).
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
                        logger=_Redacting(ws_log, key),
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
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(self._ws), name="voicepi-ws-liveness"
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
        """Clean close; agent_stopped(reason="client_closed") unless already stopped."""
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
        tasks = [
            t
            for t in (*self._tool_tasks, *self._pings, self._watcher, self._writer, self._reader)
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
        """Wait for agent_stopped (and its handlers); return the stop reason."""
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
        return self._dispatcher.events()

    def on(self, name: str, handler: Callable[..., Any]) -> Callable[[], None]:
        """``handler(*event.args())`` for each ``name`` event (aliases too); returns unsubscribe."""
        return self._dispatcher.on(name, handler)

    # ================================================================ inputs

    def send_audio(self, pcm: bytes) -> None:
        self._engine.send_audio(pcm)
        self._pump()

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        self._engine.playback_progress(item_id, samples_played)
        self._pump()

    def playback_finished(self, item_id: str) -> None:
        self._engine.playback_finished(item_id)
        self._pump()

    def interrupt(self) -> None:
        self._engine.interrupt()
        self._pump()

    def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        self._engine.send_tool_output(call_id, output, is_error=is_error)
        self._pump()

    def approve_tool(self, approval_id: str, approve: bool = True) -> None:
        self._engine.approve_tool(approval_id, approve)
        self._pump()

    def send_text(self, text: str) -> None:
        self._engine.send_text(text)
        self._pump()

    def update_session(self, settings: SessionSettings) -> None:
        self._engine.update_session(settings)
        self._pump()

    def create_response(self, **response: Any) -> None:
        self._engine.create_response(**response)
        self._pump()

    def send_raw(self, event: dict[str, Any]) -> None:
        self._engine.send_raw(event)
        self._pump()

    def emit(self, event: Event) -> None:
        """Put an event of a layer above (agents: handoffs, guardrails, tool errors) on the
        stream."""
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
            if isinstance(event, ev.AgentToolStart) and self.tool_runner is not None:
                self._start_tool(event)
        if self._engine.configured or self._engine.closed:
            self._ready.set()
        if self._engine.closed:
            self._stopped.set()
        expecting = self._engine.expecting_server
        if expecting != self._expecting or self._engine.closed:
            self._expecting = expecting
            self._watch_kick.set()  # the liveness bounds changed

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

    async def _watch(self, ws: ClientConnection) -> None:
        """Liveness (liveness.py): ping a quiet server, end a dead link, give up a lost answer."""
        assert self._liveness is not None
        live = self._liveness
        b = self.liveness_bounds
        while not self._engine.closed:
            now = self._clock()
            expecting = self._engine.expecting_server
            verdict, wake_at = live.check(now, expecting)
            if verdict == "ping":
                task = asyncio.get_running_loop().create_task(self._ping(ws))
                self._pings.add(task)
                task.add_done_callback(self._pings.discard)
            elif verdict == "dead":
                silent = now - live.last_heard
                what = "during an answer" if expecting else "while listening"
                log.warning("link dead: no frame or pong for %.1f s %s", silent, what)
                self._engine.link_dead(
                    f"the link is dead: no data from the server for {silent:.1f} s {what}"
                )
                self._pump()
                ws.transport.abort()  # no closing handshake can pass a dead link
                return
            elif verdict == "response_timeout":
                self._engine.response_timed_out(b.response_timeout)
                self._pump()
            self._watch_kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._watch_kick.wait(), max(0.0, wake_at - self._clock()))

    async def _ping(self, ws: ClientConnection) -> None:
        # On a dead link ping() itself may wait behind a full send buffer; the
        # deadline is counted from when it was due, not from when it left.
        with contextlib.suppress(Exception):
            pong = await ws.ping()
            await pong
            if self._liveness is not None:
                self._liveness.pong(self._clock())

    # ================================================================ tools

    def _start_tool(self, event: ev.AgentToolStart) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run_tool(event), name=f"voicepi-tool-{event.tool}"
        )
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _run_tool(self, event: ev.AgentToolStart) -> None:
        assert self.tool_runner is not None
        is_error = False
        try:
            result = await self.tool_runner.run(event.tool, event.arguments, event.call_id)
            output = result if isinstance(result, str) else json.dumps(result, default=str)
            # A runner may flag a failure it already explained (daemon.agents' ToolOutput).
            is_error = bool(getattr(result, "is_error", False))
        except Exception as exc:  # every call is answered, even a failing one
            is_error = True
            message = f"{type(exc).__name__}: {exc}"
            output = json.dumps({"error": f"tool {event.tool!r} failed: {message}"})
            log.warning("tool %s (call %s) failed: %s", event.tool, event.call_id, message)
            self._dispatcher.emit(
                ev.Error(
                    error=ErrorInfo(
                        type="tool_error",
                        message=f"tool {event.tool!r} (call {event.call_id}) raised {message}",
                        code="tool_failed",
                    )
                )
            )
        self._engine.send_tool_output(event.call_id, output, is_error=is_error)
        self._pump()
