"""Configuration: TOML read with tomllib into frozen dataclasses.

One generic loader walks the dataclass tree, so every section gets the same
checks for free: unknown keys, types, choices and ranges, each reported as a
single line naming the key path (``realtime.voice: expected one of ...``).
Field metadata carries the constraints and the README's one-line docs.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from .events import SoundName

DEFAULT_PATH = Path("/etc/voicepi/config.toml")
EX_CONFIG = 78  # sysexits.h: the unit must not restart-loop on a bad config

VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)


class ConfigError(Exception):
    """A bad key or value, with the dotted path that names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def opt(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    factory: Any = dataclasses.MISSING,
    min: float | None = None,
    max: float | None = None,
    secret: bool = False,
    index: bool = False,
) -> Any:
    """A config field with its README doc and its range (``index``: a str that may be
    given as a non-negative integer, e.g. a device index)."""
    meta = {"doc": doc, "min": min, "max": max, "secret": secret, "index": index}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class RealtimeConfig:
    url: str = opt(
        "wss://api.openai.com/v1/realtime",
        doc="Realtime websocket URL; ws:// only to loopback hosts (the simulator).",
    )
    model: str = opt("gpt-realtime", doc="Realtime model name, sent as ?model=.")
    voice: Literal[
        "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"
    ] = opt("marin", doc="Output voice; fixed after the first audio of a session.")
    instructions: str = opt(
        "You are a helpful voice assistant on a small speaker. Answer briefly.",
        doc="System instructions for the default agent.",
    )
    speed: float = opt(1.0, min=0.25, max=1.5, doc="Speech speed of the answer.")
    transcription_model: str = opt(
        "gpt-4o-mini-transcribe",
        doc='Input transcription model (user transcripts); "" turns transcription off.',
    )
    noise_reduction: Literal["far_field", "near_field", "off"] = opt(
        "far_field", doc="Server-side input noise reduction."
    )
    turn_detection: Literal["semantic_vad", "server_vad"] = opt(
        "semantic_vad", doc="Server turn detection."
    )
    eagerness: Literal["auto", "low", "medium", "high"] = opt("auto", doc="semantic_vad eagerness.")
    vad_threshold: float = opt(0.5, min=0.0, max=1.0, doc="server_vad activation threshold.")
    prefix_padding_ms: int = opt(300, min=0, max=5000, doc="server_vad audio kept before speech.")
    silence_duration_ms: int = opt(
        500, min=50, max=10000, doc="server_vad silence that ends a turn."
    )
    idle_timeout_ms: int = opt(
        0, min=0, max=30000, doc="server_vad idle timeout (0 = off; 5000-30000 when on)."
    )
    interrupt_response: bool = opt(
        True, doc="Server cancels the response when the user speaks over it."
    )
    connect_timeout: float = opt(
        10.0, min=1.0, max=120.0, doc="Seconds to connect and be configured."
    )
    ping_interval: float = opt(
        5.0,
        min=1.0,
        max=300.0,
        doc="Server silence while listening before a ping checks the link, seconds.",
    )
    answer_silence: float = opt(
        3.0,
        min=0.5,
        max=60.0,
        doc="Server silence while an answer is expected or arriving before a ping, seconds.",
    )
    pong_timeout: float = opt(
        2.0, min=0.5, max=60.0, doc="A ping unanswered this long means the link is dead, seconds."
    )
    response_timeout: float = opt(
        15.0,
        min=2.0,
        max=300.0,
        doc="A started answer silent this long (link alive) is given up, seconds.",
    )


@dataclass(frozen=True)
class AudioConfig:
    input: str = opt(
        "default",
        index=True,
        doc='Capture device: name substring, index (e.g. 3), "default" or file:PATH (WAV).',
    )
    output: str = opt(
        "default",
        index=True,
        doc='Playback device: name substring, index (e.g. 3), "default" or file:PATH (WAV).',
    )
    input_channels: int = opt(1, min=1, max=16, doc="Channels to open the capture device with.")
    input_channel: int = opt(0, min=0, max=15, doc="The channel fed to the wake word and session.")
    input_rate: int = opt(
        0, min=0, max=192000, doc="Capture rate in Hz; 0 = the device's default rate."
    )
    output_rate: int = opt(
        24000, min=8000, max=192000, doc="Playback rate in Hz (the answer is resampled)."
    )
    block_ms: int = opt(20, min=10, max=40, doc="Playback block, milliseconds.")
    jitter_ms: int = opt(
        80, min=0, max=500, doc="Audio buffered before playback starts, milliseconds."
    )
    volume: int = opt(80, min=0, max=100, doc="Playback volume, percent.")
    barge_in: Literal["voice", "button", "gate"] = opt(
        "voice",
        doc='"voice" (hardware AEC or audio.echo_cancel), "button" (half duplex) or "gate" '
        "(louder than playback).",
    )
    echo_cancel: Literal["auto", "on", "off"] = opt(
        "auto",
        doc='In-process echo cancellation (WebRTC AEC3) of the answer on the mic; "auto" = on '
        'when barge_in = "voice" and the board profile has no hardware AEC.',
    )
    noise_suppression: bool = opt(
        False,
        doc="The canceller's noise suppression (it also dims the user's voice over the answer).",
    )
    gate_margin_db: float = opt(
        10.0, min=0.0, max=60.0, doc='"gate": how much louder than playback the mic must be.'
    )
    silence_timeout: float = opt(
        0.0,
        min=0.0,
        max=600.0,
        doc="Seconds of exact digital zeros that mean the mic is gone (0 = off); set it when "
        "PulseAudio or PipeWire moves a removed mic's stream to a silent fallback.",
    )


@dataclass(frozen=True)
class WakewordConfig:
    engine: Literal["pyopen-wakeword", "openwakeword", "microwakeword"] = opt(
        "pyopen-wakeword",
        doc="Wake word engine (openwakeword needs the extra; microwakeword pymicro-wakeword).",
    )
    models: tuple[str, ...] = opt(
        factory=lambda: ("hey_jarvis",),
        doc="Built-in model names or paths to .tflite/.onnx models.",
    )
    threshold: float = opt(
        0.5,
        min=0.0,
        max=1.0,
        doc="Score that counts as a detection (a microwakeword model's default: its own cutoff).",
    )
    thresholds: dict[str, float] = opt(
        factory=dict, doc="Per-model thresholds overriding `threshold`, by model name."
    )
    patience: int = opt(1, min=1, max=20, doc="Consecutive 80 ms frames over the threshold.")
    refractory: float = opt(
        2.0,
        min=0.0,
        max=60.0,
        doc="Seconds after a detection to ignore (and until the score falls below the threshold).",
    )
    speaking_tail: float = opt(
        0.5, min=0.0, max=10.0, doc="Seconds scoring stays paused after the speaker drains."
    )
    gate: bool = opt(
        True,
        doc="Silence gate: skip the wake models on audio at the noise floor (same detections).",
    )


@dataclass(frozen=True)
class SessionConfig:
    inactivity_timeout: float = opt(
        15.0, min=1.0, max=3600.0, doc="Idle seconds before the session closes."
    )
    countdown: int = opt(
        5, min=0, max=60, doc="Last seconds announced by user_inactivity_countdown."
    )
    max_session: float = opt(
        3000.0, min=10.0, max=3540.0, doc="Hard session limit, seconds (server cap is 3600)."
    )
    preroll: float = opt(
        2.0, min=0.0, max=10.0, doc="Seconds of audio kept before the wake word ends."
    )


@dataclass(frozen=True)
class GpioConfig:
    pin_factory: Literal["", "mock", "lgpio", "rpigpio", "pigpio", "native"] = opt(
        "", doc='gpiozero pin factory; "" lets gpiozero choose, "mock" for tests.'
    )


@dataclass(frozen=True)
class HardwareConfig:
    profile: Literal[
        "generic", "respeaker-2mic", "respeaker-4mic", "respeaker-usb-v2", "aiy-voice-hat"
    ] = opt("generic", doc="Board profile filling in audio channels, LEDs and button.")


# LED pattern vocabulary (hw/leds/patterns.py renders it): the keys of
# leds.patterns / leds.colors and the effects a key may take.
LED_PATTERN_KEYS = (
    "starting",
    "idle",
    "connecting",
    "listening",
    "thinking",
    "working",
    "speaking",
    "countdown",
    "approval",
    "muted",
    "error",
)
LED_EFFECTS = ("off", "solid", "blink", "pulse", "breathe", "spin")


@dataclass(frozen=True)
class LedsConfig:
    driver: Literal["", "none", "led", "pwmled", "rgbled", "apa102"] = opt(
        "", doc='LED driver; "" takes the profile\'s, "none" disables LEDs.'
    )
    pins: tuple[int, ...] = opt(
        factory=tuple, doc="GPIO pins: one for led/pwmled, three (r, g, b) for rgbled."
    )
    count: int = opt(0, min=0, max=255, doc="APA102 pixels; 0 takes the profile's.")
    spi_port: int = opt(0, min=0, max=1, doc="APA102 SPI port.")
    spi_device: int = opt(1, min=0, max=1, doc="APA102 SPI chip select.")
    power_pin: int = opt(-1, min=-1, max=27, doc="LED power-enable pin; -1 takes the profile's.")
    brightness: float = opt(0.5, min=0.0, max=1.0, doc="Overall LED brightness.")
    patterns: dict[str, str] = opt(
        factory=dict, doc='Per-state pattern overrides, e.g. {thinking = "pulse"}.'
    )
    colors: dict[str, str] = opt(
        factory=dict, doc='Per-state colour overrides as "#rrggbb", e.g. {listening = "#0000ff"}.'
    )


@dataclass(frozen=True)
class ButtonConfig:
    pin: int = opt(-1, min=-1, max=27, doc="Button GPIO pin; -1 takes the profile's (or none).")
    pull_up: bool = opt(True, doc="Button wired to ground with the internal pull-up.")
    bounce_time: float = opt(0.02, min=0.0, max=0.5, doc="Debounce, seconds.")
    double_press_window: float = opt(
        0.35, min=0.05, max=2.0, doc="Max gap between two presses of a double press."
    )
    long_press: float = opt(1.0, min=0.2, max=10.0, doc="Seconds held that make a long press.")


SOUND_NAMES: tuple[SoundName, ...] = get_args(SoundName)  # the [sounds] keys naming a sound


@dataclass(frozen=True)
class SoundsConfig:
    wake: str = opt(
        "default",
        doc='Played at the wake (word or button), before the socket connects: "default" '
        '(a short built-in chime), "" (off) or the path of a WAV file.',
    )
    end: str = opt(
        "default",
        doc='Played when the session closes for inactivity or by the user: "default", "" or a WAV.',
    )
    error: str = opt(
        "default",
        doc="Played when an error ends a session or a wake (no key, offline, quota, server): "
        '"default", "" or a WAV.',
    )
    volume: int = opt(70, min=0, max=100, doc="Sound volume, percent, relative to audio.volume.")


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"] = opt("info", doc="Log level.")


# --------------------------------------------------------------------------- agents (issue 6)

ToolPolicy = Literal["always", "never", "ask"]


@dataclass(frozen=True)
class AgentConfig:
    name: str = opt("assistant", doc="`[[agents]]`: agent name (the first agent is the default).")
    instructions: str = opt("", doc='Instructions; "" takes realtime.instructions.')
    handoff_description: str = opt("", doc="What this agent is for (shown to agents handing off).")
    tools: tuple[str, ...] = opt(
        factory=lambda: ("*",), doc='Tool names this agent may call; "*" = every tool.'
    )
    handoffs: tuple[str, ...] = opt(
        factory=tuple, doc="Agents this one can hand off to (transfer_to_<name> tools)."
    )
    mcp_servers: tuple[str, ...] = opt(
        factory=lambda: ("*",), doc='MCP server labels this agent uses; "*" = all.'
    )


@dataclass(frozen=True)
class ToolParamConfig:
    type: Literal["string", "integer", "number", "boolean", "path"] = opt(
        "string",
        doc='JSON type; "path" is a relative path confined to `base_dir` (`..` and absolute '
        "paths refused).",
    )
    description: str = opt("", doc="What the value means (shown to the model).")
    enum: tuple[str, ...] = opt(factory=tuple, doc="Allowed string values (empty = any).")
    pattern: str = opt("", doc="Regex a string value must fully match.")
    range: tuple[float, ...] = opt(factory=tuple, doc="[min, max] for numbers (empty = any).")
    required: bool = opt(True, doc="The model must give this argument.")
    base_dir: str = opt("", doc='Absolute directory a "path" argument must stay inside.')


@dataclass(frozen=True)
class CommandToolConfig:
    name: str = opt("", doc="`[[tools]]`: command tool name (letters, digits, _ and -).")
    description: str = opt("", doc="What the tool does (shown to the model).")
    argv: tuple[str, ...] = opt(
        factory=tuple, doc="Fixed command line; `{param}` is replaced by a validated argument."
    )
    parameters: dict[str, ToolParamConfig] = opt(
        factory=dict,
        doc="Arguments by name: {type, description, enum, pattern, range, required}.",
    )
    timeout: float = opt(10.0, min=0.1, max=600.0, doc="Seconds before the command is killed.")
    needs_approval: bool = opt(False, doc="Ask for approval (button press) before running.")
    env: tuple[str, ...] = opt(
        factory=tuple,
        doc="Extra environment variable names passed to the command (never the API key).",
    )


@dataclass(frozen=True)
class McpServerConfig:
    label: str = opt("", doc="`[[mcp_servers]]`: server label (unique).")
    url: str = opt("", doc="MCP server URL (https://; http:// only to loopback).")
    description: str = opt("", doc="What the server offers (shown to the model).")
    allowed_tools: tuple[str, ...] = opt(factory=tuple, doc="Tools to expose (empty = all).")
    require_approval: Literal["always", "never"] = opt(
        "never", doc="Whether the server asks voicepi to approve each call."
    )
    headers: dict[str, str] = opt(
        factory=dict,
        secret=True,
        doc="HTTP headers; `${credential:NAME}` is replaced by the credential NAME.",
    )


@dataclass(frozen=True)
class ToolingConfig:
    timeout: float = opt(10.0, min=0.1, max=600.0, doc="Seconds a Python tool may run.")
    approval_timeout: float = opt(
        10.0, min=1.0, max=300.0, doc="Seconds to wait for an approval before rejecting."
    )
    policy: dict[str, ToolPolicy] = opt(
        factory=dict,
        doc='Per-tool approval: {name = "always" | "never" | "ask"}; MCP tools as "label.tool".',
    )
    plugins: bool = opt(True, doc="Load plugin tools from the `voicepi.tools` entry points.")
    max_output_chars: int = opt(
        4000, min=100, max=100000, doc="Longer tool outputs are cut to this many characters."
    )
    max_processes: int = opt(
        4, min=1, max=64, doc="Command tool processes running at once; more calls get an error."
    )


@dataclass(frozen=True)
class GuardrailsConfig:
    patterns: tuple[str, ...] = opt(
        factory=tuple, doc="Regexes (case-insensitive) the spoken answer must not match."
    )
    check_every: int = opt(
        100, min=1, max=10000, doc="Characters of transcript between checks (and at the end)."
    )


@dataclass(frozen=True)
class Config:
    realtime: RealtimeConfig = opt(factory=RealtimeConfig, doc="Realtime session.")
    audio: AudioConfig = opt(factory=AudioConfig, doc="Audio devices.")
    wakeword: WakewordConfig = opt(factory=WakewordConfig, doc="Wake word.")
    session: SessionConfig = opt(factory=SessionConfig, doc="Session lifetime.")
    gpio: GpioConfig = opt(factory=GpioConfig, doc="GPIO.")
    hardware: HardwareConfig = opt(factory=HardwareConfig, doc="Board profile.")
    leds: LedsConfig = opt(factory=LedsConfig, doc="LEDs.")
    button: ButtonConfig = opt(factory=ButtonConfig, doc="Button.")
    logging: LoggingConfig = opt(factory=LoggingConfig, doc="Logging.")
    sounds: SoundsConfig = opt(factory=SoundsConfig, doc="Sounds for wake, end and error.")
    agents: tuple[AgentConfig, ...] = opt(
        factory=tuple, doc="Agents (`[[agents]]`); the first is the default."
    )
    tools: tuple[CommandToolConfig, ...] = opt(factory=tuple, doc="Command tools (`[[tools]]`).")
    tooling: ToolingConfig = opt(factory=ToolingConfig, doc="Tool running and approvals.")
    mcp_servers: tuple[McpServerConfig, ...] = opt(
        factory=tuple, doc="Remote MCP servers (`[[mcp_servers]]`)."
    )
    guardrails: GuardrailsConfig = opt(factory=GuardrailsConfig, doc="Output guardrails.")


# --------------------------------------------------------------------------- loading

T = TypeVar("T")


def _describe(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _convert(tp: Any, value: object, path: str, meta: Mapping[str, Any]) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {_describe(value)}")
        return _build(tp, value, path)
    if origin is Literal:
        choices = get_args(tp)
        if isinstance(value, str) and value not in choices:  # "DEBUG" means "debug"
            folded = {c.lower(): c for c in choices if isinstance(c, str)}
            value = folded.get(value.lower(), value)
        if value not in choices:
            shown = ", ".join(repr(c) if c == "" else str(c) for c in choices)
            raise ConfigError(path, f"expected one of {shown}, got {_describe(value)}")
        return value
    if origin in (types.UnionType, typing.Union):
        errors = []
        for arg in get_args(tp):
            try:
                return _convert(arg, value, path, meta)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(path, " or ".join(errors))
    if origin is tuple:
        (item_tp, _ellipsis) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        return tuple(_convert(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if origin is dict:
        _key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a table, got {_describe(value)}")
        return {str(k): _convert(val_tp, v, f"{path}.{k}", meta) for k, v in value.items()}
    if tp is type(None):
        if value is not None:
            raise ConfigError(path, f"expected nothing, got {_describe(value)}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        return _check_range(value, path, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {_describe(value)}")
        return _check_range(float(value), path, meta)
    if tp is str:
        if meta.get("index") and type(value) is int and value >= 0:
            return str(value)  # audio.input = 3: the device with index 3
        if not isinstance(value, str):
            wanted = "a string or a device index" if meta.get("index") else "a string"
            raise ConfigError(path, f"expected {wanted}, got {_describe(value)}")
        return value
    raise ConfigError(path, f"unsupported type {tp!r}")  # pragma: no cover - schema bug


def _check_range(value: float, path: str, meta: Mapping[str, Any]) -> Any:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(path, f"expected a value from {lo:g} to {hi:g}, got {value!r}")
    if isinstance(value, float) and value != value:  # NaN passes both comparisons
        raise ConfigError(path, "expected a number, got nan")
    return value


def _build(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(path, f"unknown key (known keys here: {known})")
        kwargs[key] = _convert(hints[key], value, path, fields[key].metadata)
    obj = cls(**kwargs)
    _check_object(obj, prefix)
    return obj


def _check_object(obj: object, prefix: str) -> None:
    """Cross-field checks that one field's type cannot express."""
    if isinstance(obj, AudioConfig) and obj.input_channel >= obj.input_channels:
        raise ConfigError(
            f"{prefix}.input_channel",
            f"expected a channel below audio.input_channels ({obj.input_channels}), "
            f"got {obj.input_channel}",
        )
    if isinstance(obj, RealtimeConfig):
        check_url(obj.url, f"{prefix}.url")
        if obj.idle_timeout_ms and not 5000 <= obj.idle_timeout_ms <= 30000:
            raise ConfigError(
                f"{prefix}.idle_timeout_ms",
                f"expected 0 (off) or 5000 to 30000 (the API's range), got {obj.idle_timeout_ms}",
            )
    if isinstance(obj, WakewordConfig):
        if not obj.models:
            raise ConfigError(f"{prefix}.models", "expected at least one model")
        for name, value in obj.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{prefix}.thresholds.{name}", f"expected 0 to 1, got {value!r}")
    if isinstance(obj, LedsConfig):
        _check_leds(obj, prefix)
    if isinstance(obj, SoundsConfig):
        for name in SOUND_NAMES:
            value = getattr(obj, name)
            if value not in ("default", "") and not _is_file(value):
                raise ConfigError(
                    f"{prefix}.{name}",
                    f'expected "default", "" or the path of a WAV file, got {value!r} (not found)',
                )
    if isinstance(obj, Config):
        from daemon.agents.configcheck import check_agents  # agents, tools, MCP cross-checks

        check_agents(obj)


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _check_leds(obj: LedsConfig, prefix: str) -> None:
    import re

    keys = ", ".join(LED_PATTERN_KEYS)
    for name, effect in obj.patterns.items():
        if name not in LED_PATTERN_KEYS:
            raise ConfigError(f"{prefix}.patterns.{name}", f"unknown state (expected {keys})")
        if effect not in LED_EFFECTS:
            raise ConfigError(
                f"{prefix}.patterns.{name}",
                f"expected one of {', '.join(LED_EFFECTS)}, got {effect!r}",
            )
    for name, color in obj.colors.items():
        if name not in LED_PATTERN_KEYS:
            raise ConfigError(f"{prefix}.colors.{name}", f"unknown state (expected {keys})")
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
            raise ConfigError(f"{prefix}.colors.{name}", f'expected "#rrggbb", got {color!r}')


def check_url(url: str, path: str = "realtime.url") -> None:
    """Only wss:// leaves the machine; plain ws:// only to a literal loopback host
    (daemon.urlpolicy has the rule)."""
    from daemon.urlpolicy import UrlPolicyError
    from daemon.urlpolicy import check_url as policy

    try:
        policy(url, path, schemes=("wss", "ws"))
    except UrlPolicyError as exc:
        raise ConfigError(path, str(exc).removeprefix(f"{path}: ")) from None


def parse(data: Mapping[str, Any]) -> Config:
    """Build a Config from already-decoded TOML data; raises ConfigError."""
    return _build(Config, data)


def load(path: Path | str | None = None) -> Config:
    """Read a config file; a missing default file means all defaults."""
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError("", f"config file {file} not found") from None
        return Config()
    except OSError as exc:
        raise ConfigError("", f"cannot read {file}: {exc.strerror}") from None
    return parse(decode_toml(raw, file))


def decode_toml(raw: bytes, file: Path | str) -> dict[str, Any]:
    """TOML bytes -> data; ConfigError (one line, with line and column) for anything else.

    A leading UTF-8 byte order mark (Windows editors write one) is skipped; other
    non-UTF-8 bytes are named by line and column, not a UnicodeDecodeError.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            "",
            f"{file}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, "
            f"column {column}); save the file as UTF-8",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{file}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit integer, [[[[...]]]] nesting
        raise ConfigError("", f"{file}: invalid TOML: {type(exc).__name__}: {exc}") from None


def load_or_exit(path: Path | str | None = None) -> Config:
    """The CLI's entry: one line on stderr and exit 78 on a bad config."""
    try:
        return load(path)
    except ConfigError as exc:
        exit_config_error(exc)


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters escaped (a key may hold them)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def report_config_error(exc: ConfigError) -> int:
    """Print ``config error: <key path>: <message>`` as one line on stderr; returns 78."""
    print(f"config error: {one_line(str(exc))}", file=sys.stderr, flush=True)
    return EX_CONFIG


def exit_config_error(exc: ConfigError) -> typing.NoReturn:
    """``report_config_error`` and exit 78."""
    raise SystemExit(report_config_error(exc))


def replace(cfg: T, **changes: Any) -> T:
    return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]


# --------------------------------------------------------------------------- rendering


def to_dict(obj: object, *, redact: bool = True) -> dict[str, Any]:
    """The effective config as plain data, secrets redacted."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value, redact=redact)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            out[f.name] = [to_dict(v, redact=redact) for v in value]
        elif isinstance(value, dict) and any(dataclasses.is_dataclass(v) for v in value.values()):
            out[f.name] = {k: to_dict(v, redact=redact) for k, v in value.items()}
        elif redact and isinstance(value, dict) and f.metadata.get("secret"):
            out[f.name] = {k: "<redacted>" for k in value}
        elif redact and f.metadata.get("secret") and value:
            out[f.name] = "<redacted>"
        else:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(cfg: Config, *, redact: bool = True) -> str:
    """Render the effective config as TOML (what `voicepi check-config` prints).

    Written by ``tomli_w``, so quoting (a dotted ``tooling.policy`` key, control
    characters) is right and the output is valid input again.
    """
    import tomli_w

    return tomli_w.dumps(to_dict(cfg, redact=redact))


# Where the key is looked for, in order (for the start-up warning and check-config).
API_KEY_PLACES = (
    "the systemd credential openai-api-key ($CREDENTIALS_DIRECTORY), then OPENAI_API_KEY"
)


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an API key (it goes into an HTTP header), or None.

    Printable ASCII without spaces; the answer names the position, never the key.
    """
    if not key:
        return "the key is empty"
    for i, c in enumerate(key):
        if not "!" <= c <= "~":
            what = (
                "a space"
                if c == " "
                else "a control character"
                if c < " " or c == "\x7f"
                else ("a non-ASCII character")
            )
            return f"the key contains {what} (character {i + 1} of {len(key)})"
    return None


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The OpenAI key: the systemd credential first, then OPENAI_API_KEY. Never log it."""
    return find_api_key(environ)[0]


def find_api_key(environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(key, where it was found: "credential" or "OPENAI_API_KEY"), or (None, "").

    An empty or blank credential counts as none: the unit's SetCredential= fallback
    (a newline) stands in for a missing key file so the service still starts.
    Surrounding whitespace (a trailing newline) is dropped; anything else that is not
    printable ASCII raises ConfigError naming where the key came from, never the key.
    """
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        try:
            key = (Path(cred_dir) / "openai-api-key").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            key = ""
        if key:
            _check_key(key, "credential openai-api-key")
            return key, "credential"
    key = env.get("OPENAI_API_KEY", "").strip()
    if key:
        _check_key(key, "OPENAI_API_KEY")
        return key, "OPENAI_API_KEY"
    return None, ""


def _check_key(key: str, source: str) -> None:
    problem = key_problem(key)
    if problem is not None:
        raise ConfigError(source, f"{problem}; expected printable ASCII (sk-...)")


def field_docs(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, default, doc) rows for the README's config reference."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            rows.extend(field_docs(tp, path))
            continue
        item_tp = get_args(tp)[0] if get_origin(tp) is tuple else None
        if dataclasses.is_dataclass(item_tp) and isinstance(item_tp, type):
            rows.extend(field_docs(item_tp, f"{path}[]"))  # [[array]] of tables
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        shown = _toml_value(list(default) if isinstance(default, tuple) else default)
        rows.append((path, shown, str(f.metadata.get("doc", ""))))
    return rows
