"""What an owner's config file can be: not UTF-8, a BOM, random bytes; and one validation path.

`check-config`, `run`, SIGHUP and `demo` all validate through ``daemon.effective``, so
a config one of them rejects, the others reject too, with the same one line and exit 78.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import cli, config

ROOT = Path(__file__).resolve().parent.parent
DEMO_WAV = ROOT / "daemon" / "data" / "demo.wav"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    for key in ("OPENAI_API_KEY", "CREDENTIALS_DIRECTORY", "RECIPES_TOKEN"):
        env.pop(key, None)
    return {**env, **extra}


def voicepi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        capture_output=True,
        text=True,
        env=env or _env(),
        cwd=ROOT,
        timeout=120,
    )


def assert_one_config_line(out: subprocess.CompletedProcess[str], needle: str) -> None:
    assert out.returncode == 78, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error: "), out.stderr
    assert needle in lines[0], lines[0]


# --------------------------------------------------------------------------- encodings

LATIN1 = b'[realtime]\ninstructions = "caf\xe9"\n'


@pytest.mark.parametrize(
    "command",
    [
        ["check-config"],
        ["run", "--log-format", "text"],
        ["wakeword", str(DEMO_WAV)],
        ["demo"],
    ],
    ids=["check-config", "run", "wakeword", "demo"],
)
def test_a_latin1_config_is_one_line_and_exit_78_everywhere(
    tmp_path: Path, command: list[str]
) -> None:
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(LATIN1)
    out = voicepi(*command, "--config", str(cfg))
    assert_one_config_line(out, "not UTF-8 text (byte 0xe9 at line 2, column 20)")


def test_a_utf8_bom_is_skipped(tmp_path: Path) -> None:
    cfg = tmp_path / "bom.toml"
    cfg.write_bytes(b'\xef\xbb\xbf[realtime]\nvoice = "cedar"\n')
    out = voicepi("check-config", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert tomllib.loads(out.stdout)["realtime"]["voice"] == "cedar"
    cfg.write_bytes(b'\xef\xbb\xbf[realtime]\nvoice = "bob"\n')
    assert_one_config_line(voicepi("check-config", "--config", str(cfg)), "realtime.voice")


def _check_config_in_process(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(["check-config", "--config", str(path)])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


_names = sorted({p.split(".")[-1].removesuffix("[]") for p, _, _ in config.field_docs()})
_keys = st.sampled_from(_names) | st.text(max_size=6)
_scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["hey_jarvis", "alexa", "default", "file:/nonexistent.wav"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=10,
)
_tables = st.dictionaries(
    st.sampled_from([p.split(".")[0].removesuffix("[]") for p, _, _ in config.field_docs()])
    | st.text(max_size=5),
    st.dictionaries(_keys, _values, max_size=4) | _values,
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), _tables.map(lambda d: tomli_w.dumps(d).encode())))
def test_random_bytes_or_toml_give_exit_0_or_one_line_78(blob: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_bytes(blob)
        code, err = _check_config_in_process(path)  # any exception fails the test
    assert code in (0, 78), (code, err)
    if code == 78:
        assert len(err.splitlines()) == 1 and err.startswith("config error: "), err


def test_a_control_character_in_a_key_stays_on_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[realtime]\n"a\\nb" = 1\n')
    assert_one_config_line(voicepi("check-config", "--config", str(cfg)), "realtime.a\\nb:")


# --------------------------------------------------------------------------- one validation path

CROSS_CHECKS = [
    ('[wakeword]\nmodels = ["hey_jarvs"]\n', "wakeword.models[0]: unknown model 'hey_jarvs'"),
    (
        "[wakeword]\nthresholds = {alexa = 0.7}\n",
        "wakeword.thresholds.alexa: no such model in wakeword.models",
    ),
    ('[wakeword]\nmodels = ["alexa", "alexa"]\n', "wakeword.models[1]: model 'alexa' is listed"),
    ('[[agents]]\nname = "a"\ntools = ["no_such_tool"]\n', "agents[0].tools"),
    (
        '[[mcp_servers]]\nlabel = "recipes"\nurl = "https://example.com/mcp"\n'
        'headers = { Authorization = "Bearer ${credential:recipes-token}" }\n',
        "mcp_servers[0].headers.Authorization: credential 'recipes-token' not found",
    ),
    ('[leds]\ndriver = "rgbled"\npins = [5]\n', "leds.pins: driver 'rgbled' needs 3 pins"),
]


@pytest.mark.parametrize(("toml", "message"), CROSS_CHECKS)
def test_check_config_and_run_reject_the_same_configs(
    tmp_path: Path, toml: str, message: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[gpio]\npin_factory = "mock"\n{toml}', encoding="utf-8")
    checked = voicepi("check-config", "--config", str(cfg))
    assert_one_config_line(checked, message)
    if toml in (CROSS_CHECKS[0][0], CROSS_CHECKS[4][0]):  # the same code path: two suffice
        ran = voicepi("run", "--config", str(cfg), "--log-format", "text")
        assert_one_config_line(ran, message)
        assert ran.stderr == checked.stderr


def test_a_credential_that_exists_passes(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CROSS_CHECKS[4][0], encoding="utf-8")
    out = voicepi("check-config", "--config", str(cfg), env=_env(RECIPES_TOKEN="t0ken-value"))
    assert out.returncode == 0, out.stderr
    assert "t0ken-value" not in out.stdout + out.stderr


def test_check_config_prints_the_profile_applied(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[hardware]\nprofile = "respeaker-2mic"\n', encoding="utf-8")
    out = voicepi("check-config", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    data = tomllib.loads(out.stdout)
    assert data["audio"]["input"] == "seeed-2mic-voicecard"
    assert data["audio"]["input_channels"] == 2
    assert data["button"]["pin"] == 17 and data["leds"]["driver"] == "apa102"


def test_check_config_output_is_valid_input_again(tmp_path: Path) -> None:
    src = tmp_path / "c.toml"
    src.write_text(
        '[tooling]\npolicy = {"recipes.search" = "ask", "get time" = "never"}\n'
        '[realtime]\ninstructions = "say \\"hi\\"\\n\\tthen stop \\u0001"\n'
        '[[tools]]\nname = "say"\nargv = ["echo", "{text}"]\n'
        "[tools.parameters.text]\ndescription = 'words'\n"
        '[[agents]]\nname = "a"\ntools = ["say"]\n',
        encoding="utf-8",
    )
    out = voicepi("check-config", "--config", str(src))
    assert out.returncode == 0, out.stderr
    from daemon import effective

    reparsed = config.parse(tomllib.loads(out.stdout))
    assert reparsed == effective.load(src)
    assert reparsed.tooling.policy == {"recipes.search": "ask", "get time": "never"}
