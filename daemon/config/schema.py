"""The config schema: frozen dataclasses, one per TOML section.

Field metadata (``opt``) carries each key's range and the README's one-line doc;
the loader (load.py) walks these classes, so every section gets the same checks.
The choices come from daemon.vocab, the one place each vocabulary is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.vocab import PCM_RATE, Eagerness, NoiseReduction, ToolPolicy, TurnDetection, Voice


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
    voice: Voice = opt("marin", doc="Output voice; fixed after the first audio of a session.")
    instructions: str = opt(
        "You are a helpful voice assistant on a small speaker. Answer briefly.",
        doc="System instructions for the default agent.",
    )
    speed: float = opt(1.0, min=0.25, max=1.5, doc="Speech speed of the answer.")
    transcription_model: str = opt(
        "gpt-4o-mini-transcribe",
        doc='Input transcription model (user transcripts); "" turns transcription off.',
    )
    noise_reduction: NoiseReduction = opt("far_field", doc="Server-side input noise reduction.")
    turn_detection: TurnDetection = opt("semantic_vad", doc="Server turn detection.")
    eagerness: Eagerness = opt("auto", doc="semantic_vad eagerness.")
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
        PCM_RATE, min=8000, max=192000, doc="Playback rate in Hz (the answer is resampled)."
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
    batch_frames: int = opt(
        4,
        min=1,
        max=6,
        doc="Idle: score this many 80 ms frames per wake-up while no score is near a "
        "threshold (same detections; 1 = every frame as it arrives).",
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


# The board profiles' names (profiles.py has a Profile for each).
BoardProfile = Literal[
    "generic", "respeaker-2mic", "respeaker-4mic", "respeaker-usb-v2", "aiy-voice-hat"
]


@dataclass(frozen=True)
class HardwareConfig:
    profile: BoardProfile = opt(
        "generic", doc="Board profile filling in audio channels, LEDs and button."
    )


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
