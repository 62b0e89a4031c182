"""The table printed at the end of a run, and the same numbers as JSON in .merch/bench/last.json."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.options import REPO
from bench.summary import ROLES, Goal, Row

_CPU_HEADERS = {
    "gateway": "gw",
    "db_service": "db",
    "logging_service": "log",
    "postgres": "pg",
    "broker": "kafka",
    "wrk": "wrk",
}


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def commit_id() -> str:
    """`git rev-parse --short HEAD`, with `+dirty` when the work tree has changes."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine() -> str:
    """`2 cores, <CPU model>, Linux 6.x`."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}"


def _num(value: float | None, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{fmt}}"


def _pct(value: float | None) -> str:
    return f"{'-':>6}" if value is None else f"{value:5.1f}%"


def table(rows: list[Row]) -> str:
    """The main table: one line per scenario (and per logging twin)."""
    cpu = " ".join(f"{_CPU_HEADERS[r]:>6}" for r in ROLES)
    head = (
        f"{'scenario':<32} {'req/s':>8} {'x base':>7} {'x list':>7} {'p50 ms':>7}"
        f" {'p99 ms':>7} {'errors':>6}"
        f" | CPU ms/req: {cpu} | {'gw RSS':>6} {'gRPC':>5} {'other':>5} {'host':>5}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        cpu_cells = " ".join(_num(row.cpu_ms.get(r), ".3f", 6) for r in ROLES)
        lines.append(
            f"{row.label:<32} {row.rps:8.1f} {_num(row.ratio, '.3f', 7)}"
            f" {_num(row.list_ratio, '.3f', 7)} {row.p50_ms:7.2f}"
            f" {row.p99_ms:7.2f} {row.errors:6d} | {'':11} {cpu_cells} |"
            f" {row.gateway_rss_mb:6.0f} {_num(row.grpc_calls_checked, 'g', 5)}"
            f" {row.other_cpu_pct:4.0f}% {_num(row.host_slowdown, '.2f', 5)}"
        )
    return "\n".join(lines)


def overhead_table(overhead: list[dict[str, Any]], paired: str) -> str:
    """The logging twins, on against off, per scenario; `paired` says which runs were paired."""
    if not overhead:
        return "logging overhead: not measured (run without --no-logging-run)"
    lines = [
        f"{'logging overhead':<32} {'on req/s':>9} {'off req/s':>9} {'on/off':>7} {'cost':>7}"
        f" {'CPU ms on':>9} {'CPU ms off':>10} {'CPU cost':>8} {'host':>6}"
    ]
    for o in overhead:
        lines.append(
            f"{o['scenario']:<32} {o['rps_on']:9.1f} {o['rps_off']:9.1f} {o['ratio_on_off']:7.3f}"
            f" {o['overhead_pct']:6.1f}% {o['cpu_ms_on']:9.3f} {o['cpu_ms_off']:10.3f}"
            f" {o['cpu_overhead_pct']:7.1f}% {_pct(o.get('host_skew_pct'))}"
        )
    lines.append(
        f"measured in {paired}.\n"
        "req/s, CPU: medians of those runs; on/off: the median of each pair's ratio; cost: req/s"
        " lost with logging on,\nfrom that ratio; CPU cost: CPU per request (all services) added"
        " by it; host: how far the host's speed\ndiffered between the on and off runs of a pair,"
        " at worst (a probe loop timed around each run):\na cost near it is noise."
    )
    synced = [o for o in overhead if "rps_sync" in o]
    if synced:
        lines += [
            "",
            f"{'LOG_DURABILITY=sync':<32} {'req/s':>9} {'off req/s':>9} {'cost':>7}"
            f" {'p50 ms':>7} {'off p50':>7}",
        ]
        for o in synced:
            lines.append(
                f"{o['scenario']:<32} {o['rps_sync']:9.1f} {o['rps_off']:9.1f}"
                f" {o['sync_overhead_pct']:6.1f}% {o['p50_ms_sync']:7.2f} {o['p50_ms_off']:7.2f}"
            )
        lines.append("sync: each response waits for the fsync of its records (shared by a burst).")
    return "\n".join(lines)


def single_table(runs: list[Any]) -> str:
    """The list scenarios and their baseline at concurrency 1 (wrk -c 1 -t 1)."""
    if not runs:
        return "concurrency 1: not measured (gql_orders not in this run)"
    lines = [f"{'concurrency 1':<32} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'gRPC':>5}"]
    for run in runs:
        calls = _num(run.grpc_calls_per_request, ".3g", 5)
        lines.append(
            f"{run.scenario:<32} {run.rps:8.1f} {run.p50_ms:7.2f} {run.p99_ms:7.2f} {calls}"
        )
    return "\n".join(lines)


def goals_table(goals: list[Goal]) -> str:
    """The issue's targets: met, missed, or not measured in this run."""
    lines = [f"{'target':<44} {'goal':<26} {'measured':<40} result"]
    for goal in goals:
        verdict = {True: "MET", False: "MISSED", None: "-"}[goal.met]
        lines.append(f"{goal.name:<44} {goal.goal:<26} {goal.measured:<40} {verdict}")
    return "\n".join(lines)


def legend() -> str:
    """What the columns mean."""
    return (
        "req/s, p50, p99: medians over the rounds; errors: socket errors + HTTP >= 400 + GraphQL"
        " errors, all rounds.\nx base: req/s over the baseline's; x list: over the list"
        " baseline's (baseline_orders: the same 50 orders from one SELECT).\nCPU ms/req:"
        " user+system CPU of"
        " each process tree per request (median); on the baseline row gw is the baseline app.\n"
        "gw RSS: the gateway's resident MB after the run; gRPC: gRPC calls of one request"
        " (from /metrics, measured in the check).\nother: the most CPU (% of all cores) that"
        " processes outside the bench used during one of the rounds; high values mean noise.\n"
        "host: the host's speed (a Python loop timed before and after each run) at the slowest"
        " of the rounds, over its\nfastest in this bench run; 1.00 = the fastest, 1.50 = a"
        " third slower: the host, not our code, changed."
    )


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write the results, dataclasses included, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    tmp.replace(path)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def timestamp() -> str:
    """The local time, for the report's header."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z")
