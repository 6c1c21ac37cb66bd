"""One event stream, three ways to consume it.

``EventDispatcher`` fans every session event out to an async iterator
(``async for event in session``), named handlers (``session.on(name, fn)``,
called with ``event.args()``) and a listener object (``daemon.listener``). Handlers and
the listener run in order, one event at a time, in a task of their own, so
a slow handler never stalls the protocol. One that raises is logged and
reported as an ``error`` event (type ``listener_error``); the session goes on.

``agent_stopped`` is always the last event every consumer sees: it reaches
the iterator only after the handlers have had every earlier event (and any
``listener_error`` those produced), and nothing is emitted after it.

Events wait for an iterator only while one iterates, plus the few emitted
before ``seal()`` (the session seals when ``connect()`` returns): an iterator
started at once after ``connect()`` still sees the session from
``agent_starting`` on, and a session consumed only through handlers keeps no
queue (it used to hold every ``audio`` event for an iterator that never came).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from daemon import events as ev
from daemon.events import ALIASES, EVENT_TYPES, ErrorInfo, Event
from daemon.listener import AgentListener, dispatch

log = logging.getLogger(__name__)


def event_name(name: str) -> str:
    """The vocabulary name for ``name`` or an alias; ValueError naming the choices if unknown."""
    try:
        return ev.canonical(name)
    except KeyError:
        known = ", ".join(sorted(EVENT_TYPES)) + "; aliases: " + ", ".join(sorted(ALIASES))
        raise ValueError(f"unknown event name {name!r}; expected one of {known}") from None


def _describe(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class EventDispatcher:
    """Fans one event stream out to iterators, ``on()`` handlers and a listener (see above)."""

    def __init__(self, listener: AgentListener | None = None) -> None:
        self.listener = listener
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._stream: asyncio.Queue[Event | None] = asyncio.Queue()
        self._pending: deque[Event] = deque()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.finished = False  # agent_stopped was emitted
        self._iterators = 0  # events() generators running
        self._sealed = False  # past the start-up backlog: queue only while iterated

    # ---------------------------------------------------------------- subscribing

    def on(self, name: str, handler: Callable[..., Any]) -> Callable[[], None]:
        """Call ``handler(*event.args())`` (sync or async) for each ``name`` event."""
        if not callable(handler):
            raise TypeError(f"handler for {name!r} must be callable, got {type(handler).__name__}")
        key = event_name(name)
        self._handlers.setdefault(key, []).append(handler)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._handlers.get(key, []).remove(handler)

        return unsubscribe

    async def events(self) -> AsyncIterator[Event]:
        """Every event in order from the start-up backlog or, once sealed, from now on;
        ends after agent_stopped (at once if already over)."""
        self._iterators += 1
        try:
            while True:
                event = await self._stream.get()
                if event is None:
                    self._stream.put_nowait(None)  # wake any other iterator too
                    return
                yield event
        finally:
            self._iterators -= 1

    def seal(self) -> None:
        """End the start-up backlog: from now on events are queued only while iterated."""
        self._sealed = True

    @property
    def queued(self) -> int:
        """Events (and the end marker) waiting for an iterator."""
        return self._stream.qsize()

    def _queue(self, event: Event) -> None:
        if self._iterators or not self._sealed:
            self._stream.put_nowait(event)

    # ---------------------------------------------------------------- emitting

    def emit(self, event: Event) -> None:
        """Queue ``event`` for every consumer; dropped (logged) after agent_stopped."""
        if self.finished:
            log.debug("event after agent_stopped dropped: %s", event.type)
            return
        if isinstance(event, ev.AgentStopped):
            self.finished = True  # the iterator gets it once the handlers caught up
        else:
            self._queue(event)
        self._pending.append(event)
        self._kick()

    def _kick(self) -> None:
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # delivered once a loop runs (drain() or the next emit)
        self._idle.clear()
        self._task = loop.create_task(self._run(), name="voicepi-event-dispatch")

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until handlers have seen every event; False on timeout."""
        self._kick()
        if self._task is not None and self._task is asyncio.current_task():
            return False  # called from a handler: waiting for ourselves would deadlock
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        try:
            while self._pending:
                event = self._pending.popleft()
                if isinstance(event, ev.AgentStopped):
                    self._stream.put_nowait(event)
                    self._stream.put_nowait(None)
                await self._deliver(event)
        finally:
            self._task = None
            self._idle.set()

    async def _deliver(self, event: Event) -> None:
        handlers = list(self._handlers.get(event.type, ()))
        if handlers:
            args = event.args()
            for handler in handlers:
                try:
                    result = handler(*args)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._failed(event, f"handler {_describe(handler)}", exc)
        if self.listener is not None:
            try:
                await dispatch(self.listener, event)
            except Exception as exc:
                self._failed(event, f"listener {type(self.listener).__name__}", exc)

    def _failed(self, event: Event, where: str, exc: Exception) -> None:
        log.warning(
            "%s raised on %s: %s: %s", where, event.type, type(exc).__name__, exc, exc_info=exc
        )
        looping = isinstance(event, ev.Error) and event.error.type == "listener_error"
        if looping or isinstance(event, ev.AgentStopped):
            return  # no error about an error, and nothing after agent_stopped
        err = ev.Error(
            error=ErrorInfo(
                type="listener_error",
                message=f"{where} raised on {event.type!r}: {type(exc).__name__}: {exc}",
            )
        )
        self._queue(err)
        self._pending.appendleft(err)  # handlers see it next, before anything later
