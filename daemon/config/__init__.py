"""Configuration: TOML read with tomllib into frozen dataclasses; the bottom layer.

``from daemon.config import X`` is the interface; the parts are

- schema.py: the sections as frozen dataclasses (types, ranges, README docs);
- load.py: TOML -> checked Config, one ConfigError naming the key path;
- checks.py, agent_checks.py: the rules one field's type cannot express;
- render.py: the effective config as data, TOML and the README's table;
- keys.py: the API key (the bare rules are in daemon.apikey, for the SDK);
- errors.py: ConfigError and the CLI's one-line report, exit 78.

Config depends only on the modules below it (daemon.vocab, daemon.urlpolicy,
daemon.apikey); agents, the appliance and ``hw``'s wiring depend on it, never the
reverse (tests/test_layers.py holds that).
"""

from __future__ import annotations

from daemon.vocab import LED_EFFECTS, LED_PATTERN_KEYS, SOUND_NAMES, ToolPolicy

from .agent_checks import CREDENTIAL_REF, FORBIDDEN_ENV, PLACEHOLDER, check_agents
from .checks import check_url
from .errors import EX_CONFIG, ConfigError, exit_config_error, one_line, report_config_error
from .keys import API_KEY_PLACES, api_key, find_api_key, key_problem
from .load import DEFAULT_PATH, decode_toml, load, load_or_exit, parse, replace
from .render import field_docs, to_dict, to_toml
from .schema import (
    AgentConfig,
    AudioConfig,
    ButtonConfig,
    CommandToolConfig,
    Config,
    GpioConfig,
    GuardrailsConfig,
    HardwareConfig,
    LedsConfig,
    LoggingConfig,
    McpServerConfig,
    RealtimeConfig,
    SessionConfig,
    SoundsConfig,
    ToolingConfig,
    ToolParamConfig,
    WakewordConfig,
    opt,
)

__all__ = [
    "API_KEY_PLACES",
    "CREDENTIAL_REF",
    "DEFAULT_PATH",
    "EX_CONFIG",
    "FORBIDDEN_ENV",
    "LED_EFFECTS",
    "LED_PATTERN_KEYS",
    "PLACEHOLDER",
    "SOUND_NAMES",
    "AgentConfig",
    "AudioConfig",
    "ButtonConfig",
    "CommandToolConfig",
    "Config",
    "ConfigError",
    "GpioConfig",
    "GuardrailsConfig",
    "HardwareConfig",
    "LedsConfig",
    "LoggingConfig",
    "McpServerConfig",
    "RealtimeConfig",
    "SessionConfig",
    "SoundsConfig",
    "ToolParamConfig",
    "ToolPolicy",
    "ToolingConfig",
    "WakewordConfig",
    "api_key",
    "check_agents",
    "check_url",
    "decode_toml",
    "exit_config_error",
    "field_docs",
    "find_api_key",
    "key_problem",
    "load",
    "load_or_exit",
    "one_line",
    "opt",
    "parse",
    "replace",
    "report_config_error",
    "to_dict",
    "to_toml",
]
