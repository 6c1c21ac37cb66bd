"""`make bench` / `python -m tests.bench [FILTER]`: CPU and latency figures, one table.

Timings live here, never in tests. To add rows: write a module ``tests/bench_<area>.py``
whose functions are decorated with ``@bench`` and return a list of ``Row``; add the
module's name to ``MODULES`` below. A FILTER argument runs only the benches whose
function name contains it.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MODULES = [
    "tests.bench_wakeword",
    "tests.bench_daemon",
    "tests.bench_idle",
    "tests.bench_latency",
    "tests.bench_soak",
    "tests.bench_liveness",
    "tests.bench_sounds",
    "tests.bench_tools",
    "tests.bench_echo",
]


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline: str = ""  # what the value is compared with, e.g. a peer's implementation
    baseline_value: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value


BenchFn = Callable[[], list[Row]]
BENCHES: list[BenchFn] = []


def bench(fn: BenchFn) -> BenchFn:
    """Register a bench function (module import time)."""
    BENCHES.append(fn)
    return fn


def cpu_seconds(work: Callable[[], object]) -> float:
    """CPU time (this process, all threads) that ``work()`` takes."""
    start = time.process_time()
    work()
    return time.process_time() - start


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def format_table(rows: Sequence[Row]) -> str:
    header = ("bench", "value", "unit", "baseline", "baseline value", "ratio")
    cells = [
        (r.name, _fmt(r.value), r.unit, r.baseline or "-", _fmt(r.baseline_value), _fmt(r.ratio))
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)).rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    for name in MODULES:
        importlib.import_module(name)
    rows: list[Row] = []
    for fn in BENCHES:
        if args and not any(a in fn.__name__ for a in args):
            continue
        print(f"running {fn.__module__}.{fn.__name__} ...", file=sys.stderr, flush=True)
        rows.extend(fn())
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    # Run through the importable module: bench modules register into `tests.bench`,
    # not into this `__main__` copy of it.
    from tests.bench import main as _main

    sys.exit(_main())
