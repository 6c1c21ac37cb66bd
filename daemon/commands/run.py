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

from .. import config
from .. import events as ev
from ..logsetup import add_log_format_argument, configure, log_event, set_context
from .common import add_config_argument

log = logging.getLogger("voicepi")


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
    configure(args.log_format)
    cfg = prepare(config.load_or_exit(args.config))
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


def prepare(cfg: config.Config) -> config.Config:
    """The board profile fills in what the config leaves at its defaults."""
    from hw.profiles import apply_profile

    return apply_profile(cfg)


async def serve(cfg: config.Config, config_path: str | None) -> int:
    from ..appliance.reload import plan_reload
    from ..appliance.wiring import build, run_until_stopped
    from ..notify import Notifier

    notifier = Notifier()
    notifier.status("loading wake word models")
    try:
        built = build(cfg, emit=emit_to_log, notifier=notifier, api_key=config.api_key())
    except config.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr, flush=True)
        return config.EX_CONFIG
    app = built.app
    loop = asyncio.get_running_loop()

    def reload() -> None:
        notifier.reloading()
        try:
            new = prepare(config.load(config_path))
        except config.ConfigError as exc:
            log.error("config reload failed, keeping the running config: %s", exc)
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
    previous = install_signal_handlers(loop, handlers)
    log.info("voicepi starting")
    try:
        code = await run_until_stopped(built)
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
    log.info("voicepi stopped (exit %d)", code)
    return code
