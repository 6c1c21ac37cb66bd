"""The simulator's public names (the implementation lives in daemon/realtime/sim/)."""

from __future__ import annotations

from .sim import Faults, SimError, SimProtocol, SimSession, Simulator, SimViolation

__all__ = ["Faults", "SimError", "SimProtocol", "SimSession", "SimViolation", "Simulator"]
