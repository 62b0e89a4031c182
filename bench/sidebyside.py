"""`python -m bench.sidebyside`: gateways of one stack driven at the same time, compared.

    python -m bench.sidebyside gc700=GC_YOUNG_THRESHOLD=700
    python -m bench.sidebyside --pairs 8 off=LOG_SHIPPING=false mem=LOG_SPOOL_DIR=

Starts the bench's stack (PostgreSQL, the broker, logging_service, db_service and the
logging-on gateway, "on"), then one more gateway per variant: the logging-on gateway's
environment with the variant's variables over it, in front of the same db_service. Each pair
drives "on" and one variant at the same time, each with its own wrk, and reads each gateway's
CPU from /proc: the whole process, and its main thread (the event loop) alone.

Why: this host changes speed by a third from one run to the next (bench/README.md), so two
runs one after the other cannot resolve a change of 5 %. Run at the same time, both gateways
meet the same host. They also share the cores, so the figure to read is each gateway's own CPU
per request; the system's req/s is the bench's (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.checks import check_scenario
from bench.data import load_data, set_stock_high
from bench.lua import wrk_script
from bench.options import BenchError, parse_options, positive_int
from bench.procstats import cpu_snapshot, main_thread_cpu_s
from bench.scenarios import SCENARIOS, Scenario
from bench.seed import seed
from bench.stack import BenchStack, Target
from bench.wrk import ensure_wrk, run_wrk

REFERENCE = "on"
_SETTLE_S = 0.5  # after wrk ends, before the CPU is read again (the last responses)


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str]


@dataclass(frozen=True)
class Sample:
    """One gateway's share of one run: in each pair, the reference runs beside each variant."""

    pair: int
    run: str  # the variant of the run: the reference's samples differ from one run to the next
    target: str
    rps: float
    errors: int
    gateway_ms: float  # CPU per request, the gateway's process (and its threads)
    main_ms: float  # CPU per request, its main thread alone


def parse_variant(text: str) -> Variant:
    """`name=VAR=value[,VAR=value…]`; a value may be empty (`mem=LOG_SPOOL_DIR=`)."""
    name, sep, assignments = text.partition("=")
    if not sep or not name.isidentifier() or name == REFERENCE:
        raise ValueError(f"{text!r}: expected NAME=VAR=value[,VAR=value…], NAME not {REFERENCE!r}")
    env: dict[str, str] = {}
    for item in assignments.split(","):
        var, sep, value = item.partition("=")
        if not sep or not var or not var.replace("_", "").isalnum():
            raise ValueError(f"{text!r}: {item!r} is not VAR=value")
        env[var.upper()] = value
    return Variant(name, env)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    gateway_keys = [s.key for s in SCENARIOS if s.target == "gateway"]
    parser = argparse.ArgumentParser(
        prog="python -m bench.sidebyside",
        description="Drive the logging-on gateway and variants of it at the same time.",
    )
    parser.add_argument("variants", nargs="+", type=_variant, metavar="NAME=VAR=value[,…]")
    parser.add_argument("--scenario", default="gql_product_var", choices=gateway_keys)
    parser.add_argument("--pairs", type=positive_int, default=5, help="pairs per variant (5)")
    parser.add_argument("--duration", type=positive_int, default=4, help="seconds per pair (4)")
    parser.add_argument(
        "--connections", type=positive_int, default=16, help="wrk -c on each gateway (16)"
    )
    args = parser.parse_args(argv)
    names = [v.name for v in args.variants]
    if len(set(names)) != len(names):
        parser.error("each variant needs a name of its own")
    return args


def _variant(text: str) -> Variant:
    try:
        return parse_variant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def summary(samples: Sequence[Sample], variant: str) -> str:
    """`variant` against the reference over the pairs: medians of the differences."""
    by_pair: dict[int, dict[str, Sample]] = {}
    for s in samples:
        if s.run == variant:
            by_pair.setdefault(s.pair, {})[s.target] = s
    pairs = [p for p in by_pair.values() if REFERENCE in p and variant in p]
    if not pairs:
        return f"{variant}: no pair measured"
    main = [(p[variant].main_ms - p[REFERENCE].main_ms) * 1000 for p in pairs]
    whole = [(p[variant].gateway_ms - p[REFERENCE].gateway_ms) * 1000 for p in pairs]
    ratio = [p[variant].rps / p[REFERENCE].rps for p in pairs if p[REFERENCE].rps]
    lower = sum(1 for d in main if d < 0)
    return (
        f"{variant} against {REFERENCE}: main thread {statistics.median(main):+.1f} µs per"
        f" request (median of {len(pairs)}; lower in {lower} of {len(pairs)};"
        f" {min(main):+.1f} to {max(main):+.1f}), whole gateway"
        f" {statistics.median(whole):+.1f} µs, req/s {statistics.median(ratio):.3f}×"
    )


def drive_pair(
    wrk: str,
    scripts: dict[str, tuple[Target, Path]],
    pair: int,
    run: str,
    duration_s: int,
    conns: int,
) -> list[Sample]:
    """Run wrk on every target in `scripts` at the same time; one Sample each."""

    def cpu(target: Target) -> tuple[float, float]:
        pid = target.pids["gateway"]
        whole = cpu_snapshot({"gateway": pid})["gateway"]
        main = main_thread_cpu_s(pid)
        if main is None:
            raise BenchError(f"gateway {target.name} (pid {pid}) is gone")
        return whole, main

    before = {name: cpu(target) for name, (target, _) in scripts.items()}
    with ThreadPoolExecutor(len(scripts)) as pool:
        futures = {
            name: pool.submit(
                run_wrk,
                wrk,
                target.url,
                script,
                connections=conns,
                threads=1,
                duration_s=duration_s,
            )
            for name, (target, script) in scripts.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    time.sleep(_SETTLE_S)
    samples = []
    for name, (target, _) in scripts.items():
        whole, main = cpu(target)
        result = results[name]
        requests = max(result.requests, 1)
        samples.append(
            Sample(
                pair=pair,
                run=run,
                target=name,
                rps=result.rps,
                errors=result.errors,
                gateway_ms=(whole - before[name][0]) * 1000 / requests,
                main_ms=(main - before[name][1]) * 1000 / requests,
            )
        )
    return samples


def run(args: argparse.Namespace, say: Callable[[str], None]) -> list[Sample]:
    options, _ = parse_options(["--no-logging-run", "--no-paced-run"])
    scenario: Scenario = next(s for s in SCENARIOS if s.key == args.scenario)
    wrk = ensure_wrk(say)
    stack = BenchStack(options)
    try:
        say("starting PostgreSQL and the broker; seeding")
        dsn = stack.start_infra()
        asyncio.run(seed(dsn, options.seed, say))
        say(f"starting the stack and {len(args.variants)} variant gateway(s)")
        stack.start_services()
        for variant in args.variants:
            stack.add_variant(variant.name, variant.env)
        stack.wait_ready()
        data = load_data(dsn, stack.target(REFERENCE).url)
        set_stock_high(dsn, data.order_product_id)
        names = [REFERENCE, *(v.name for v in args.variants)]
        scripts: dict[str, tuple[Target, Path]] = {}
        lua_dir = options.data_dir / "lua"
        lua_dir.mkdir(parents=True, exist_ok=True)
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            for name in names:
                target = stack.target(name)
                check = check_scenario(client, scenario, target, data)
                if not check.ok:
                    raise BenchError(f"{scenario.key} on {name}: {check.problem or check.skipped}")
                requests = [p.request for p in scenario.build(data)]
                script = lua_dir / f"{scenario.key}-sidebyside-{name}.lua"
                script.write_text(
                    wrk_script(
                        requests,
                        title=scenario.title,
                        nonce=f"s{secrets.token_hex(6)}",  # idempotency keys unique per run
                        graphql=scenario.graphql,
                    )
                )
                scripts[name] = (target, script)
        say("warming up")
        drive_pair(wrk, scripts, 0, "warm-up", 2, args.connections)
        samples: list[Sample] = []
        for pair in range(1, args.pairs + 1):
            for variant in args.variants:
                two = {n: scripts[n] for n in (REFERENCE, variant.name)}
                got = drive_pair(wrk, two, pair, variant.name, args.duration, args.connections)
                samples += got
                say(
                    f"pair {pair}/{args.pairs} "
                    + " | ".join(
                        f"{s.target} {s.rps:7.0f} req/s, gateway {s.gateway_ms:.3f}"
                        f" (main {s.main_ms:.3f}) ms/req, {s.errors} errors"
                        for s in got
                    )
                )
        return samples
    finally:
        say("stopping the stack")
        stack.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"sidebyside [{time.monotonic() - started:5.0f}s] {message}", flush=True)

    try:
        samples = run(args, say)
    except BenchError as exc:
        say(f"failed: {exc}")
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    print(
        f"\n{args.scenario}: {args.pairs} pairs of {args.duration} s,"
        f" wrk -c {args.connections} -t 1 on each gateway at the same time"
    )
    for variant in args.variants:
        print(f"  {variant.name} = {variant.env}")
        print(f"  {summary(samples, variant.name)}")
    errors = sum(s.errors for s in samples)
    if errors:
        print(f"  {errors} requests failed: the figures are not comparable")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
