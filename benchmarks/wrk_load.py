"""HTTP load with `wrk` (Debian package `wrk`): a Lua script cycles the user id per request and
prints the run's numbers as one JSON line, so nothing is scraped from wrk's human report."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = """
local ids = {%(ids)s}
local made = 0

function setup(thread)
  thread:set("offset", made * 97)
  made = made + 1
end

function init(args)
  i = offset
end

function request()
  i = i + 1
  return wrk.format("GET", "%(path)s" .. ids[(i %% #ids) + 1] .. "%(query)s")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d,'
    .. '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk_executable() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")
    return found


def wrk_version() -> str:
    done = subprocess.run([wrk_executable(), "-v"], capture_output=True, text=True)
    return (done.stdout or done.stderr).split(" Copyright")[0].strip()


def write_script(folder: Path, path: str, ids: list[int], query: str) -> Path:
    """`path` + id + `query` per request, ids in turn (each wrk thread from its own offset)."""
    script = folder / "cycle_ids.lua"
    script.write_text(LUA % {"ids": ",".join(map(str, ids)), "path": path, "query": query})
    return script


def run_wrk(
    base_url: str, script: Path, connections: int, seconds: float, threads: int
) -> LoadResult:
    command = [
        wrk_executable(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={script}",
        base_url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        p50_ms=report["p50_us"] / 1e3,
        p99_ms=report["p99_us"] / 1e3,
        max_ms=report["max_us"] / 1e3,
        errors={k: report[k] for k in ("connect", "read", "write", "status", "timeout")},
    )
