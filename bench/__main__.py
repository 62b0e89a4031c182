"""`python -m bench` (`make bench`): start, seed, check, drive with wrk, print the table.

Phases: PostgreSQL + broker on .merch/bench; seed (once); the services, their logging twins
(on, off, sync) and the baseline; one correctness check per scenario and target; a warm-up;
`--rounds` interleaved rounds of `--duration` seconds each; product(id) at half its peak rate;
the soak and the profile when asked for; the table, and .merch/bench/last.json. Ctrl-C stops
everything at any point.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

import httpx

from bench import metrics, profiling, report, workers
from bench.data import StockLedger, load_data, set_stock_high, stock_ledger
from bench.options import BenchError, BenchOptions, parse_options
from bench.runner import Runner, RunResult
from bench.scenarios import SCENARIOS, Scenario, select
from bench.seed import seed
from bench.session import LOGGING_TARGETS, PacedResult, Planned, Session
from bench.stack import WORKERS_TARGET, BenchStack
from bench.summary import build_rows, evaluate, logging_table
from bench.wrk import ensure_wrk


class StopBench(BaseException):
    """SIGTERM or SIGHUP: stop like Ctrl-C; a BaseException so no `except Exception` eats it."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise StopBench(signum)


class Say:
    """Progress lines with the time since the start: `bench [  42s] message`."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"bench [{time.monotonic() - self.started:5.0f}s] {message}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench; 0 when every scenario answered right, 1 otherwise, 130 when stopped."""
    options, list_only = parse_options(argv)
    if list_only:
        for scenario in SCENARIOS:
            print(f"{scenario.key:<24} {scenario.title}")
        return 0
    try:
        scenarios = select(options.scenarios)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    say = Say()
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    # Even when started with SIGINT ignored (`cmd &` in a script), `kill -INT` must stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = BenchStack(options)
    try:
        wrk = ensure_wrk(say)
        return _run(options, scenarios, stack, wrk, say)
    except (KeyboardInterrupt, StopBench):
        say("interrupted")
        return 130
    except BenchError as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        say("stopping the stack")
        stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)


# Per timed run besides its duration: the settle pause, the host probes, the metric scrapes.
_RUN_OVERHEAD_S = 0.7


def _estimate(options: BenchOptions, plan: list[Planned]) -> str:
    per_round = options.duration_s + _RUN_OVERHEAD_S
    seconds = len(plan) * (options.warmup_s + per_round * options.rounds)
    seconds += options.duration_s + 3 if options.paced_run else 0
    seconds += options.duration_s * 2  # gql_orders and its list baseline at concurrency 1
    seconds += options.soak_s + options.profile_s
    logging = [p for p in plan if p.target.name in LOGGING_TARGETS and p.scenario.logging_off]
    if options.logging_off_run:
        seconds += len(logging) * options.logging_pairs * (options.logging_pair_s + _RUN_OVERHEAD_S)
    return f"{len(plan)} timed runs x {options.rounds} rounds: about {seconds / 60:.1f} min of load"


def _run(
    options: BenchOptions, scenarios: list[Scenario], stack: BenchStack, wrk: str, say: Say
) -> int:
    say(f"data in {options.data_dir}; starting PostgreSQL and the broker")
    dsn = stack.start_infra()
    plan_text = f"{options.seed.users} users, {options.seed.orders} orders"
    say(f"seeding (at least {plan_text}, {options.seed.products} products)")
    counts = asyncio.run(seed(dsn, options.seed, say))
    say(
        f"database: {counts.users} users, {counts.products} products, {counts.orders} orders"
        f" ({counts.inserted} rows inserted, {counts.removed} orders of earlier runs deleted,"
        f" in {counts.seconds:.1f} s)"
    )
    say(
        "starting logging_service, db_service, gateway"
        + (" and their logging twins (on, off, sync)" if options.logging_off_run else "")
        + ", baseline"
    )
    stack.start_services()
    stack.wait_ready()
    data = load_data(dsn, stack.target("on").url)
    ledger_start = set_stock_high(dsn, data.order_product_id)
    runner = Runner(wrk, options.data_dir / "lua", options.connections, options.threads)
    session = Session(options, stack, runner, data, say)
    plan = session.check(scenarios)
    say(_estimate(options, plan))
    session.warm_up(plan)
    spread_before = _requests_per_worker(stack)
    session.rounds(plan)
    session.one_connection(plan)
    share = workers.busiest_share(spread_before, _requests_per_worker(stack))
    session.logging_pairs(plan)
    paced = session.paced(plan) if options.paced_run else None
    soak = session.soak(plan)
    profile = _profile(options, stack, session, plan, say) if options.profile_s else {}
    ledger_end = stock_ledger(dsn, data.order_product_id)
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        # Every gateway that ships records: the logging pairs load the twins, not "on".
        gateways = {
            name: metrics.scrape(client, stack.target(name).metrics_url)
            for name in stack.shipping_gateways
        }
        kafka = metrics.scrape(client, stack.logging_metrics_url)
    payload = _report(
        options,
        counts,
        session,
        paced,
        soak,
        (ledger_start, ledger_end),
        gateways,
        kafka,
        profile,
        share,
    )
    report.write_json(options.results_path, payload)
    say(f"results written to {options.results_path}")
    failed = [k for k, t in session.checks.items() if any(c.problem for c in t.values())]
    return 1 if failed else 0


def _profile(
    options: BenchOptions, stack: BenchStack, session: Session, plan: list[Planned], say: Say
) -> dict[str, Any]:
    py_spy = profiling.find_py_spy()
    key = options.profile_scenario
    item = next((p for p in plan if p.scenario.key == key and p.target.name == "on"), None)
    if py_spy is None or item is None:
        why = profiling.INSTALL_HINT if py_spy is None else f"{key} is not in this run"
        say(f"profile: skipped ({why})")
        return {}
    wanted = ("gateway", "db_service", "logging_service")
    pids = {k: v for k, v in item.target.pids.items() if k in wanted}
    say(f"profile: py-spy on {', '.join(pids)} for {options.profile_s} s under {key}")

    def drive() -> None:
        session.runs.append(session.run_planned(item, options.profile_s, round_no=-3))

    results = profiling.profile_services(
        py_spy, pids, options.profile_s, options.data_dir, key, drive
    )
    for result in results.values():
        print(result.get("text") or result.get("error"), flush=True)
    return results


def _requests_per_worker(stack: BenchStack) -> dict[str, float]:
    """Requests so far per worker of the --workers gateway (empty without one)."""
    if not stack.has_workers:
        return {}
    url = stack.target(WORKERS_TARGET).metrics_url
    assert url is not None
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        return workers.requests_per_worker(client.get(url).text)


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _report(
    options: BenchOptions,
    counts: Any,
    session: Session,
    paced: PacedResult | None,
    soak: RunResult | None,
    ledger: tuple[StockLedger, StockLedger],
    gateways: dict[str, dict[str, float]],
    kafka: dict[str, float],
    profile: dict[str, Any],
    worker_share: float | None,
) -> dict[str, Any]:
    titles = {s.key: s.title for s in SCENARIOS}
    rows = build_rows(session.runs, session.checks, titles)
    overhead, from_pairs = logging_table(session.runs, session.pairs, session.checks, titles)
    paired = (
        f"{options.logging_pairs} pairs of {options.logging_pair_s} s after the rounds"
        " (on, off and sync back to back, in reverse order every other pair)"
        if from_pairs
        else "the rounds (on, off and sync back to back, in reverse order every other round)"
    )
    queue_depths = [
        r.log_queue_max
        for r in [*session.runs, *session.pairs]
        if r.target in gateways and r.log_queue_max is not None
    ]
    queue_max = max(queue_depths) if queue_depths else None
    dropped = metrics.total(gateways.values(), metrics.LOG_DROPPED)
    goals = evaluate(
        rows,
        overhead,
        ledger=ledger,
        queue_max=queue_max,
        dropped=dropped,
        paced=paced,
        soak=soak,
        single=session.single,
    )
    if options.workers > 1:
        goals += workers.goals(rows, options.workers, worker_share)
    commit = report.commit_id()
    print()
    print(f"Merch Store bench at {commit}, {report.timestamp()}; {report.machine()}")
    print(
        f"wrk -c {options.connections} -t {options.threads}, {options.duration_s} s x"
        f" {options.rounds} rounds (interleaved); {counts.users} users, {counts.orders} orders"
    )
    print()
    print(report.table(rows))
    print(report.legend())
    print()
    print(report.single_table(session.single))
    print()
    print(report.overhead_table(overhead, paired))
    print()
    start, end = ledger
    print(
        f"orders: {end.placed_orders - start.placed_orders} placed during the run;"
        f" stock + ordered {start.total} -> {end.total}"
        f" ({'no oversell' if end.total == start.total else 'MISMATCH'})"
    )
    pipeline = {
        name: _count(metrics.total(gateways.values(), metric))
        for name, metric in (
            ("sent", metrics.LOG_SENT),
            ("re-sent", metrics.LOG_RESENT),
            ("dropped", metrics.LOG_DROPPED),
            ("read back from the spool's files", metrics.LOG_READ_BACK),
        )
    }
    print(
        f"log pipeline (gateways {', '.join(gateways)}): "
        + ", ".join(f"{k} {v}" for k, v in pipeline.items())
        + f", max queue depth {_count(queue_max)};"
        f" Kafka acknowledged {_count(metrics.value(kafka, metrics.KAFKA_RECORDS))} records"
        " (gateway and db_service)"
    )
    drops: dict[str, float] = {}
    timed = [*session.runs, *session.pairs, *([paced.run] if paced else [])]
    for run in [*timed, *([soak] if soak else [])]:
        if run.log_dropped:
            drops[run.scenario] = drops.get(run.scenario, 0.0) + run.log_dropped
    if drops:
        text = ", ".join(f"{k} {v:.0f}" for k, v in sorted(drops.items(), key=lambda i: -i[1]))
        print(f"log records dropped by the gateway during: {text}")
    for key, targets in session.checks.items():
        for name, check in targets.items():
            if not check.ok:
                print(f"not timed: {key} [{name}]: {check.skipped or check.problem}")
    print()
    print(report.goals_table(goals))
    return {
        "commit": commit,
        "time": report.timestamp(),
        "machine": report.machine(),
        "options": options,
        "seed": counts,
        "rows": rows,
        "logging_overhead": overhead,
        "goals": goals,
        "checks": session.checks,
        "runs": session.runs,
        "logging_pairs": session.pairs,
        "paced": paced,
        "soak": soak,
        "concurrency_1": session.single,
        "ledger": {"start": start, "end": end},
        "gateway_metrics": {
            name: {k: v for k, v in samples.items() if k.startswith("gateway_log")}
            for name, samples in gateways.items()
        },
        "kafka_records": metrics.value(kafka, metrics.KAFKA_RECORDS),
        "profile": profile,
        "worker_share": worker_share,
    }


if __name__ == "__main__":
    sys.exit(main())
