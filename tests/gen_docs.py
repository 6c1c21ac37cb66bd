"""Regenerate the README's config reference from daemon.config (`make docs`)."""

from __future__ import annotations

import re
from pathlib import Path

from daemon import config

README = Path(__file__).resolve().parent.parent / "README.md"


def config_section() -> str:
    lines = [
        "## Configuration",
        "",
        "`/etc/voicepi/config.toml` (or `--config FILE`), TOML. Every key is optional; a",
        "missing file means all defaults. An unknown key or a bad value stops voicepi with one",
        "line naming the key path, e.g.",
        "`config error: realtime.voice: expected one of alloy, ash, ..., got 'bob'`, and exit",
        "status 78 (systemd does not restart it). The file must be UTF-8 (a leading byte order",
        'mark is skipped). Choices ignore case (`level = "DEBUG"` is `"debug"`).',
        "`check-config`, `run`, a SIGHUP reload and `demo` validate the same",
        "way: the board profile applied, then the checks that span keys (wake-word model names,",
        "files, duplicates and per-model thresholds, LED pins for the driver, agent tool names,",
        "`${credential:NAME}` references, looked up where the command runs). `voicepi",
        "check-config` prints the effective config (profile applied) as TOML that is valid input",
        "again, with secrets redacted. The API key is not a config key: it comes from the",
        "systemd credential `openai-api-key` (`$CREDENTIALS_DIRECTORY/openai-api-key`), else",
        "from `OPENAI_API_KEY`, and is never logged or printed.",
        "",
        "| key | default | meaning |",
        "| --- | --- | --- |",
    ]
    for path, default, doc in config.field_docs():
        cell = doc.replace("|", "\\|")
        lines.append(f"| `{path}` | `{default}` | {cell} |")
    return "\n".join(lines)


def render(text: str) -> str:
    body = config_section()
    return re.sub(
        r"(<!-- section:config -->\n).*?(<!-- /section:config -->)",
        lambda m: m.group(1) + body + "\n" + m.group(2),
        text,
        flags=re.S,
    )


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
