"""wrk runs with a Lua ``done`` hook that prints the figures as one JSON line, so that
p50/p99 come from wrk's own latency histogram rather than from parsing its text."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import WORK

MARK = "WRKJSON "

DONE_HOOK = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"connect_errors":%d,'
    .. '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

#: Rotates through a list of (path, authorization) pairs: many tokens or cases per run.
ROTATE_HOOK = """
local i = 0
request = function()
  i = (i % #targets) + 1
  local t = targets[i]
  local headers = {}
  if t[2] ~= "" then headers["Authorization"] = t[2] end
  return wrk.format("GET", t[1], headers)
end
"""


@dataclass(frozen=True)
class WrkResult:
    label: str
    connections: int
    requests: int
    seconds: float
    bytes: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {"label": self.label, "connections": self.connections, "requests": self.requests,
                "seconds": round(self.seconds, 3), "rps": round(self.rps, 1), "errors": self.errors,
                "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms,
                "mb_per_s": round(self.bytes / self.seconds / 1e6, 1) if self.seconds else 0.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(name: str, targets: Sequence[tuple[str, str]] = ()) -> Path:
    """A Lua file with the done hook, and the rotation over ``targets`` when given."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"wrk-{name}.lua"
    parts = [DONE_HOOK]
    if targets:
        rows = ",\n".join(f"  {{{_lua_string(p)}, {_lua_string(a)}}}" for p, a in targets)
        parts.insert(0, f"targets = {{\n{rows}\n}}\n")
        parts.append(ROTATE_HOOK)
    path.write_text("".join(parts))
    return path


def parse(label: str, connections: int, output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            errors = sum(int(data[k]) for k in ("status_errors", "connect_errors", "read_errors", "write_errors",
                                                "timeouts"))
            return WrkResult(
                label=label, connections=connections, requests=int(data["requests"]),
                seconds=int(data["duration_us"]) / 1e6, bytes=int(data["bytes"]), errors=errors,
                p50_ms=int(data["p50_us"]) / 1000, p90_ms=int(data["p90_us"]) / 1000,
                p99_ms=int(data["p99_us"]) / 1000, max_ms=int(data["max_us"]) / 1000,
            )
    raise RuntimeError(f"wrk printed no figures for {label}:\n{output[-2000:]}")


def run(label: str, url: str, *, connections: int, seconds: float, headers: Mapping[str, str] | None = None,
        lua: Path | None = None, timeout_s: int = 60) -> WrkResult:
    """One bounded wrk run against a loopback ``url``."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("benchmarks load loopback addresses only")
    threads = min(2, connections)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
            "-s", str(lua or script("plain"))]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed for {label}: {done.stderr[-2000:]}")
    return parse(label, connections, done.stdout)
