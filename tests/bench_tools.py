"""Command tool bounds (issue 14): peak RSS under a flooding tool, processes and fds under
100 parallel calls. Each figure comes from a fresh interpreter running the daemon's tool
path (AgentRuntime from a config, its tool runner), against its own RSS before the calls."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.bench import Row, bench

_CHILD = textwrap.dedent(
    """
    import asyncio, json, os
    import numpy  # noqa: F401 - the daemon has it loaded too
    from daemon import config
    from daemon.agents import AgentRuntime

    def rss_mb():
        # VmHWM, this process's own peak: ru_maxrss keeps the parent's across fork + exec.
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    def children():
        n = 0
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    stat = open(f"/proc/{p}/stat", "rb").read()
                except OSError:
                    continue
                if int(stat[stat.rfind(b")") + 2 :].split()[1]) == os.getpid():
                    n += 1
        return n

    async def main():
        cfg = config.parse({
            "tools": [
                {"name": "yes", "argv": ["/usr/bin/yes"], "timeout": 5},
                {"name": "zeros", "argv": ["head", "-c", "200000000", "/dev/zero"], "timeout": 5},
                {"name": "nap", "argv": ["/bin/sleep", "0.5"], "timeout": 5},
            ],
            "tooling": {"plugins": False},
        })
        rt = AgentRuntime.from_config(cfg)
        before = rss_mb()
        for name in ("yes", "zeros"):
            await rt.tool_runner.run(name, "{}", "c_" + name)
        flood = rss_mb()
        fds0 = len(os.listdir("/proc/self/fd"))
        peak = {"procs": 0, "fds": 0}
        calls = [asyncio.create_task(rt.tool_runner.run("nap", "{}", f"c{i}")) for i in range(100)]
        while not all(c.done() for c in calls):
            peak["procs"] = max(peak["procs"], children())
            peak["fds"] = max(peak["fds"], len(os.listdir("/proc/self/fd")) - fds0)
            await asyncio.sleep(0.01)
        outs = [c.result() for c in calls]
        busy = sum("running already" in o for o in outs)
        print(json.dumps({"before": before, "flood": flood, "busy": busy, **peak}))

    asyncio.run(main())
    """
)


@bench
def tool_bounds() -> list[Row]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=120
    )
    r = json.loads(done.stdout)
    return [
        Row(
            "tools: peak RSS after yes + 200 MB flood", r["flood"], "MiB", "RSS before", r["before"]
        ),
        Row("tools: child processes, 100 parallel calls", r["procs"], "procs", "calls", 100),
        Row("tools: extra fds, 100 parallel calls", r["fds"], "fds"),
        Row("tools: calls answered busy at once", r["busy"], "calls", "calls", 100),
    ]
