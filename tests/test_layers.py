"""The layers point one way: config at the bottom, agents, the SDK and the appliance on top.

Each check runs in a fresh interpreter (the suite's own imports would hide a load),
or reads the import statements themselves, so a new upward import fails here.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What importing and using the config may load: itself and the bottom modules.
CONFIG_LAYER = ("daemon.config", "daemon.vocab", "daemon.urlpolicy", "daemon.apikey")


def _loaded_after(code: str) -> set[str]:
    """The daemon/hw modules a fresh interpreter holds after running ``code``."""
    script = (
        f"{code}\nimport sys\n"
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in ('daemon', 'hw')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {m for m in out.split() if m != "daemon"}


def test_parsing_a_config_loads_no_agent_realtime_or_hw_module() -> None:
    loaded = _loaded_after(
        "from daemon import config\ncfg = config.parse({})\nconfig.to_toml(cfg)\n"
        "config.field_docs()"
    )
    above = sorted(m for m in loaded if not m.startswith(CONFIG_LAYER))
    assert above == []


def test_the_sdk_session_does_not_import_the_appliance_config() -> None:
    loaded = _loaded_after("import daemon.realtime.session")
    assert "daemon.realtime.session" in loaded
    assert sorted(m for m in loaded if m.startswith(("daemon.config", "daemon.appliance"))) == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules ``path`` imports, at the top or inside a function (a lazy import still
    closes a cycle: the base's config loader imported the agents from a function);
    TYPE_CHECKING blocks are left out, they never run."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from pkg import mod`
    return found


def _scan() -> dict[str, list[str]]:
    """Every daemon/hw module's imports (run by ``_all_imports`` in its own interpreter)."""
    files = sorted([*ROOT.glob("daemon/**/*.py"), *ROOT.glob("hw/**/*.py")])
    return {_module_name(p): sorted(_imports(p, _module_name(p))) for p in files}


@functools.cache
def _all_imports() -> dict[str, set[str]]:
    """``_scan()`` in a fresh interpreter: CPython 3.11's ``ast.parse`` can raise
    "SystemError: AST constructor recursion depth mismatch" in a thread that earlier
    caught a RecursionError (other tests feed deeply nested input on purpose)."""
    code = "import json; from tests.test_layers import _scan; print(json.dumps(_scan()))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {name: set(found) for name, found in json.loads(out).items()}


def test_no_import_cycle_in_daemon_or_hw() -> None:
    modules = _all_imports()
    graph: dict[str, set[str]] = {}
    for name, imports in modules.items():
        graph[name] = set()
        for target in imports:
            if target in modules and target != name and not name.startswith(f"{target}."):
                graph[name].add(target)  # a package's own __init__ is not a cycle edge
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_hw_takes_plain_values_not_the_config() -> None:
    """``hw`` gets pins, rates, seconds and names; only the daemon reads the config."""
    offenders = {
        name: sorted(
            m
            for m in imports
            if m.startswith(("daemon.config", "daemon.appliance", "daemon.effective"))
        )
        for name, imports in _all_imports().items()
        if name.split(".")[0] == "hw"
    }
    assert {name: found for name, found in offenders.items() if found} == {}
