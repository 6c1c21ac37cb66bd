"""Write systemd/config.example.toml from daemon.config.field_docs().

`python -m tests.gen_config_example` regenerates it; tests/test_systemd_unit.py fails when
the committed file is out of date.
"""

from __future__ import annotations

from pathlib import Path

from daemon import config

EXAMPLE = Path(__file__).resolve().parent.parent / "systemd" / "config.example.toml"

HEADER = """\
# voicepi configuration: /etc/voicepi/config.toml (TOML).
#
# Every key is optional and shown here commented out with its default value: uncomment
# and change what you need. A bad key or value stops voicepi with one line naming it
# (exit status 78; systemd does not restart it). Check a file with
#   voicepi check-config --config /etc/voicepi/config.toml
# then apply it with `systemctl reload voicepi` (or restart).
#
# The OpenAI API key is NOT a config key: it is the systemd credential
# /etc/voicepi/credentials/openai-api-key (root only, 0600), handed to the service
# as $CREDENTIALS_DIRECTORY/openai-api-key.
#
# Generated from daemon/config/schema.py by `python -m tests.gen_config_example`.
"""


def render() -> str:
    lines = [HEADER.rstrip("\n")]
    section = ""
    for path, default, doc in config.field_docs():
        table, _, key = path.rpartition(".")
        # An [[array]] of tables is an example entry under "##": uncommenting the
        # "#key" lines must still give the defaults (no entries).
        mark = "##" if table.endswith("[]") else "#"
        if table != section:
            section = table
            header = f"##[[{table[:-2]}]]" if mark == "##" else f"[{table}]"
            lines += ["", header]
        lines.append(f"# {doc}")
        lines.append(f"{mark}{key} = {default}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    EXAMPLE.write_text(render(), encoding="utf-8")
    print(EXAMPLE)
