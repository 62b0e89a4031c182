"""From the runs to the numbers in the table: medians per scenario, ratios, and the targets."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.checks import CheckResult
from bench.data import StockLedger
from bench.runner import RunResult
from bench.scenarios import LIST_BASELINE, LIST_SCENARIOS
from bench.session import PacedResult
from bench.stack import LOGGING_TWINS

ROLES = ("gateway", "db_service", "logging_service", "postgres", "broker", "wrk")
# The shipper's bound: LOG_QUEUE_MAX queued plus one LOG_BATCH_MAX batch in flight (defaults).
LOG_QUEUE_BOUND = 10_000 + 2000
SOAK_TARGET_S = 300
# The logging twins (bench.stack): the default mode against logging off, and sync mode.
_ON, _OFF, _SYNC = LOGGING_TWINS


@dataclass
class Row:
    """One line of the table: a scenario on a target, medians over the rounds."""

    scenario: str
    target: str
    title: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: float | None
    cpu_ms: dict[str, float]
    gateway_rss_mb: float
    grpc_calls_checked: float | None
    grpc_calls_under_load: float | None
    other_cpu_pct: float
    # req/s over the list baseline's (the same page from one SELECT): list scenarios only.
    list_ratio: float | None = None
    # The slowest host probe of its rounds over the fastest probe of the whole bench run
    # (bench.hostspeed): 1.0 = measured on the host at its fastest, 1.5 = a third slower.
    host_slowdown: float | None = None

    @property
    def label(self) -> str:
        if self.target in ("on", "baseline"):
            return self.scenario
        return f"{self.scenario} [{self.target}]"


@dataclass
class Goal:
    """One of the issue's targets and whether this run met it (None: not measured)."""

    name: str
    goal: str
    measured: str
    met: bool | None


@dataclass
class Summary:
    """Everything the report prints and the JSON holds."""

    rows: list[Row]
    overhead: list[dict[str, Any]]
    goals: list[Goal]
    notes: list[str] = field(default_factory=list)


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def build_rows(
    runs: list[RunResult], checks: dict[str, dict[str, CheckResult]], titles: dict[str, str]
) -> list[Row]:
    """Medians per (scenario, target), in the order the runs were made."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for run in runs:
        if run.round > 0:
            groups.setdefault((run.scenario, run.target), []).append(run)
    base = groups.get(("baseline", "baseline"))
    base_rps = _median([r.rps for r in base]) if base else None
    list_base = groups.get((LIST_BASELINE, "baseline"))
    list_rps = _median([r.rps for r in list_base]) if list_base else None
    probes = [r.host_probe_ms for rs in groups.values() for r in rs if r.host_probe_ms > 0]
    fastest = min(probes) if probes else None
    rows = []
    for (scenario, target), group in groups.items():
        rps = _median([r.rps for r in group])
        under_load = [
            r.grpc_calls_per_request for r in group if r.grpc_calls_per_request is not None
        ]
        check = checks.get(scenario, {}).get(target)
        rows.append(
            Row(
                scenario=scenario,
                target=target,
                title=titles.get(scenario, scenario),
                rounds=len(group),
                rps=rps,
                p50_ms=_median([r.p50_ms for r in group]),
                p99_ms=_median([r.p99_ms for r in group]),
                errors=sum(r.errors for r in group),
                ratio=rps / base_rps if base_rps else None,
                cpu_ms={role: _median([r.cpu_ms.get(role, 0.0) for r in group]) for role in ROLES},
                gateway_rss_mb=max(r.gateway_rss_mb for r in group),
                grpc_calls_checked=check.grpc_calls_per_request if check else None,
                grpc_calls_under_load=_median(under_load) if under_load else None,
                other_cpu_pct=max(r.other_cpu_pct for r in group),
                list_ratio=rps / list_rps if list_rps and scenario in LIST_SCENARIOS else None,
                host_slowdown=(
                    max(r.host_probe_ms for r in group) / fastest
                    if fastest and all(r.host_probe_ms > 0 for r in group)
                    else None
                ),
            )
        )
    return rows


def logging_overhead(rows: list[Row], runs: list[RunResult]) -> list[dict[str, Any]]:
    """For each scenario timed on the logging twins: req/s with logging on and off and the cost
    of logging (the default LOG_DURABILITY=batch), and of LOG_DURABILITY=sync where it was timed.

    The cost is paired: each round times on, off and sync back to back (even rounds in reverse
    order, so a drift over the round hits both sides alike), and the cost is one minus the
    median over the rounds of that round's on/off ratio. Medians of each side taken apart
    compare a fast round of one with a slow round of the other; that figure is kept too.
    """
    by_key = {(r.scenario, r.target): r for r in rows}
    out = []
    for row in rows:
        off = by_key.get((row.scenario, _OFF))
        if row.target != _ON or off is None or off.rps <= 0:
            continue
        cpu_on = sum(row.cpu_ms[r] for r in ROLES if r != "wrk")
        cpu_off = sum(off.cpu_ms[r] for r in ROLES if r != "wrk")
        ratio, paired = _paired_ratio(runs, row.scenario, _ON)
        out.append(
            {
                "scenario": row.scenario,
                "rps_on": row.rps,
                "rps_off": off.rps,
                "ratio_on_off": ratio if ratio is not None else row.rps / off.rps,
                "rounds_paired": paired,
                "overhead_pct": (1 - (ratio if ratio is not None else row.rps / off.rps)) * 100,
                "overhead_pct_of_medians": (1 - row.rps / off.rps) * 100,
                "cpu_ms_on": cpu_on,
                "cpu_ms_off": cpu_off,
                # CPU per request is steadier than req/s when the machine is shared.
                "cpu_overhead_pct": (cpu_on / cpu_off - 1) * 100 if cpu_off else 0.0,
                "host_skew_pct": _host_skew(runs, row.scenario, _ON),
                **_sync_cost(by_key.get((row.scenario, _SYNC)), off, runs),
            }
        )
    return out


def logging_table(
    runs: list[RunResult],
    pairs: list[RunResult],
    checks: dict[str, dict[str, CheckResult]],
    titles: dict[str, str],
) -> tuple[list[dict[str, Any]], bool]:
    """The logging overhead from the logging pairs' runs when there are any (bench.session),
    else from the rounds'; and whether it came from the pairs."""
    source = pairs or runs
    return logging_overhead(build_rows(source, checks, titles), source), bool(pairs)


def _round_pairs(
    runs: list[RunResult], scenario: str, target: str, value: Callable[[RunResult], float]
) -> list[tuple[float, float]]:
    """(`target`'s value, logging-off's value) of each timed round that ran both."""
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        if run.scenario == scenario and run.round >= 1 and run.target in (target, _OFF):
            by_round.setdefault(run.round, {})[run.target] = value(run)
    return [(sides[target], sides[_OFF]) for sides in by_round.values() if len(sides) == 2]


def _paired_ratio(runs: list[RunResult], scenario: str, target: str) -> tuple[float | None, int]:
    """The median over the timed rounds of `target`'s req/s over logging-off's in that round,
    and how many rounds had both."""
    pairs = _round_pairs(runs, scenario, target, lambda run: run.rps)
    ratios = [mine / off for mine, off in pairs if off > 0]
    return (statistics.median(ratios) if ratios else None), len(ratios)


def _host_skew(runs: list[RunResult], scenario: str, target: str) -> float | None:
    """How far apart the host's speed was for `target` and logging-off within a round, at
    worst over the rounds, in % (bench.hostspeed); None when not probed. A pair timed on a
    host that changed speed between its two runs measures the host, not the logging."""
    pairs = _round_pairs(runs, scenario, target, lambda run: run.host_probe_ms)
    skews = [abs(mine / off - 1) * 100 for mine, off in pairs if mine > 0 and off > 0]
    return max(skews) if skews else None


def _sync_cost(sync: Row | None, off: Row, runs: list[RunResult]) -> dict[str, Any]:
    """LOG_DURABILITY=sync against logging off: req/s, the (paired) cost, and p50 latency."""
    if sync is None:
        return {}
    ratio, _ = _paired_ratio(runs, off.scenario, _SYNC)
    return {
        "rps_sync": sync.rps,
        "sync_overhead_pct": (1 - (ratio if ratio is not None else sync.rps / off.rps)) * 100,
        "p50_ms_sync": sync.p50_ms,
        "p50_ms_off": off.p50_ms,
    }


def _ratio_target(rows: dict[str, Row], key: str, goal: float, name: str) -> Goal:
    row = rows.get(key)
    if row is None or row.ratio is None:
        return Goal(name, f">= {goal}x baseline", "not measured", None)
    return Goal(name, f">= {goal}x baseline", f"{row.ratio:.3f}x", row.ratio >= goal)


def evaluate(
    rows: list[Row],
    overhead: list[dict[str, Any]],
    *,
    ledger: tuple[StockLedger, StockLedger] | None,
    queue_max: float | None,
    dropped: float | None,
    paced: PacedResult | None,
    soak: RunResult | None,
    single: list[RunResult] | None = None,
) -> list[Goal]:
    """The issue's targets, each with what this run measured."""
    on = {r.scenario: r for r in rows if r.target in ("on", "baseline")}
    targets = [
        _ratio_target(on, "gql_product_var", 0.45, "GraphQL product(id), variable"),
        _ratio_target(on, "gql_product_persisted", 0.6, "GraphQL product(id), persisted"),
        _ratio_target(on, "gql_product_literal", 0.35, "GraphQL product(id), literal"),
        _ratio_target(on, "rest_product_get", 0.6, "REST GET /api/v1/products/{id}"),
        _ratio_target(on, "gql_orders", 0.1, "orders(first: 50) +product +user"),
    ]
    orders = on.get("gql_orders")
    calls = orders.grpc_calls_checked if orders else None
    targets.append(
        Goal(
            "orders(first: 50): gRPC calls per request",
            "<= 3",
            "not measured" if calls is None else f"{calls:g}",
            None if calls is None else calls <= 3,
        )
    )
    targets.append(
        Goal(
            "orders(first: 50): gRPC calls (issue 13)",
            "<= 1",
            "not measured" if calls is None else f"{calls:g}",
            None if calls is None else calls <= 1,
        )
    )
    alone = next((r for r in single or [] if r.scenario == "gql_orders"), None)
    targets.append(
        Goal(
            "orders(first: 50): p50 at concurrency 1",
            "<= 3 ms",
            "not measured" if alone is None else f"{alone.p50_ms:.2f} ms",
            None if alone is None else alone.p50_ms <= 3,
        )
    )
    place = on.get("gql_place_order")
    targets.append(
        Goal(
            "placeOrder throughput",
            ">= 500 orders/s",
            f"{place.rps:.0f}/s" if place else "not measured",
            place.rps >= 500 if place else None,
        )
    )
    if ledger is not None:
        start, end = ledger
        ok = end.total == start.total and end.stock >= 0
        measured = f"stock+ordered {start.total} -> {end.total}"
        targets.append(Goal("placeOrder: no oversell", "stock + ordered constant", measured, ok))
    if overhead:
        worst = max(overhead, key=lambda o: float(o["overhead_pct"]))
        measured = f"worst {worst['overhead_pct']:.1f} % ({worst['scenario']})"
        targets.append(
            Goal("logging on vs off", "<= 10 % req/s", measured, worst["overhead_pct"] <= 10)
        )
    else:
        targets.append(Goal("logging on vs off", "<= 10 % req/s", "not measured", None))
    queue = "not measured" if queue_max is None else f"max depth {queue_max:.0f}"
    bounded = None if queue_max is None else queue_max <= LOG_QUEUE_BOUND
    targets.append(
        Goal("log queue bounded", f"<= {LOG_QUEUE_BOUND} (queue + batch)", queue, bounded)
    )
    lost = "not measured" if dropped is None else f"{dropped:.0f} dropped"
    targets.append(Goal("log records lost", "0", lost, None if dropped is None else dropped == 0))
    if paced is not None:
        p99 = paced.run.p99_ms
        measured = f"p99 {p99:.1f} ms at {paced.run.rps:.0f} req/s"
        targets.append(Goal("product(id) p99 at half peak", "<= 25 ms", measured, p99 <= 25))
    else:
        targets.append(Goal("product(id) p99 at half peak", "<= 25 ms", "not measured", None))
    targets.append(_soak_target(soak))
    return targets


def _soak_target(soak: RunResult | None) -> Goal:
    goal = f"+-10 % over {SOAK_TARGET_S} s"
    if soak is None or len(soak.rss_series) < 3:
        return Goal("gateway RSS flat", goal, "not measured (--soak 300)", None)
    # The first tenth is warm-up: caches fill, pools grow.
    warm = soak.rss_series[len(soak.rss_series) // 10 :]
    reference = warm[0][1]
    worst = max(abs(mb - reference) / reference for _, mb in warm) if reference else 0.0
    seconds = soak.rss_series[-1][0]
    measured = f"{worst * 100:.1f} % over {seconds:.0f} s (from {reference:.0f} MB)"
    met = worst <= 0.10 if seconds >= SOAK_TARGET_S * 0.95 else None
    return Goal("gateway RSS flat", goal, measured, met)
