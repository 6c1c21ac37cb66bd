"""Session settings and the GA ``session.update`` they become.

The shape follows the `openai` package's GA realtime types
(``RealtimeSessionCreateRequest``); tests check every update with the
protocol oracle (daemon/realtime/validate.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from daemon.vocab import PCM_RATE, Eagerness, NoiseReduction, TurnDetection, Voice

if TYPE_CHECKING:
    from daemon.config import RealtimeConfig

# The choices, from the one vocabulary the config schema also uses.
VOICES: tuple[Voice, ...] = get_args(Voice)
TURN_DETECTIONS: tuple[TurnDetection, ...] = get_args(TurnDetection)
NOISE_REDUCTIONS: tuple[NoiseReduction, ...] = get_args(NoiseReduction)
EAGERNESS: tuple[Eagerness, ...] = get_args(Eagerness)


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    """What the session asks the server for; ``session_update()`` renders it.

    Raises ValueError naming the field for a value the API would refuse (unknown voice,
    speed outside 0.25-1.5, idle_timeout_ms not 0 or 5000-30000, ...).
    """

    model: str = "gpt-realtime"
    voice: Voice = "marin"
    instructions: str = ""
    speed: float = 1.0
    transcription_model: str = "gpt-4o-mini-transcribe"  # "" = off
    noise_reduction: NoiseReduction = "far_field"
    turn_detection: TurnDetection = "semantic_vad"
    eagerness: Eagerness = "auto"
    vad_threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    idle_timeout_ms: int = 0
    create_response: bool = True
    interrupt_response: bool = True
    tools: tuple[dict[str, Any], ...] = ()  # GA tool dicts (function / mcp)
    tool_choice: str = "auto"

    def __post_init__(self) -> None:
        # A clear error naming the field beats a server-side "invalid_value" later.
        if self.turn_detection not in TURN_DETECTIONS:
            raise ValueError(
                f"turn_detection: expected one of {', '.join(TURN_DETECTIONS)}, "
                f"got {self.turn_detection!r}"
            )
        if self.noise_reduction not in NOISE_REDUCTIONS:
            raise ValueError(
                f"noise_reduction: expected one of {', '.join(NOISE_REDUCTIONS)}, "
                f"got {self.noise_reduction!r}"
            )
        if self.voice not in VOICES:
            raise ValueError(f"voice: expected one of {', '.join(VOICES)}, got {self.voice!r}")
        for name, lo, hi in (("speed", 0.25, 1.5), ("vad_threshold", 0.0, 1.0)):
            value = getattr(self, name)
            if not lo <= value <= hi:  # also false for NaN
                raise ValueError(f"{name}: expected {lo:g} to {hi:g}, got {value!r}")
        if self.idle_timeout_ms and not 5000 <= self.idle_timeout_ms <= 30000:
            raise ValueError(
                f"idle_timeout_ms: expected 0 (off) or 5000 to 30000, got {self.idle_timeout_ms}"
            )
        if self.eagerness not in EAGERNESS:
            raise ValueError(
                f"eagerness: expected one of {', '.join(EAGERNESS)}, got {self.eagerness!r}"
            )
        for i, tool in enumerate(self.tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
                raise ValueError(f"tools[{i}]: expected a dict with a 'type' key")

    @classmethod
    def from_config(cls, cfg: RealtimeConfig) -> SessionSettings:
        """The settings of the ``[realtime]`` config table."""
        return cls(
            model=cfg.model,
            voice=cfg.voice,
            instructions=cfg.instructions,
            speed=cfg.speed,
            transcription_model=cfg.transcription_model,
            noise_reduction=cfg.noise_reduction,
            turn_detection=cfg.turn_detection,
            eagerness=cfg.eagerness,
            vad_threshold=cfg.vad_threshold,
            prefix_padding_ms=cfg.prefix_padding_ms,
            silence_duration_ms=cfg.silence_duration_ms,
            idle_timeout_ms=cfg.idle_timeout_ms,
            interrupt_response=cfg.interrupt_response,
        )

    def turn_detection_config(self) -> dict[str, Any]:
        """The ``audio.input.turn_detection`` object of a session.update."""
        td: dict[str, Any] = {
            "type": self.turn_detection,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.turn_detection == "semantic_vad":
            td["eagerness"] = self.eagerness
        else:
            td["threshold"] = self.vad_threshold
            td["prefix_padding_ms"] = self.prefix_padding_ms
            td["silence_duration_ms"] = self.silence_duration_ms
            if self.idle_timeout_ms > 0:
                td["idle_timeout_ms"] = self.idle_timeout_ms
        return td

    def session_update(self, *, previous: SessionSettings | None = None) -> dict[str, Any]:
        """The GA ``session.update`` client event.

        With ``previous`` (an update of a running session) features switched
        off are sent as ``null``, which is how the API turns them off again;
        on the first update they are simply left out (off by default).
        """
        audio_in: dict[str, Any] = {
            "format": {"type": "audio/pcm", "rate": PCM_RATE},
            "turn_detection": self.turn_detection_config(),
        }
        if self.noise_reduction != "off":
            audio_in["noise_reduction"] = {"type": self.noise_reduction}
        elif previous is not None and previous.noise_reduction != "off":
            audio_in["noise_reduction"] = None
        if self.transcription_model:
            audio_in["transcription"] = {"model": self.transcription_model}
        elif previous is not None and previous.transcription_model:
            audio_in["transcription"] = None
        session: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": self.instructions,
            "audio": {
                "input": audio_in,
                "output": {
                    "format": {"type": "audio/pcm", "rate": PCM_RATE},
                    "voice": self.voice,
                    "speed": self.speed,
                },
            },
            "tools": [dict(t) for t in self.tools],
            "tool_choice": self.tool_choice,
        }
        return {"type": "session.update", "session": session}
