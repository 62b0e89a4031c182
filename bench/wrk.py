"""wrk: found (or installed from the OS packages), run with a generated script, output parsed."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.lua import JSON_MARKER
from bench.options import BenchError

INSTALL_HINT = (
    "install it with `sudo apt-get install -y wrk` (Debian, Ubuntu) or `brew install wrk` (macOS)"
)
_APT_TIMEOUT_S = 300
_REQUEST_TIMEOUT = "5s"
_EXTRA_WAIT_S = 30


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and every kind of error, counted."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    socket_errors: int
    http_errors: int
    graphql_errors: int
    wrk_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.http_errors + self.graphql_errors


def ensure_wrk(say: Callable[[str], None] = print) -> str:
    """The path of wrk; as root on a Debian-like system, install it with apt-get if missing."""
    found = shutil.which("wrk")
    if found:
        return found
    say(f"bench: wrk is not installed; {INSTALL_HINT}")
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise BenchError(f"wrk is missing; {INSTALL_HINT}, then run the bench again")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "install", "-y", "wrk"], [apt, "update"], [apt, "install", "-y", "wrk"]):
        if shutil.which("wrk"):
            break
        say(f"bench: running `{' '.join(['apt-get', *argv[1:]])}`")
        try:
            subprocess.run(argv, env=env, timeout=_APT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            say(f"bench: apt-get did not finish within {_APT_TIMEOUT_S} s")
    found = shutil.which("wrk")
    if not found:
        raise BenchError(f"could not install wrk; {INSTALL_HINT}")
    return found


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    connections: int,
    threads: int,
    duration_s: int,
) -> WrkResult:
    """Run wrk against `url` for `duration_s` seconds; BenchError if it fails or hangs."""
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s}s"]
    argv += ["--timeout", _REQUEST_TIMEOUT, "--latency", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration_s + _EXTRA_WAIT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration_s + _EXTRA_WAIT_S} s") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_output(done.stdout, done.stderr, done.returncode, cpu_s)


def parse_output(stdout: str, stderr: str, code: int, cpu_s: float = 0.0) -> WrkResult:
    """The numbers from the BENCH_JSON line our Lua `done()` prints."""
    for line in stdout.splitlines():
        if line.startswith(JSON_MARKER + " "):
            raw = json.loads(line.removeprefix(JSON_MARKER + " "))
            break
    else:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        raise BenchError(f"wrk exited with {code} and no result: {' | '.join(tail)}")
    socket_errors = sum(
        int(raw[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=int(raw["duration_us"]) / 1e6,
        p50_ms=int(raw["p50_us"]) / 1000,
        p90_ms=int(raw["p90_us"]) / 1000,
        p99_ms=int(raw["p99_us"]) / 1000,
        max_ms=int(raw["max_us"]) / 1000,
        mean_ms=float(raw["mean_us"]) / 1000,
        socket_errors=socket_errors,
        http_errors=max(int(raw["http_errors"]), int(raw["status_errors"])),
        graphql_errors=int(raw["graphql_errors"]),
        wrk_cpu_s=cpu_s,
    )
