"""What makes a string unusable as an OpenAI API key, and where the key is looked for.

A bottom module (no daemon imports): the SDK session and the appliance's config both
use it. The key itself is never part of a message.
"""

from __future__ import annotations

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
