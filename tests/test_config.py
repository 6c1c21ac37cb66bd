"""Config loading: key-path errors, exit 78, redaction, and fuzzing."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon import config
from daemon.config import ConfigError


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[realtime]\nvoice = "bob"', "realtime.voice: expected one of alloy, ash,"),
        ("[realtime]\nvoyce = 1", "realtime.voyce: unknown key"),
        ("[nope]\na = 1", "nope: unknown key"),
        ("[session]\ninactivity_timeout = -1", "session.inactivity_timeout: expected a value"),
        ('[session]\ncountdown = "5"', "session.countdown: expected an integer, got '5'"),
        ("[audio]\ninput_channels = 2\ninput_channel = 2", "audio.input_channel: expected a"),
        ('[realtime]\nurl = "ws://example.com/v1"', "realtime.url: ws:// is allowed only"),
        ("[wakeword]\nmodels = []", "wakeword.models: expected at least one model"),
        ("[wakeword]\nmodels = [1]", "wakeword.models[0]: expected a string"),
        ("[wakeword.thresholds]\nhey_jarvis = 2.0", "wakeword.thresholds.hey_jarvis: expected"),
        ("realtime = 3", "realtime: expected a table"),
        ("[audio]\nvolume = true", "audio.volume: expected an integer"),
    ],
)
def test_bad_values_name_the_key_path(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(tomllib.loads(toml))
    assert str(info.value).startswith(message), str(info.value)


def test_good_config_round_trips_through_check_config_output(tmp_path: Path) -> None:
    src = tmp_path / "c.toml"
    src.write_text(
        '[realtime]\nvoice = "cedar"\nurl = "ws://127.0.0.1:9/v1/realtime"\n'
        '[wakeword]\nmodels = ["alexa", "hey_jarvis"]\nthresholds = {alexa = 0.6}\n'
        "[session]\ninactivity_timeout = 20\n"
    )
    out = cli("check-config", "--config", str(src))
    assert out.returncode == 0, out.stderr
    body = "\n".join(line for line in out.stdout.splitlines() if not line.startswith("#"))
    reparsed = config.parse(tomllib.loads(body))
    assert reparsed == config.load(src)
    assert reparsed.realtime.voice == "cedar"
    assert reparsed.wakeword.thresholds == {"alexa": 0.6}


def test_cli_exits_78_with_one_line(tmp_path: Path) -> None:
    src = tmp_path / "c.toml"
    src.write_text('[realtime]\nvoice = "bob"\n')
    out = cli("check-config", "--config", str(src))
    assert out.returncode == config.EX_CONFIG == 78
    assert out.stderr.strip().splitlines() == [
        "config error: realtime.voice: expected one of alloy, ash, ballad, coral, echo, sage, "
        "shimmer, verse, marin, cedar, got 'bob'"
    ]


def test_invalid_toml_and_missing_file_exit_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[realtime\n")
    assert cli("check-config", "--config", str(bad)).returncode == 78
    missing = cli("check-config", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 78 and "not found" in missing.stderr


def test_api_key_never_printed_credential_wins(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai-api-key").write_text("sk-from-credential-123\n")
    env = {"OPENAI_API_KEY": "sk-from-env-456", "CREDENTIALS_DIRECTORY": str(creds)}
    assert config.api_key(env) == "sk-from-credential-123"
    assert config.api_key({"OPENAI_API_KEY": "sk-from-env-456"}) == "sk-from-env-456"
    assert config.api_key({}) is None
    out = cli("check-config", env=env)
    assert out.returncode == 0
    assert "sk-from" not in out.stdout + out.stderr
    assert "# API key: found (credential)" in out.stdout
    # The unit's fallback for a missing key file (SetCredential=openai-api-key:\\n): none.
    (creds / "openai-api-key").write_text("\n")
    assert config.find_api_key({"CREDENTIALS_DIRECTORY": str(creds)}) == (None, "")
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    out = cli("check-config", env=env)
    assert "# API key: found (OPENAI_API_KEY)" in out.stdout
    env["OPENAI_API_KEY"] = ""  # blank counts as unset (the test's environment may have one)
    out = cli("check-config", env=env)
    assert out.returncode == 0
    assert "# API key: not found (looked for the systemd credential openai-api-key" in out.stdout


def test_every_key_is_documented_in_the_readme() -> None:
    from tests import gen_docs

    readme = gen_docs.README.read_text()
    missing = [path for path, _, _ in config.field_docs() if f"`{path}`" not in readme]
    assert not missing, f"undocumented config keys (run `make docs`): {missing}"
    assert gen_docs.render(readme) == readme, "README config reference is stale: run `make docs`"


toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True),
    st.text(max_size=12),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_paths = [p for p, _, _ in config.field_docs()]
table_names = st.sampled_from(sorted({p.split(".")[0] for p in _paths if "[]" not in p}))
array_names = st.sampled_from(sorted({p.split("[]")[0] for p in _paths if "[]" in p}))
field_names = st.sampled_from(sorted({p.split(".")[-1] for p in _paths}))
tables = st.dictionaries(field_names | st.text(max_size=8), toml_values, max_size=5)


@given(
    st.dictionaries(table_names | st.text(max_size=8), tables | toml_values, max_size=4),
    st.dictionaries(array_names, st.lists(tables | toml_values, max_size=3), max_size=2),
)
def test_fuzzed_configs_give_a_config_or_a_key_path_error(
    data: dict[str, object], arrays: dict[str, object]
) -> None:
    data = {**data, **arrays}  # [[agents]], [[tools]], [[mcp_servers]] too
    try:
        cfg = config.parse(data)
    except ConfigError as exc:
        assert exc.path or exc.message
        assert any(exc.path.startswith(str(key)) for key in data), exc.path
    else:
        assert isinstance(cfg, config.Config)
