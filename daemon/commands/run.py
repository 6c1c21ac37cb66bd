"""`voicepi run`: the daemon the systemd unit starts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

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
    configure(args.log_format, background=True)  # the loop never waits on journald
    cfg = prepare(config.load_or_exit(args.config))
    logging.getLogger().setLevel(cfg.logging.level.upper())
    return asyncio.run(serve(cfg, args.config))


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

    loop.add_signal_handler(signal.SIGTERM, app.request_stop, 0)
    loop.add_signal_handler(signal.SIGINT, app.request_stop, 0)
    loop.add_signal_handler(signal.SIGHUP, reload)
    log.info("voicepi starting")
    code = await run_until_stopped(built)
    log.info("voicepi stopped (exit %d)", code)
    return code
