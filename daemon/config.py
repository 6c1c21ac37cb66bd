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
) -> Any:
    """A config field with its README doc and its range."""
    meta = {"doc": doc, "min": min, "max": max, "secret": secret}
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
        20.0, min=1.0, max=300.0, doc="Websocket keepalive ping interval, seconds."
    )


@dataclass(frozen=True)
class AudioConfig:
    input: str = opt(
        "default", doc='Capture device: name substring, index, "default" or file:PATH (WAV).'
    )
    output: str = opt(
        "default", doc='Playback device: name substring, index, "default" or file:PATH (WAV).'
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
    engine: Literal["pyopen-wakeword", "openwakeword"] = opt(
        "pyopen-wakeword", doc="Wake word engine (openwakeword needs the extra)."
    )
    models: tuple[str, ...] = opt(
        factory=lambda: ("hey_jarvis",),
        doc="Built-in model names or paths to .tflite/.onnx models.",
    )
    threshold: float = opt(0.5, min=0.0, max=1.0, doc="Score that counts as a detection.")
    thresholds: dict[str, float] = opt(
        factory=dict, doc="Per-model thresholds overriding `threshold`, by model name."
    )
    patience: int = opt(1, min=1, max=20, doc="Consecutive 80 ms frames over the threshold.")
    refractory: float = opt(2.0, min=0.0, max=60.0, doc="Seconds after a detection to ignore.")
    speaking_tail: float = opt(
        0.5, min=0.0, max=10.0, doc="Seconds scoring stays paused after the speaker drains."
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
    type: Literal["string", "integer", "number", "boolean"] = opt("string", doc="JSON type.")
    description: str = opt("", doc="What the value means (shown to the model).")
    enum: tuple[str, ...] = opt(factory=tuple, doc="Allowed string values (empty = any).")
    pattern: str = opt("", doc="Regex a string value must fully match.")
    range: tuple[float, ...] = opt(factory=tuple, doc="[min, max] for numbers (empty = any).")
    required: bool = opt(True, doc="The model must give this argument.")


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
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
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
    if isinstance(obj, WakewordConfig):
        if not obj.models:
            raise ConfigError(f"{prefix}.models", "expected at least one model")
        for name, value in obj.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{prefix}.thresholds.{name}", f"expected 0 to 1, got {value!r}")
    if isinstance(obj, LedsConfig):
        _check_leds(obj, prefix)
    if isinstance(obj, Config):
        from daemon.agents.configcheck import check_agents  # agents, tools, MCP cross-checks

        check_agents(obj)


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


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def check_url(url: str, path: str = "realtime.url") -> None:
    """Only wss:// leaves the machine; plain ws:// is for a local simulator."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(path, f"expected a ws:// or wss:// URL, got {url!r}")
    host = parts.hostname
    if parts.scheme == "ws" and not (host in LOOPBACK_HOSTS or host.startswith("127.")):
        raise ConfigError(path, f"ws:// is allowed only to loopback hosts, got {host!r}")


def parse(data: Mapping[str, Any]) -> Config:
    """Build a Config from already-decoded TOML data; raises ConfigError."""
    return _build(Config, data)


def load(path: Path | str | None = None) -> Config:
    """Read a config file; a missing default file means all defaults."""
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError("", f"config file {file} not found") from None
        return Config()
    except OSError as exc:
        raise ConfigError("", f"cannot read {file}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{file}: invalid TOML: {exc}") from None
    return parse(data)


def load_or_exit(path: Path | str | None = None) -> Config:
    """The CLI's entry: one line on stderr and exit 78 on a bad config."""
    try:
        return load(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


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
    """Render the effective config as TOML (what `voicepi check-config` prints)."""
    data = to_dict(cfg, redact=redact)
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for name, value in data.items():
        if isinstance(value, dict):
            tables.append((name, value))
        elif isinstance(value, list):  # [[agents]] and the like: arrays of tables
            arrays.append((name, value))
    for name, table in tables:
        lines.append(f"[{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    for name, items in arrays:
        for item in items:
            lines.append(f"[[{name}]]")
            for key, value in item.items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
    return "\n".join(lines)


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The OpenAI key: the systemd credential first, then OPENAI_API_KEY. Never log it."""
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        try:
            key = (Path(cred_dir) / "openai-api-key").read_text(encoding="utf-8").strip()
        except OSError:
            key = ""
        if key:
            return key
    key = env.get("OPENAI_API_KEY", "").strip()
    return key or None


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
