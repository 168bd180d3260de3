"""Shared helpers: timing statistics, child processes, PostgreSQL databases and bulk COPY.

Everything listens on and talks to 127.0.0.1 only; every process started here is stopped
by its own pid when its part ends.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
VENV = BENCH / ".venv"
VENV_BIN = VENV / "bin"

#: The PostgreSQL server the benchmark creates its own databases on (and drops them after).
POSTGRES_ADMIN_DSN = os.environ.get("SAMHANDLING_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; ``p`` in 0..100."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) over log(x): cost ∝ x^slope."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    num = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    den = sum((a - mx) ** 2 for a in lx)
    return num / den


def timed(fn: Any, *args: Any, repeat: int = 5, min_seconds: float = 0.0) -> list[float]:
    """Wall times (s) of ``fn(*args)``: ``repeat`` runs, more while under ``min_seconds``."""
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - started < min_seconds and len(times) < 10_000):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return times


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 60.0, headers: Mapping[str, str] | None = None,
              status: int | None = None) -> None:
    """Until ``url`` answers 2xx (or ``status``); raises after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: str = ""
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=dict(headers or {}))
            with urllib.request.urlopen(request, timeout=5) as answer:
                if 200 <= answer.status < 300:
                    return
        except urllib.error.HTTPError as error:
            if error.code == status:
                return
            last = str(error)
        except (OSError, urllib.error.URLError) as error:
            last = str(error)
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last})")


def http_get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 120.0
             ) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read(), dict(answer.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers.items())


@dataclass
class Proc:
    """A child process in its own session, logged to a file, stopped by its pid."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = ROOT
    popen: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return WORK / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        WORK.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                self.argv, env={**os.environ, **self.env}, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process has had."""
        return _status_kb(self.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _status_kb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants (a server's worker processes too)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0.0
    for member in tree:
        try:
            total += cpu_seconds(member)
        except (OSError, ValueError, IndexError):
            continue
    return total


# --- PostgreSQL ---------------------------------------------------------------------------


def dsn_for(database: str) -> str:
    return POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


def sqlalchemy_url(database: str) -> str:
    return dsn_for(database).replace("postgresql://", "postgresql+asyncpg://", 1)


async def create_database(name: str) -> None:
    """A fresh, migrated database (dropped first if a crashed run left it)."""
    import asyncpg

    from coordination.migrate import upgrade_async

    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await upgrade_async(sqlalchemy_url(name))


async def drop_database(name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _defaults(model: Any) -> dict[str, Any]:
    from pydantic_core import PydanticUndefined

    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        value = info.get_default(call_default_factory=True)
        if value is not PydanticUndefined:
            out[name] = value
    return out


def _pg_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def copy_rows(connection: Any, model: Any, rows: Iterable[Mapping[str, Any]], *, omit: tuple[str, ...] = ()
                    ) -> int:
    """COPY ``rows`` (dicts of column values; model defaults fill the rest) into the
    model's table. Far faster than INSERTs: a national data set loads in minutes.
    ``omit`` leaves columns to the database (e.g. ``id`` when the service writes too)."""
    table = model.__table__
    columns = [c.name for c in table.columns if c.name not in omit]
    defaults = _defaults(model)
    records = []
    for row in rows:
        merged = {**defaults, **row}
        records.append(tuple(_pg_value(merged.get(c)) for c in columns))
    if records:
        await connection.copy_records_to_table(table.name, records=records, columns=columns)
    return len(records)


async def reset_sequences(connection: Any, models: Iterable[Any]) -> None:
    """After COPY with explicit ids, let the service's own inserts continue after them."""
    for model in models:
        name = model.__table__.name
        await connection.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
            f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM \"{name}\"), 1))"
        )


# --- output -------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.{digits}f}"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A Markdown table, so that the README can take it as printed."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join([line, rule, *body])

