"""Issue 14: the API key is validated where it is read (daemon and installer), and a bad key
is an error that never shows the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import config
from daemon.config import ConfigError
from daemon.realtime.session import RealtimeSession
from daemon.realtime.settings import SessionSettings

ROOT = Path(__file__).resolve().parent.parent
BODY = "sk-test-" + "Ab3" * 12

BAD = [
    (BODY + "\x01", "a control character (character 45 of 45)"),
    (BODY[:10] + "\x1b[2J" + BODY[10:], "a control character (character 11 of 48)"),
    (BODY[:5] + " " + BODY[5:], "a space (character 6 of 45)"),
    (BODY + "\u00e9", "a non-ASCII character"),
    (BODY[:20] + "\x7f" + BODY[20:], "a control character"),
]


@pytest.mark.parametrize(("key", "why"), BAD)
def test_a_bad_key_is_a_config_error_that_never_shows_the_key(
    tmp_path: Path, key: str, why: str
) -> None:
    (tmp_path / "openai-api-key").write_text(key + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config.api_key({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    message = str(caught.value)
    assert message.startswith("credential openai-api-key: ") and why in message
    assert BODY[8:] not in message
    with pytest.raises(ConfigError, match=r"^OPENAI_API_KEY: "):
        config.api_key({"OPENAI_API_KEY": key})
    with pytest.raises(ValueError, match=r"^api_key: the key contains") as caught2:
        RealtimeSession(SessionSettings(), url="wss://api.openai.com/v1/realtime", api_key=key)
    assert BODY[8:] not in str(caught2.value)


def test_a_good_key_is_read_without_its_newline(tmp_path: Path) -> None:
    (tmp_path / "openai-api-key").write_text(BODY + "\n")
    assert config.api_key({"CREDENTIALS_DIRECTORY": str(tmp_path)}) == BODY
    assert config.api_key({"OPENAI_API_KEY": f"  {BODY}\n"}) == BODY
    assert config.api_key({}) is None


def test_check_config_exits_78_on_a_bad_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("")
    env = {**os.environ, "OPENAI_API_KEY": BODY + "\x07", "PYTHONPATH": str(ROOT)}
    env.pop("CREDENTIALS_DIRECTORY", None)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon.cli",
            "check-config",
            "--config",
            str(tmp_path / "config.toml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == config.EX_CONFIG, res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [
        "config error: OPENAI_API_KEY: the key contains a control character (character 45 of "
        "45); expected printable ASCII (sk-...)"
    ]
    assert BODY[8:] not in res.stdout + res.stderr


@pytest.mark.parametrize("key", [BODY + "\x01", BODY + "\u00e9"])
def test_the_installer_refuses_a_bad_key_without_printing_it(key: str) -> None:
    if os.geteuid() != 0:
        pytest.fail("the installer test needs root (the installer checks it first)")
    # --source points nowhere: should the key pass, the installer stops right after reading it.
    res = subprocess.run(
        ["bash", str(ROOT / "image" / "install.sh"), "--key-stdin", "--source", "/nonexistent.whl"],
        input=key + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0
    assert "the API key contains a space, a control or a non-ASCII character" in res.stderr
    assert BODY[8:] not in res.stdout + res.stderr
    good = subprocess.run(
        ["bash", str(ROOT / "image" / "install.sh"), "--key-stdin", "--source", "/nonexistent.whl"],
        input=BODY + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "--source: /nonexistent.whl does not exist" in good.stderr
