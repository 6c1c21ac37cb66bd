"""A local OpenAI-Realtime-compatible server for the demo and the tests.

protocol.py is the sans-I/O session logic (responding.py its responses and
streamed answers, model.py its defaults and state records), server.py the websocket pump,
vad.py the energy VAD, speech.py the spoken answers, faults.py the fault modes.
"""

from __future__ import annotations

from .faults import Faults
from .model import SimError
from .protocol import SimProtocol
from .server import SimSession, Simulator, SimViolation

__all__ = ["Faults", "SimError", "SimProtocol", "SimSession", "SimViolation", "Simulator"]
