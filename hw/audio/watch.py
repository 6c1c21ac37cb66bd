"""A small watchdog thread: polls a health check and reports the first failure once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(
        self,
        check: Callable[[], BaseException | None],
        report: Callable[[BaseException], None],
        *,
        interval: float,
        name: str,
    ) -> None:
        self._check = check
        self._report = report
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                exc = self._check()
            except Exception as err:  # a failing check is itself a failure to report
                exc = err
            if exc is not None:
                self._report(exc)
                return

    def stop(self) -> None:
        self._stop.set()
        # The report callback may close its owner from this very thread: never join oneself.
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
