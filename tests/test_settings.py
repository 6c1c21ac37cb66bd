"""SessionSettings -> the GA session.update, checked by the protocol oracle."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.config import RealtimeConfig
from daemon.realtime import validate
from daemon.realtime.settings import SessionSettings

TOOL = {
    "type": "function",
    "name": "get_time",
    "description": "Current time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
}
MCP = {
    "type": "mcp",
    "server_label": "docs",
    "server_url": "https://example.com/mcp",
    "require_approval": "always",
}


def _session(s: SessionSettings, **kw: Any) -> dict[str, Any]:
    msg = s.session_update(**kw)
    validate.check_client(msg)
    assert msg["type"] == "session.update"
    session: dict[str, Any] = msg["session"]
    return session


def test_defaults_are_the_ga_shape_with_semantic_vad() -> None:
    s = _session(SessionSettings(instructions="Be brief."))
    assert s["type"] == "realtime"
    assert s["output_modalities"] == ["audio"]
    assert s["instructions"] == "Be brief."
    audio_in = s["audio"]["input"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_in["turn_detection"] == {
        "type": "semantic_vad",
        "create_response": True,
        "interrupt_response": True,
        "eagerness": "auto",
    }
    assert audio_in["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert audio_in["noise_reduction"] == {"type": "far_field"}
    assert s["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    assert s["tools"] == [] and s["tool_choice"] == "auto"
    assert "model" not in s  # the model goes in the URL


def test_server_vad_carries_its_parameters_and_idle_timeout_only_when_on() -> None:
    base = SessionSettings(
        turn_detection="server_vad",
        vad_threshold=0.7,
        prefix_padding_ms=200,
        silence_duration_ms=800,
        interrupt_response=False,
        create_response=False,
    )
    td = _session(base)["audio"]["input"]["turn_detection"]
    assert td == {
        "type": "server_vad",
        "create_response": False,
        "interrupt_response": False,
        "threshold": 0.7,
        "prefix_padding_ms": 200,
        "silence_duration_ms": 800,
    }
    base2 = SessionSettings(turn_detection="server_vad", idle_timeout_ms=6000)
    assert _session(base2)["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 6000


def test_off_switches_are_left_out_first_and_nulled_on_update() -> None:
    off = SessionSettings(transcription_model="", noise_reduction="off")
    first = _session(off)["audio"]["input"]
    assert "transcription" not in first and "noise_reduction" not in first
    update = _session(off, previous=SessionSettings())["audio"]["input"]
    assert update["transcription"] is None and update["noise_reduction"] is None
    # Already off before: nothing to switch off.
    again = _session(off, previous=off)["audio"]["input"]
    assert "transcription" not in again and "noise_reduction" not in again


def test_near_field_voice_speed_tools_and_choice() -> None:
    s = _session(
        SessionSettings(
            noise_reduction="near_field",
            voice="cedar",
            speed=1.25,
            tools=(TOOL, MCP),
            tool_choice="required",
        )
    )
    assert s["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    assert s["audio"]["output"]["voice"] == "cedar"
    assert s["audio"]["output"]["speed"] == 1.25
    assert s["tools"] == [TOOL, MCP]
    assert s["tool_choice"] == "required"


def test_from_config_copies_every_shared_field() -> None:
    cfg = RealtimeConfig(
        model="gpt-realtime-mini",
        voice="echo",
        instructions="hi",
        speed=0.9,
        transcription_model="",
        noise_reduction="off",
        turn_detection="server_vad",
        eagerness="high",
        vad_threshold=0.3,
        prefix_padding_ms=100,
        silence_duration_ms=300,
        idle_timeout_ms=5000,
        interrupt_response=False,
    )
    s = SessionSettings.from_config(cfg)
    for name in (
        "model",
        "voice",
        "instructions",
        "speed",
        "transcription_model",
        "noise_reduction",
        "turn_detection",
        "eagerness",
        "vad_threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "idle_timeout_ms",
        "interrupt_response",
    ):
        assert getattr(s, name) == getattr(cfg, name), name
    validate.check_client(s.session_update())


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"turn_detection": "push"}, "turn_detection: expected one of semantic_vad, server_vad"),
        ({"noise_reduction": "loud"}, "noise_reduction: expected one of"),
        ({"eagerness": "eager"}, "eagerness: expected one of"),
        ({"tools": ({"name": "x"},)}, "tools[0]: expected a dict with a 'type' key"),
    ],
)
def test_bad_values_name_the_field(kw: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        SessionSettings(**kw)


def test_unknown_keys_in_a_tool_are_caught_by_the_oracle() -> None:
    bad = SessionSettings(tools=({**TOOL, "strict": True},))
    with pytest.raises(validate.ProtocolViolation) as exc:
        validate.check_client(bad.session_update())
    assert exc.value.code == "unknown_parameter"
