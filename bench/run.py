#!/usr/bin/env python3
"""Benchmarks of issue 7, side by side with their references, in one command:

    python3 bench/run.py            # everything, about 20 minutes
    python3 bench/run.py --quick    # a shorter run of every part (a few minutes)
    python3 bench/run.py --parts feeds,schedule --seconds 5
    python3 bench/run.py --quick --parts servers   # ASGI servers compared (not in the default run)

It prepares what it needs: bench/.venv with Radicale 3.9, pyinstrument and this project
from PyPI, and wrk and nginx from Debian's packages (apt-get, as root) when they are
missing. It needs PostgreSQL at 127.0.0.1:5432 with trust authentication (or
SAMHANDLING_BENCH_POSTGRES=postgresql://user@host:port/postgres) and creates and drops its
own databases. Everything runs on 127.0.0.1. It prints a table and writes
bench/results/latest.json (and latest.md, the table).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".bench-installed"
REQUIREMENTS = ["radicale==3.9.*", "pyinstrument>=5", "py-spy>=0.4", "aiosmtpd>=1.4",
                # compared with the server ``samhandling serve`` uses (--parts servers)
                "granian>=2.5"]
PARTS = ("feeds", "schedule", "dispatch", "national")
#: Parts run only when named.
EXTRA_PARTS = ("servers",)

#: The keys the issue asks for, each a number in latest.json.
REQUIRED = (
    "feed_warm_rps_c32", "nginx_rps_c32", "radicale_rps_c32", "feed_cold_render_ms_500", "icalendar_to_ical_ms_500",
    "schedule_exponent_busy", "schedule_exponent_participants", "dispatch_ratio_vs_raw", "national_feed_p99_ms",
    "national_loops_p99_ms", "national_backlog_msgs_per_s", "national_peak_rss_mb", "feed_304_ratio_vs_bare",
)
#: Keys of the issue's goals that only some runs give (two instances: when national measures it).
OPTIONAL = ("national_backlog_two_instances_msgs_per_s",)


def log(text: str) -> None:
    print(text, flush=True)


# --- preparing (standard library only: this runs before bench/.venv exists) --------------------


def ensure_tools() -> None:
    """wrk and nginx from Debian's packages, when missing."""
    missing = [tool for tool in ("wrk", "nginx")
               if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"{', '.join(missing)} missing: install them with `sudo apt-get install wrk nginx`")
    log(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def ensure_venv() -> None:
    """bench/.venv with the project (as production installs it: no extras) and the references."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + " ".join(REQUIREMENTS).encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        log(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "-e", ".", *REQUIREMENTS], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


# --- running (inside bench/.venv) ----------------------------------------------------------------


def wait_quiet(limit_s: float) -> float:
    """Other work on this machine skews every figure: wait a little for it to settle, and
    record the load the part ran under."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] > 1.0 and time.monotonic() < deadline:
        time.sleep(5)
    return round(os.getloadavg()[0], 2)


def goals(f: dict[str, float]) -> list[dict[str, Any]]:
    """Each goal of the issue: the measured ratio, the target, met or by how much missed."""
    out: list[dict[str, Any]] = []

    def goal(name: str, value: float | None, target: float, at_least: bool, text: str) -> None:
        if value is None:
            return
        met = value >= target if at_least else value <= target
        out.append({"goal": name, "value": round(value, 4), "target": target, "at_least": at_least, "met": met,
                    "text": text})

    if f.get("nginx_rps_c32"):
        goal("warm feed ≥ 50 % of nginx req/s (c32, 500)", f["feed_warm_rps_c32"] / f["nginx_rps_c32"], 0.5, True,
             "ratio")
    if f.get("radicale_rps_c32"):
        goal("warm feed ≥ 100× Radicale req/s (c32, 500)", f["feed_warm_rps_c32"] / f["radicale_rps_c32"], 100, True,
             "×")
    if f.get("feed_304_ratio_vs_bare"):
        goal("304 ≥ 50 % of a bare ASGI app on the same server (c32)", f["feed_304_ratio_vs_bare"], 0.5, True,
             "ratio")
    if f.get("icalendar_to_ical_ms_500"):
        goal("cold feed (DB + render) ≤ 25 % of icalendar to_ical (500)",
             f["feed_cold_render_ms_500"] / f["icalendar_to_ical_ms_500"], 0.25, False, "ratio")
        goal("render alone ≤ 25 % of icalendar to_ical (500)",
             f["feed_pure_render_ms_500"] / f["icalendar_to_ical_ms_500"], 0.25, False, "ratio")
    for name in ("participants", "busy"):
        if f"schedule_exponent_{name}" in f:
            goal(f"schedule exponent, {name} ≤ 1.2", f[f"schedule_exponent_{name}"], 1.2, False, "exponent")
    if "dispatch_ratio_vs_raw" in f:
        goal("dispatch ≥ 80 % of bare aiosmtplib", f["dispatch_ratio_vs_raw"], 0.8, True, "ratio")
    national_goals(f, goal)
    return out


def national_goals(f: dict[str, float], goal: Any) -> None:
    """The national rows of the issue's table."""
    if "national_backlog_msgs_per_s" in f:
        goal("national: 100,000-message backlog ≥ 150 msgs/s, one instance", f["national_backlog_msgs_per_s"], 150,
             True, "msgs/s")
        if f.get("national_backlog_two_instances_msgs_per_s") and f["national_backlog_msgs_per_s"]:
            goal("national: two instances ≥ 1.8× one (backlog msgs/s)",
                 f["national_backlog_two_instances_msgs_per_s"] / f["national_backlog_msgs_per_s"], 1.8, True, "×")
    if "national_loops_p99_ms" in f:
        goal("national: information loops p99 ≤ 150 ms (c32)", f["national_loops_p99_ms"], 150, False, "ms")
    if "national_feed_p99_ms" in f:
        goal("national: feed p99 ≤ 50 ms (c32)", f["national_feed_p99_ms"], 50, False, "ms")
    if "national_peak_rss_mb" in f:
        goal("national: peak RSS of one instance ≤ 500 MB", f["national_peak_rss_mb"], 500, False, "MB")


def tables(f: dict[str, float], goal_rows: list[dict[str, Any]], seconds: float) -> str:
    from bench.common import fmt, table

    parts: list[str] = []
    sizes = sorted({int(k.rsplit("_", 1)[1]) for k in f if k.startswith("feed_bytes_")})
    rows = []
    for size in sizes:
        for label, name in (("feed_warm", "service, warm (cached)"), ("feed_304", "service, 304"),
                            ("bare_304", "bare ASGI app, fixed 304, same server"),
                            ("feed_warm_2workers", "service, warm, uvicorn --workers 2"),
                            ("radicale", "Radicale 3.9"),
                            ("nginx", f"nginx static file, {fmt(f.get('nginx_workers'), 0)} worker(s)")):
            for c in (1, 32):
                key = f"{label}_rps_c{c}_{size}"
                if key in f:
                    rows.append([str(size), name, str(c), fmt(f[key]), fmt(f[f"{label}_p50_ms_c{c}_{size}"], 2),
                                 fmt(f[f"{label}_p99_ms_c{c}_{size}"], 2)])
    if rows:
        parts.append(f"Feed serving (wrk, {seconds:.0f} s per run, interleaved)\n\n" + table(
            rows, ["meetings", "server", "conns", "req/s", "p50 ms", "p99 ms"]))
        render_rows = []
        for size in sizes:
            if f"feed_cold_render_ms_{size}" in f:
                render_rows.append([str(size), fmt(f[f"feed_cold_render_ms_{size}"], 1),
                                    fmt(f[f"feed_pure_render_ms_{size}"], 1),
                                    fmt(f[f"feed_after_change_p50_ms_{size}"], 1),
                                    fmt(f[f"icalendar_from_ical_ms_{size}"], 1),
                                    fmt(f[f"icalendar_to_ical_ms_{size}"], 1), fmt(f[f"feed_bytes_{size}"] / 1000, 0)])
        parts.append("Cold render, same calendar, same run (ms, median)\n\n" + table(
            render_rows, ["meetings", "cold serve (DB+render)", "render alone", "HTTP after a change p50",
                          "icalendar from_ical", "icalendar to_ical", "kB"]))
    if "schedule_plans_per_s" in f:
        parts.append("Scheduling\n\n" + table([
            ["plans/s, one-year plan, 8 participants × 20 busy", fmt(f["schedule_plans_per_s"])],
            ["exponent, participants 2…64 (whole range / last three points)",
             f"{f['schedule_exponent_participants']:.2f} / {f['schedule_exponent_participants_tail']:.2f}"],
            ["exponent, busy intervals 10…10,000 (whole range / last three points)",
             f"{f['schedule_exponent_busy']:.2f} / {f['schedule_exponent_busy_tail']:.2f}"],
        ], ["measure", "value"]))
    if "dispatch_ratio_vs_raw" in f:
        parts.append("Dispatch, PostgreSQL outbox → aiosmtpd\n\n" + table([
            ["dispatcher (claim, consent gate, audit, iMIP, SMTP, outcome)", fmt(f["dispatch_msgs_per_s"])],
            ["bare aiosmtplib loop, same messages, same server", fmt(f["raw_smtp_msgs_per_s"])],
            ["ratio", f"{f['dispatch_ratio_vs_raw']:.2f}"],
        ], ["sender", "msgs/s"]))
    if "national_peak_rss_mb" in f:
        parts.append("National scale, one instance on PostgreSQL\n\n" + table([
            ["data set", f"{fmt(f.get('national_rows_case'))} cases, {fmt(f.get('national_rows_contact'))} contacts, "
                         f"{fmt(f.get('national_rows_meeting'))} meetings, {fmt(f.get('national_rows_consentrecord'))}"
                         f" consent records; generated in {fmt(f['national_generate_s'])} s"],
            ["feed, first request (cold) p50 / p99", f"{fmt(f['national_feed_cold_p50_ms'])} / "
                                                    f"{fmt(f['national_feed_cold_p99_ms'])} ms"],
            ["feed under wrk c32 p50 / p99", f"{fmt(f['national_feed_p50_ms'])} / {fmt(f['national_feed_p99_ms'])} ms"
                                             f" ({fmt(f['national_feed_rps'])} req/s)"],
            ["information-loops under wrk c32 p50 / p99", f"{fmt(f['national_loops_p50_ms'])} / "
                                                          f"{fmt(f['national_loops_p99_ms'])} ms "
                                                          f"({fmt(f['national_loops_rps'])} req/s)"],
            ["backlog drained", f"{fmt(f['national_backlog_msgs_per_s'])} msgs/s "
                                f"({fmt(f['national_backlog_settled'])} of {fmt(f['national_backlog'])} in "
                                f"{fmt(f['national_backlog_seconds'])} s)"],
            *([["backlog drained, two instances", f"{fmt(f['national_backlog_two_instances_msgs_per_s'])} msgs/s"]]
              if "national_backlog_two_instances_msgs_per_s" in f else []),
            ["peak RSS of the instance", f"{fmt(f['national_peak_rss_mb'])} MB"],
        ], ["measure", "value"]))
    if any(k.startswith("servers_") for k in f):
        from bench import servers

        parts.append(f"ASGI servers, same feed ({servers.SIZE} meetings), best of the interleaved passes\n\n"
                     + servers.table(f))
    if goal_rows:
        parts.append("Goals\n\n" + table(
            [[g["goal"], f"{g['value']:.3g}", f"{'≥' if g['at_least'] else '≤'} {g['target']:g}",
              "met" if g["met"] else "missed"] for g in goal_rows], ["goal", "measured", "target", ""]))
    return "\n\n".join(parts)


def inside(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from bench import wrk
    from bench.common import RESULTS, WORK

    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not wrk.available():
        sys.exit("wrk is not on PATH")
    parts = [p for p in args.parts.split(",") if p]
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    quiet = 10.0 if args.quick else 120.0
    figures: dict[str, float] = {}
    details: dict[str, Any] = {"load_average": {}, "notes": []}
    started = time.time()
    if "feeds" in parts:
        from bench import feed_serving

        details["load_average"]["feeds"] = wait_quiet(quiet)
        log("feed serving")
        sizes = (500,) if args.quick else (500, 5000)
        feed = feed_serving.run(sizes, seconds, log)
        figures.update(feed.figures)
        details["wrk_runs"] = feed.runs
        details["notes"] += feed.notes
        for size in sizes:
            figures.update(feed_serving.summary_ratios(figures, size))
    if "schedule" in parts:
        from bench import scheduling

        details["load_average"]["schedule"] = wait_quiet(quiet)
        log("scheduling")
        schedule = scheduling.run(args.quick, log)
        figures.update(schedule.figures)
        details["schedule_curves"] = schedule.curves
    if "dispatch" in parts:
        from bench import dispatch_bench

        details["load_average"]["dispatch"] = wait_quiet(quiet)
        log("dispatch")
        dispatch = dispatch_bench.run(args.quick, log)
        figures.update(dispatch.figures)
        details["dispatch_rounds"] = dispatch.rounds
    if "national" in parts:
        from bench import national

        details["load_average"]["national"] = wait_quiet(quiet)
        log("national scale")
        result = national.run(args.quick, seconds, log)
        figures.update(result.figures)
        details["notes"] += result.notes
    if "servers" in parts:
        from bench import servers

        details["load_average"]["servers"] = wait_quiet(quiet)
        log("ASGI servers")
        compared = servers.run(seconds, 1 if args.quick else 2, log)
        figures.update(compared.figures)
        details["server_runs"] = compared.runs
        details["notes"] += compared.notes
    goal_rows = goals(figures)
    text = tables(figures, goal_rows, seconds)
    command = "python3 bench/run.py" + (" --quick" if args.quick else "") + (
        f" --parts {args.parts}" if args.parts != ",".join(PARTS) else "") + (
        f" --seconds {args.seconds:g}" if args.seconds else "") + (f" --output {args.output}" if args.output else "")
    missing = [k for k in REQUIRED if k not in figures] if parts == list(PARTS) else []
    document = {
        **{k: figures[k] for k in (*REQUIRED, *OPTIONAL) if k in figures},
        **{k: v for k, v in sorted(figures.items()) if k not in REQUIRED and k not in OPTIONAL},
        "goals": goal_rows,
        "meta": {
            "command": command, "quick": args.quick, "wrk_seconds": seconds,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "minutes": round((time.time() - started) / 60, 1), "python": platform.python_version(),
            "cpus": os.cpu_count(), "service": "samhandling serve: one uvicorn process, httptools, uvloop",
            "missing_keys": missing,
        },
        "details": details,
    }
    out = RESULTS / ("latest.json" if not args.output else args.output)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(f"`{command}`\n\n{text}\n")
    log("\n" + text)
    for note in details["notes"]:
        log(f"note: {note}")
    log(f"\nwrote {out.relative_to(ROOT)} in {(time.time() - started) / 60:.1f} min")
    return 1 if missing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller data and 5 s wrk runs")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma-separated: " + ",".join(PARTS + EXTRA_PARTS))
    parser.add_argument("--seconds", type=float, default=0.0, help="seconds per wrk run (15, or 5 with --quick)")
    parser.add_argument("--output", default="", help="file name in bench/results (default latest.json)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return inside(args)
    if sys.version_info < (3, 11):  # noqa: UP036 (users may run it with an older python3)
        sys.exit("the benchmarks need Python 3.11 or newer")
    ensure_tools()
    ensure_venv()
    argv = [str(PYTHON), str(Path(__file__).resolve()), "--inside", *sys.argv[1:]]
    return subprocess.run(argv, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
