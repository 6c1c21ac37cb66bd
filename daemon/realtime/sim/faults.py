"""Fault modes of the simulator (the fault matrix of issue 7); all off by default."""

from __future__ import annotations

from dataclasses import dataclass

# The real server's words when the 60-minute cap ends a session.
EXPIRED_MESSAGE = "Your session hit the maximum duration of 60 minutes."


@dataclass(frozen=True, kw_only=True)
class Faults:
    """How the simulator misbehaves for the connections that follow."""

    drop_mid_answer: bool = False  # abort the TCP connection (no close frame) after the 1st delta
    refuse: bool = False  # reject the websocket handshake (HTTP 503)
    silent: bool = False  # accept, never send anything
    garbage: bool = False  # bad, oversized and out-of-order frames early on, then behave
    expire_after: float | None = None  # seconds: `session_expired` error, then close 1001
    close_after: float | None = None  # seconds: normal close 1000

    def __post_init__(self) -> None:
        for name in ("expire_after", "close_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}: expected seconds >= 0, got {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return ("drop_mid_answer", "refuse", "silent", "garbage", "expire_after", "close_after")

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> Faults:
        """From CLI specs: ``refuse``, ``garbage``, ``expire_after=2.5`` ..."""
        kwargs: dict[str, object] = {}
        for spec in specs:
            name, _, value = spec.partition("=")
            name = name.strip().replace("-", "_")
            if name not in cls.names():
                raise ValueError(
                    f"--fault: unknown fault {name!r} (one of {', '.join(cls.names())})"
                )
            if name in ("expire_after", "close_after"):
                try:
                    kwargs[name] = float(value)
                except ValueError:
                    raise ValueError(
                        f"--fault {name}=SECONDS: expected a number, got {value!r}"
                    ) from None
            elif value:
                raise ValueError(f"--fault {name}: takes no value, got {value!r}")
            else:
                kwargs[name] = True
        return cls(**kwargs)  # type: ignore[arg-type]
