"""One timed wrk run, with the CPU time, memory and log queue of the processes it drives."""

from __future__ import annotations

import os
import resource
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import metrics
from bench.hostspeed import probe_ms
from bench.lua import wrk_script
from bench.probes import HttpRequest
from bench.procstats import (
    cpu_ms_per_request,
    cpu_snapshot,
    machine_busy_seconds,
    tree_rss_bytes,
)
from bench.stack import Target
from bench.wrk import WrkResult, run_wrk

_SETTLE_S = 0.5  # lets the log shipper flush what the run queued before CPU is read
_RSS_EVERY_S = 1.0
_QUEUE_EVERY_S = 2.0
_MB = 1024 * 1024


@dataclass
class RunResult:
    """What one wrk run of one scenario against one target measured."""

    scenario: str
    target: str
    round: int
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    socket_errors: int
    http_errors: int
    graphql_errors: int
    cpu_ms: dict[str, float]
    gateway_rss_mb: float
    grpc_calls_per_request: float | None
    log_queue_max: float | None
    log_dropped: float | None
    # CPU the rest of the machine used meanwhile, in % of all cores: other load skews a run.
    other_cpu_pct: float
    rss_series: list[tuple[float, float]] = field(default_factory=list)
    # The host's speed around the run: bench.hostspeed's loop, in ms (the mean of before and
    # after; 0 when not probed). Larger is slower.
    host_probe_ms: float = 0.0


class _Sampler(threading.Thread):
    """Samples the gateway's RSS (from /proc) and log queue depth (from /metrics) during a run."""

    def __init__(self, target: Target) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.target = target
        self.rss: list[tuple[float, float]] = []
        self.queue_max: float | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        next_queue = started
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while not self._stop_event.is_set():
                now = time.monotonic()
                rss = tree_rss_bytes(self.target.pids["gateway"]) / _MB
                self.rss.append((round(now - started, 1), round(rss, 1)))
                if self.target.metrics_url and now >= next_queue:
                    samples = metrics.scrape(client, self.target.metrics_url)
                    depth = metrics.value(samples, metrics.LOG_QUEUE_DEPTH)
                    if depth is not None:
                        self.queue_max = max(self.queue_max or 0.0, depth)
                    next_queue = now + _QUEUE_EVERY_S
                self._stop_event.wait(_RSS_EVERY_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


@dataclass
class Runner:
    """Writes the Lua script for a run, runs wrk and measures around it."""

    wrk: str
    lua_dir: Path
    connections: int
    threads: int

    def script_path(self, scenario: str, target: str, *, paced: bool) -> Path:
        """Where a run's wrk script is written (see script_name)."""
        return self.lua_dir / script_name(scenario, target, paced=paced)

    def run(
        self,
        *,
        scenario: str,
        title: str,
        requests: Sequence[HttpRequest],
        graphql: bool,
        target: Target,
        duration_s: int,
        round_no: int,
        delay_ms: float | None = None,
        connections: int | None = None,
    ) -> RunResult:
        """Drive `target` with `requests` for `duration_s` seconds and measure.

        `connections` overrides the run's concurrency (wrk needs a thread per connection at 1).
        """
        conns = connections or self.connections
        script = self.script_path(scenario, target.name, paced=delay_ms is not None)
        script.parent.mkdir(parents=True, exist_ok=True)
        nonce = f"r{secrets.token_hex(6)}"
        script.write_text(
            wrk_script(requests, title=title, nonce=nonce, graphql=graphql, delay_ms=delay_ms)
        )
        probe_before = probe_ms()
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            before = metrics.scrape(client, target.metrics_url)
            cpu_before = cpu_snapshot(target.pids)
            busy_before, wall_before = machine_busy_seconds(), time.monotonic()
            self_before = _own_cpu_seconds()
            sampler = _Sampler(target)
            sampler.start()
            try:
                result = run_wrk(
                    self.wrk,
                    target.url,
                    script,
                    connections=conns,
                    threads=min(self.threads, conns),
                    duration_s=duration_s,
                )
            finally:
                sampler.stop()
            time.sleep(_SETTLE_S)
            cpu_after = cpu_snapshot(target.pids)
            busy = machine_busy_seconds() - busy_before
            wall = time.monotonic() - wall_before
            after = metrics.scrape(client, target.metrics_url)
        ours = sum(cpu_after.values()) - sum(cpu_before.values()) + result.wrk_cpu_s
        ours += _own_cpu_seconds() - self_before
        other_pct = max(busy - ours, 0.0) * 100 / (wall * (os.cpu_count() or 1))
        run = _result(
            scenario, target, round_no, result, cpu_before, cpu_after, before, after, sampler
        )
        run.other_cpu_pct = round(other_pct, 1)
        run.host_probe_ms = round((probe_before + probe_ms()) / 2, 3)
        return run


def script_name(scenario: str, target: str, *, paced: bool) -> str:
    """The file a run's wrk script is written to. A paced run's has a name of its own: its
    requests pause between each other, and a run repeated by hand from the closed-loop script
    must not find the pauses in it."""
    return f"{scenario}-{target}{'-paced' if paced else ''}.lua"


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _result(
    scenario: str,
    target: Target,
    round_no: int,
    wrk: WrkResult,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    before: dict[str, float],
    after: dict[str, float],
    sampler: _Sampler,
) -> RunResult:
    cpu = cpu_ms_per_request(cpu_before, cpu_after, wrk.requests)
    cpu["wrk"] = wrk.wrk_cpu_s * 1000 / wrk.requests if wrk.requests else 0.0
    calls = metrics.delta(before, after, metrics.GRPC_CALLS)
    rss_now = tree_rss_bytes(target.pids["gateway"]) / _MB
    return RunResult(
        scenario=scenario,
        target=target.name,
        round=round_no,
        requests=wrk.requests,
        rps=wrk.rps,
        p50_ms=wrk.p50_ms,
        p90_ms=wrk.p90_ms,
        p99_ms=wrk.p99_ms,
        max_ms=wrk.max_ms,
        mean_ms=wrk.mean_ms,
        errors=wrk.errors,
        socket_errors=wrk.socket_errors,
        http_errors=wrk.http_errors,
        graphql_errors=wrk.graphql_errors,
        cpu_ms={k: round(v, 4) for k, v in cpu.items()},
        gateway_rss_mb=round(rss_now, 1),
        grpc_calls_per_request=calls / wrk.requests if calls is not None and wrk.requests else None,
        log_queue_max=sampler.queue_max,
        log_dropped=metrics.delta(before, after, metrics.LOG_DROPPED),
        other_cpu_pct=0.0,
        rss_series=sampler.rss,
    )
