"""`voicepi run`: the daemon the systemd unit starts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .. import config, effective, memory
from .. import events as ev
from ..logsetup import add_log_format_argument, configure, log_event, set_context
from .common import add_config_argument

log = logging.getLogger("voicepi")
EXIT_UNAVAILABLE = 1  # mic or speaker not back within 30 s, or start-up failed: systemd restarts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    add_log_format_argument(parser)


def emit_to_log(event: ev.Event) -> None:
    """Every appliance and session event becomes one log record (audio chunks excepted)."""
    if isinstance(event, ev.SessionConnected):
        set_context(session_id=event.session_id or None)
    log_event(event)
    if isinstance(event, ev.SessionClosed):
        set_context(session_id=None)


def run(args: argparse.Namespace) -> int:
    memory.limit_malloc_arenas()  # before any thread starts
    configure(args.log_format, background=True)  # the loop never waits on journald
    cfg = effective.load_or_exit(args.config)
    logging.getLogger().setLevel(cfg.logging.level.upper())
    return asyncio.run(serve(cfg, args.config))


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop, handlers: Mapping[signal.Signals, Callable[[], object]]
) -> dict[signal.Signals, Any]:
    """Run each ``handlers[signum]`` on ``loop`` when the signal arrives; returns the
    previous handlers (for signal.signal) to restore afterwards.

    Not loop.add_signal_handler: asyncio hands the signal number to the loop through its
    self-pipe, which the audio thread's call_soon_threadsafe also writes to. On a starved
    CPU the pipe fills, the number is dropped ("Exception ignored when trying to write to the
    signal wakeup fd: BlockingIOError", again for every signal) and the stop is lost. A
    Python handler runs in the main thread (the loop's) whatever the pipe holds; it only
    queues the callback. Call from the main thread."""
    previous: dict[signal.Signals, Any] = {}
    for signum, callback in handlers.items():

        def handler(
            _signum: int, _frame: object, callback: Callable[[], object] = callback
        ) -> None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to do
                loop.call_soon_threadsafe(callback)

        previous[signum] = signal.signal(signum, handler)
    return previous


# After a session closes: its buffers are freed and the speaker has played its tail.
RELEASE_AFTER_SESSION_S = 3.0


def releasing_after_sessions(loop: asyncio.AbstractEventLoop) -> Callable[[ev.Event], None]:
    """``emit_to_log``, and ``memory.release`` on ``loop`` RELEASE_AFTER_SESSION_S after
    each ``session_closed``: back to idle, as at start-up."""

    def emit(event: ev.Event) -> None:
        emit_to_log(event)
        if isinstance(event, ev.SessionClosed):
            with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to do
                loop.call_soon_threadsafe(loop.call_later, RELEASE_AFTER_SESSION_S, memory.release)

    return emit


class _ReleaseAtReady:
    """The appliance's notifier, releasing memory once at the first READY: start-up (the
    config, the models, the resampler design, PortAudio's probe, ALSA's configuration)
    has freed what it used by then, and glibc would keep it resident; the code it ran
    stays mapped until dropped (``memory.release``)."""

    def __init__(self, notifier: Any) -> None:
        self._notifier = notifier
        self._released = False

    def ready(self) -> None:
        if not self._released:
            self._released = True
            memory.release()
        self._notifier.ready()

    def status(self, text: str) -> None:
        self._notifier.status(text)

    def watchdog(self) -> None:
        self._notifier.watchdog()

    def stopping(self) -> None:
        self._notifier.stopping()


async def serve(cfg: config.Config, config_path: str | None) -> int:
    """The daemon on ``cfg`` until a stop; the exit status (0, 1, or 78 via SystemExit)."""
    from ..notify import Notifier
    from ..urlpolicy import needs_api_key

    notifier = Notifier()
    try:
        key, _ = config.find_api_key()  # a malformed key is a config error: exit 78
    except config.ConfigError as exc:
        config.exit_config_error(exc)
    if key is None and needs_api_key(cfg.realtime.url):
        log.warning(
            "no OpenAI API key: looked for %s; the wake word works, but each wake "
            "shows an auth error until the key is added",
            config.API_KEY_PLACES,
        )
    from hw.audio import watch

    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    watch.poll_on(loop)  # the mic's and speaker's watchdogs run here: no thread each
    # While the speaker is retried and the models load: a stop cancels the start-up.
    originals = install_signal_handlers(
        loop, {signal.SIGTERM: main.cancel, signal.SIGINT: main.cancel}
    )
    try:
        return await _serve(cfg, config_path, notifier, key, loop)
    finally:
        watch.poll_on(None)
        for signum, old in originals.items():
            signal.signal(signum, old)


async def _serve(
    cfg: config.Config,
    config_path: str | None,
    notifier: Any,
    key: str | None,
    loop: asyncio.AbstractEventLoop,
) -> int:
    from ..appliance.reload import plan_reload
    from ..appliance.wiring import SpeakerUnavailable, build, open_speaker, run_until_stopped

    running: list[Any] = []  # the appliance, once built

    emit = releasing_after_sessions(loop)

    def speaker_lost(exc: BaseException) -> None:
        # The speaker's stream died mid-run: one error event, then exit 1 so systemd
        # restarts us and the start-up path above retries the device for 30 s.
        emit_to_log(ev.Error(error=ev.ErrorInfo(type="speaker_unavailable", message=str(exc))))
        if running:
            running[0].request_stop(EXIT_UNAVAILABLE)

    def on_speaker_error(exc: BaseException) -> None:  # a watchdog thread
        loop.call_soon_threadsafe(speaker_lost, exc)

    try:
        player = await open_speaker(
            cfg, emit=emit_to_log, notifier=notifier, on_error=on_speaker_error
        )
    except SpeakerUnavailable as exc:
        print(f"voicepi: {config.one_line(str(exc))}", file=sys.stderr, flush=True)
        return EXIT_UNAVAILABLE
    except asyncio.CancelledError:
        return 0
    notifier.status("loading wake word models")
    try:
        built = build(
            cfg, emit=emit, notifier=_ReleaseAtReady(notifier), api_key=key, player=player
        )
    except config.ConfigError as exc:
        player.close()
        config.exit_config_error(exc)
    except Exception as exc:  # a start-up failure is one line and exit 1, never a traceback
        player.close()
        print(f"voicepi: cannot start: {config.one_line(str(exc))}", file=sys.stderr, flush=True)
        return EXIT_UNAVAILABLE
    app = built.app
    running.append(app)

    def reload() -> None:
        notifier.reloading()
        try:
            new = effective.load(config_path)
        except config.ConfigError as exc:
            log.error(
                "config reload failed, keeping the running config: %s", config.one_line(str(exc))
            )
            notifier.ready()
            return
        plan = plan_reload(app.cfg, new)
        app.apply_config(plan.config)
        logging.getLogger().setLevel(plan.config.logging.level.upper())
        log.info(
            "config reloaded: %s applied%s",
            ", ".join(plan.applied) or "nothing",
            f"; {', '.join(plan.needs_restart)} need a restart" if plan.needs_restart else "",
        )
        notifier.ready()

    handlers = {
        signal.SIGTERM: lambda: app.request_stop(0),
        signal.SIGINT: lambda: app.request_stop(0),
        signal.SIGHUP: reload,
    }
    previous = install_signal_handlers(loop, handlers)  # serve() restores TERM and INT
    log.info("voicepi starting")
    try:
        code = await run_until_stopped(built)
    finally:
        signal.signal(signal.SIGHUP, previous[signal.SIGHUP])
    log.info("voicepi stopped (exit %d)", code)
    return code
