"""The OpenAI API key: where it is looked for and what makes one unusable.

The bare rules (``key_problem``, ``API_KEY_PLACES``) live in daemon.apikey, below
the config, so the SDK session checks a key without importing the appliance's config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from daemon.apikey import API_KEY_PLACES, key_problem

from .errors import ConfigError

__all__ = ["API_KEY_PLACES", "api_key", "find_api_key", "key_problem"]


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
