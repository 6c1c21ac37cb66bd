"""The floor of every declared dependency, as pins (`make floors` installs these).

Reads pyproject.toml: each ``name>=X`` of the runtime dependencies and of the test tools
in the ``dev`` extra becomes ``name==X``; the linters (ruff, mypy) are left out, they do
not run against the floors.
"""

from __future__ import annotations

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
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][0-9A-Za-z.]*)", req.strip())
        if m is None:
            raise ValueError(f"{path}: expected name>=version, got {req!r}")
        if m.group(1).lower() not in NOT_PINNED:
            out.append(f"{m.group(1)}=={m.group(2)}")
    return out


if __name__ == "__main__":
    print(" ".join(floors()))
