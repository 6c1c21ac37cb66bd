"""Agents: tools, command tools, plugins, approvals, guardrails, MCP, config (no network)."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Literal

import pytest

from daemon import config
from daemon import events as ev
from daemon.agents import (
    AgentCallbacks,
    AgentRuntime,
    ApprovalRequest,
    Approvals,
    RealtimeAgent,
    ToolArgumentError,
    function_tool,
    regex_guardrail,
)
from daemon.agents.approvals import policy_for
from daemon.agents.command import build_argv, command_tool, run_command
from daemon.agents.guardrails import GuardrailMonitor
from daemon.agents.mcp import McpServer, Secret, resolve_headers
from daemon.agents.plugins import load_plugin_tools
from daemon.agents.runner import ToolOutput
from daemon.config import ConfigError
from daemon.realtime import validate
from daemon.realtime.engine import RealtimeProtocol
from tests import engine_script as S
from tests.audio_helpers import wait_for

# --------------------------------------------------------------------------- function tools


def test_schema_from_type_hints() -> None:
    @function_tool
    def lights(
        room: Annotated[str, "Which room"],
        state: Literal["on", "off"],
        brightness: int = 100,
        tags: list[str] | None = None,
    ) -> str:
        """Switch lights.

        Longer text that is not part of the description.
        """
        return ""

    assert lights.description == "Switch lights."
    assert lights.parameters == {
        "type": "object",
        "properties": {
            "room": {"type": "string", "description": "Which room"},
            "state": {"type": "string", "enum": ["on", "off"]},
            "brightness": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["room", "state"],
        "additionalProperties": False,
    }
    assert lights.parse('{"room": "hall", "state": "on"}') == {"room": "hall", "state": "on"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"state": "on"}', "missing required argument 'room'"),
        ('{"room": 1, "state": "on"}', "arguments.room: expected string, got int 1"),
        ('{"room": "a", "state": "dim"}', 'expected one of "on", "off"'),
        ('{"room": "a", "state": "on", "x": 1}', "unknown argument 'x'"),
        ('{"room": "a", "state": "on", "level": true}', "expected integer, got bool"),
    ],
)
def test_bad_arguments_are_named(arguments: str, message: str) -> None:
    @function_tool
    def lights(room: str, state: Literal["on", "off"], level: int = 0) -> None:
        """Lights."""

    with pytest.raises(ToolArgumentError, match=message):
        lights.parse(arguments)


def test_tool_names_are_checked() -> None:
    with pytest.raises(ValueError, match="tool name 'bad name'"):
        function_tool(name="bad name")(lambda: None)


def test_tool_output_is_a_str_with_an_error_flag() -> None:
    out = ToolOutput("x", is_error=True)
    assert out == "x" and out.is_error and json.dumps(out) == '"x"'


# --------------------------------------------------------------------------- command tools


def _cmd(argv: list[str], **kw: object) -> config.CommandToolConfig:
    data = {
        "name": "cmd",
        "argv": argv,
        "parameters": {
            "word": {"type": "string", "pattern": "[a-z -]+", "required": False},
            "n": {"type": "integer", "range": [0, 10], "required": False},
        },
        **kw,
    }
    return config.parse({"tools": [data]}).tools[0]


async def test_command_tool_substitutes_validated_arguments_without_a_shell() -> None:
    tool = command_tool(_cmd(["/bin/echo", "n={n}", "{word}"]))
    args = tool.parse('{"word": "hello world", "n": 3}')
    assert await tool.invoke(args) == "n=3 hello world"
    # A shell would expand this; argv passes it through as text.
    assert build_argv(_cmd(["/bin/echo", "x{word}"]), {"word": "$(id) ; ls"}) == [
        "/bin/echo",
        "x$(id) ; ls",
    ]
    with pytest.raises(ToolArgumentError, match="does not match"):
        tool.parse('{"word": "$(id)"}')
    with pytest.raises(ToolArgumentError, match="expected 0 to 10"):
        tool.parse('{"n": 11}')
    with pytest.raises(ToolArgumentError, match="may not start with '-'"):
        build_argv(_cmd(["/bin/echo", "{word}"]), {"word": "-rf"})


async def test_command_failure_and_timeout(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with status 3: oops"):
        await run_command(["/bin/sh", "-c", "echo oops >&2; exit 3"], 5.0)
    marker = tmp_path / "child-alive"
    pidfile = tmp_path / "child-pid"
    # The child of the command is killed with it (own process group): the condition is
    # that the child is gone, so it can never touch the marker (no fixed sleep).
    script = f"sh -c 'sleep 1; touch {marker}' & echo $! > {pidfile}; sleep 30"
    with pytest.raises(TimeoutError):
        await run_command(["/bin/sh", "-c", script], 0.2)
    pid = pidfile.read_text().strip() if pidfile.exists() else ""
    if pid:  # else the shell was killed before it started the child
        wait_for(lambda: not _running(int(pid)), timeout=5.0)
    assert not marker.exists()


def _running(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


def test_command_tool_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"tools\[0\]\.argv\[1\]: \{nope\} is not in"):
        config.parse({"tools": [{"name": "x", "argv": ["/bin/echo", "{nope}"]}]})
    with pytest.raises(ConfigError, match=r"tools\[0\]\.name: 'get_time' is reserved"):
        config.parse({"tools": [{"name": "get_time", "argv": ["/bin/date"]}]})
    with pytest.raises(ConfigError, match=r"tools\[0\]\.argv: expected a command line"):
        config.parse({"tools": [{"name": "x"}]})
    bad_regex = {"name": "x", "argv": ["/bin/echo"], "parameters": {"a": {"pattern": "("}}}
    with pytest.raises(ConfigError, match=r"tools\[0\]\.parameters\.a\.pattern: invalid regex"):
        config.parse({"tools": [bad_regex]})


# --------------------------------------------------------------------------- config


def test_agents_config_and_cross_checks() -> None:
    cfg = config.parse(
        {
            "agents": [
                {"name": "main", "handoffs": ["cook"], "tools": ["get_time"]},
                {"name": "cook", "instructions": "You cook.", "mcp_servers": ["recipes"]},
            ],
            "mcp_servers": [{"label": "recipes", "url": "https://r.example/mcp"}],
            "tooling": {"policy": {"recipes.search": "ask"}, "approval_timeout": 5},
            "guardrails": {"patterns": ["password"], "check_every": 40},
        }
    )
    assert [a.name for a in cfg.agents] == ["main", "cook"]
    assert cfg.tooling.policy == {"recipes.search": "ask"}
    with pytest.raises(ConfigError, match=r"agents\[0\]\.handoffs\[0\]: expected the name"):
        config.parse({"agents": [{"name": "a", "handoffs": ["zz"]}]})
    with pytest.raises(ConfigError, match=r"agents\[1\]\.name: duplicate name 'a'"):
        config.parse({"agents": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match=r"mcp_servers\[0\]\.url: http:// is allowed only"):
        config.parse({"mcp_servers": [{"label": "x", "url": "http://example.com/mcp"}]})
    with pytest.raises(ConfigError, match=r"tooling\.policy\.x: expected one of always"):
        config.parse({"tooling": {"policy": {"x": "sometimes"}}})
    with pytest.raises(ConfigError, match=r"guardrails\.patterns\[0\]: invalid regex"):
        config.parse({"guardrails": {"patterns": ["(("]}})


def test_runtime_from_config_gives_valid_session_updates(tmp_path: Path) -> None:
    (tmp_path / "recipes-token").write_text("s3cret-token\n")
    cfg = config.parse(
        {
            "agents": [
                {"name": "main", "handoffs": ["cook"], "tools": ["get_time", "lights"]},
                {"name": "cook", "instructions": "You cook.", "mcp_servers": ["recipes"]},
            ],
            "tools": [
                {
                    "name": "lights",
                    "description": "Lights on or off",
                    "argv": ["/bin/echo", "{state}"],
                    "parameters": {"state": {"enum": ["on", "off"]}},
                }
            ],
            "mcp_servers": [
                {
                    "label": "recipes",
                    "url": "https://r.example/mcp",
                    "allowed_tools": ["search"],
                    "headers": {"Authorization": "Bearer ${credential:recipes-token}"},
                }
            ],
            "tooling": {"plugins": False},
        }
    )
    runtime = AgentRuntime.from_config(
        cfg,
        AgentCallbacks(end_session=lambda: None),
        environ={"CREDENTIALS_DIRECTORY": str(tmp_path)},
    )
    main = runtime.settings()
    assert main.instructions == cfg.realtime.instructions  # "" takes realtime.instructions
    names = [t.get("name") or t.get("server_label") for t in main.tools]
    assert names == ["get_time", "lights", "transfer_to_cook", "recipes"]
    cook = runtime.settings(runtime.agents["cook"])
    names = [t.get("name") or t.get("server_label") for t in cook.tools]
    assert names == ["get_time", "end_session", "lights", "recipes"]
    mcp = cook.tools[-1]
    assert mcp["headers"] == {"Authorization": "Bearer s3cret-token"}
    assert "s3cret" not in repr(cook) and "s3cret" not in repr(runtime)
    for settings in (main, cook):
        validate.check_client(settings.session_update())
    # a missing credential names the key and where it was looked for
    with pytest.raises(ConfigError, match=r"mcp_servers\[0\]\.headers\.Authorization: credential"):
        AgentRuntime.from_config(cfg, environ={})
    bad = config.replace(cfg, agents=(config.AgentConfig(name="x", tools=("nope",)),))
    with pytest.raises(ConfigError, match=r"agents\[0\]\.tools: unknown tool 'nope'"):
        AgentRuntime.from_config(bad, environ={"RECIPES_TOKEN": "t"})


def test_credentials_fall_back_to_the_environment() -> None:
    headers = resolve_headers({"X-Key": "${credential:my-key}"}, {"MY_KEY": "k"}, "m")
    assert headers == {"X-Key": "k"} and isinstance(headers["X-Key"], Secret)
    assert repr(headers) == "{'X-Key': '***'}"


# --------------------------------------------------------------------------- plugins


def test_plugin_tools_from_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "vp_demo_plugin.py"
    pkg.write_text(
        textwrap.dedent(
            '''
            def coin() -> str:
                """Flip a coin."""
                return "heads"

            BROKEN = 42
            '''
        )
    )
    dist = tmp_path / "vp_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vp-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[voicepi.tools]\ncoin = vp_demo_plugin:coin\nbroken = vp_demo_plugin:BROKEN\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tools, problems = load_plugin_tools()
    assert [t.name for t in tools] == ["coin"]
    assert tools[0].description == "Flip a coin."
    assert len(problems) == 1 and "'broken'" in problems[0]
    monkeypatch.delitem(sys.modules, "vp_demo_plugin", raising=False)


# --------------------------------------------------------------------------- approvals


def test_policy_lookup_order() -> None:
    policies = {"home.unlock": "ask", "home": "always", "lights": "never"}
    assert policy_for(policies, "unlock", server_label="home", default="ask") == "ask"
    assert policy_for(policies, "status", server_label="home", default="ask") == "always"
    assert policy_for(policies, "lights", default="always") == "never"
    assert policy_for(policies, "other", default="always") == "always"


async def test_approvals_oldest_first_and_timeout() -> None:
    changes: list[bool] = []
    approvals = Approvals(timeout=0.2, on_change=changes.append)
    a = asyncio.create_task(approvals.ask(ApprovalRequest(approval_id="a", tool="t")))
    b = asyncio.create_task(approvals.ask(ApprovalRequest(approval_id="b", tool="t")))
    await asyncio.sleep(0)
    assert [r.approval_id for r in approvals.pending] == ["a", "b"]
    assert approvals.approve()  # the oldest: a
    assert (await a).approved and (await a).reason == "user"
    decision = await b
    assert not decision.approved and decision.reason == "timeout"
    assert changes == [True, False]
    assert not approvals.reject()


# --------------------------------------------------------------------------- guardrails


def test_guardrail_monitor_checks_every_n_chars_and_at_the_end() -> None:
    m = GuardrailMonitor(every=10)
    assert m.delta("i", "12345") is None
    assert m.delta("i", "678901") == "12345678901"
    assert m.delta("i", "23") is None
    assert m.final("i", "1234567890123") == "1234567890123"
    short = GuardrailMonitor(every=100)
    assert short.delta("j", "only twenty chars!!!") is None
    assert short.final("j", "only twenty chars!!!") == "only twenty chars!!!"
    assert short.final("k", "") is None


async def test_regex_guardrail() -> None:
    g = regex_guardrail([r"pass\s*word"])
    result = await g.run("my PASS WORD is")
    assert result.tripped and result.info == {"pattern": r"pass\s*word", "match": "PASS WORD"}
    assert not (await g.run("nothing here")).tripped


# --------------------------------------------------------------------------- sans-I/O handoff


class ProtocolPort:
    """SessionPort over the sans-I/O engine: what the runtime sends and emits, synchronously."""

    def __init__(self, protocol: RealtimeProtocol) -> None:
        self.protocol = protocol
        self.emitted: list[ev.Event] = []

    def emit(self, event: ev.Event) -> None:
        self.emitted.append(event)

    def on(self, name: str, handler: object) -> object:
        return lambda: None

    def update_session(self, settings: object) -> None:
        self.protocol.update_session(settings)  # type: ignore[arg-type]

    def interrupt(self) -> None:
        self.protocol.interrupt()

    def approve_tool(self, approval_id: str, approve: bool = True) -> None:
        self.protocol.approve_tool(approval_id, approve)

    def playback_progress(self, item_id: str, samples_played: int) -> None:
        self.protocol.playback_progress(item_id, samples_played)

    def playback_finished(self, item_id: str) -> None:
        self.protocol.playback_finished(item_id)


async def test_handoff_filters_mcp_tools_by_the_active_agent() -> None:
    a = McpServer(label="a", url="https://a.example/mcp")
    b = McpServer(label="b", url="https://b.example/mcp")
    second = RealtimeAgent(name="second", mcp_servers=("b",))
    first = RealtimeAgent(name="first", mcp_servers=("a",), handoffs=(second,))
    runtime = AgentRuntime([first], mcp_servers=[a, b])
    proto = RealtimeProtocol(runtime.settings(), agent_name="x")
    port = ProtocolPort(proto)
    runtime.attach(port)  # type: ignore[arg-type]
    assert proto.agent_name == "first"
    proto.connection_made()
    proto.receive_event(S.session_updated())
    for label in ("a", "b"):
        proto.receive_event(
            S._ev(
                {
                    "type": "conversation.item.done",
                    "item": {
                        "id": f"item_l{label}",
                        "type": "mcp_list_tools",
                        "server_label": label,
                        "tools": [{"name": f"{label}_tool", "input_schema": {}}],
                    },
                }
            )
        )
    changed = [e for e in proto.events_received() if isinstance(e, ev.McpToolsChanged)]
    assert [[t.name for t in e.tools] for e in changed] == [["a_tool"]]
    out = await runtime.tool_runner.run("transfer_to_second", "{}", "call_1")
    assert json.loads(out)["assistant"] == "second"
    changed = [e for e in proto.events_received() if isinstance(e, ev.McpToolsChanged)]
    assert [[t.name for t in e.tools] for e in changed] == [["b_tool"]]
    update = [m for m in proto.data_to_send() if m["type"] == "session.update"][-1]
    assert [t["server_label"] for t in update["session"]["tools"]] == ["b"]
    assert [type(e).__name__ for e in port.emitted] == ["AgentHandoff", "SubagentStarted"]
    assert proto.agent_name == "second"
