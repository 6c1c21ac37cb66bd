"""The floor of every declared dependency, as pins (`make floors` installs these).

Reads pyproject.toml: each ``name>=X`` of the runtime dependencies and of the test tools
in the ``dev`` extra becomes ``name==X``; the linters (ruff, mypy) are left out, they do
not run against the floors. A requirement limited to machines
(``; platform_machine == 'x86_64' or ...``) is pinned only on those machines.
"""

from __future__ import annotations

import platform
import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
NOT_PINNED = frozenset({"ruff", "mypy"})


def floors(path: Path = PYPROJECT) -> list[str]:
    """``name==floor`` for every ``name>=floor`` requirement (runtime, then dev)."""
    project = tomllib.loads(path.read_text())["project"]
    reqs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    out = []
    for req in reqs:
        spec, _, marker = req.partition(";")
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][0-9A-Za-z.]*)", spec.strip())
        if m is None:
            raise ValueError(f"{path}: expected name>=version, got {req!r}")
        if marker.strip() and platform.machine() not in _machines(marker, path):
            continue
        if m.group(1).lower() not in NOT_PINNED:
            out.append(f"{m.group(1)}=={m.group(2)}")
    return out


def _machines(marker: str, path: Path) -> set[str]:
    """The machines of ``platform_machine == 'a' or platform_machine == 'b'``."""
    terms = [t.strip() for t in marker.split(" or ")]
    found = [re.fullmatch(r"platform_machine\s*==\s*['\"]([^'\"]+)['\"]", t) for t in terms]
    if not all(found):
        raise ValueError(f"{path}: only platform_machine == '...' markers are read: {marker!r}")
    return {m.group(1) for m in found if m is not None}


if __name__ == "__main__":
    print(" ".join(floors()))
