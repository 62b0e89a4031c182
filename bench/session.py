"""The phases of a bench run: check, warm up, interleaved rounds, the logging pairs, the paced
run and the soak."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bench.checks import CheckResult, check_scenario, sample_evenly
from bench.options import BenchOptions
from bench.probes import HttpRequest
from bench.runner import Runner, RunResult
from bench.scenarios import LIST_BASELINE, LIST_SCENARIOS, BenchData, Scenario
from bench.stack import LOGGING_TWINS, WORKERS_TARGET, BenchStack, Target

PACED_SCENARIO = "gql_product_var"
# The targets a logging pair times, in this order (the default mode, logging off, sync mode).
LOGGING_TARGETS = LOGGING_TWINS
# Timed on the gateway of --workers N processes as well (bench.workers).
WORKER_SCENARIOS = ("gql_product_var", "gql_orders", "gql_place_order")
_CALIBRATION_S = 3
_SOAK_MIX_PER_SCENARIO = 8


@dataclass(frozen=True)
class Planned:
    """A scenario that passed its check on a target, ready to be timed there."""

    scenario: Scenario
    target: Target
    requests: list[HttpRequest]

    @property
    def label(self) -> str:
        if self.target.name in ("on", "baseline"):
            return self.scenario.key
        if self.target.name == WORKERS_TARGET:
            return f"{self.scenario.key} [workers]"
        return f"{self.scenario.key} [logging {self.target.name}]"


@dataclass
class PacedResult:
    """product(id) at half its peak rate: the rate aimed at, and what the run measured."""

    peak_rps: float
    goal_rps: float
    delay_ms: float
    run: RunResult


@dataclass
class Session:
    """Runs the phases against a started stack; results accumulate on the object."""

    options: BenchOptions
    stack: BenchStack
    runner: Runner
    data: BenchData
    say: Callable[[str], None]
    checks: dict[str, dict[str, CheckResult]] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)
    single: list[RunResult] = field(default_factory=list)
    # The logging pairs' runs (their `round` is the pair's number), apart from the rounds'.
    pairs: list[RunResult] = field(default_factory=list)

    def check(self, scenarios: list[Scenario]) -> list[Planned]:
        """Check every scenario once on every target it will be timed on."""
        plan: list[Planned] = []
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            for scenario in scenarios:
                for target in self._targets(scenario):
                    result = check_scenario(client, scenario, target, self.data)
                    self.checks.setdefault(scenario.key, {})[target.name] = result
                    self.say(f"check {scenario.key} [{target.name}]: {_describe(result)}")
                    if result.ok:
                        requests = [p.request for p in scenario.build(self.data)]
                        plan.append(Planned(scenario, target, requests))
        return plan

    def warm_up(self, plan: list[Planned]) -> None:
        """A short untimed run of each: pools filled, caches warm, first-call costs paid."""
        for item in plan:
            self.run_planned(item, self.options.warmup_s, round_no=0)
        self.stack.raise_if_exited()

    def rounds(self, plan: list[Planned]) -> None:
        """`rounds` times every planned run in turn, so drift hits all of them alike: even
        rounds go in reverse order, so each pair of neighbours (logging on, off and sync of one
        scenario) is timed on, off, off, on over two rounds."""
        for round_no in range(1, self.options.rounds + 1):
            for item in plan if round_no % 2 else reversed(plan):
                self.runs.append(
                    self._timed(item, self.options.duration_s, round_no, self.options.rounds)
                )
            self.stack.raise_if_exited()

    def logging_pairs(self, plan: list[Planned]) -> None:
        """`logging_pairs` short runs of each scenario with logging on, off and sync, back to
        back (in reverse order every other pair), for the logging overhead table.

        The host's speed moves by tens of percent within seconds (bench/README.md, "host"); a
        ratio from three 10 s rounds measures that as much as the logging. Many short pairs put
        the host's phases on both sides.
        """
        count, seconds = self.options.logging_pairs, self.options.logging_pair_s
        groups: dict[str, list[Planned]] = {}
        for item in plan:
            if item.target.name in LOGGING_TARGETS:
                groups.setdefault(item.scenario.key, []).append(item)
        groups = {k: v for k, v in groups.items() if {i.target.name for i in v} >= {"batch", "off"}}
        if not count or not groups:
            return
        self.say(f"logging pairs: {count} x {len(groups)} scenarios, {seconds} s per run")
        for pair_no in range(1, count + 1):
            for items in groups.values():
                for item in items if pair_no % 2 else reversed(items):
                    self.pairs.append(self._timed(item, seconds, pair_no, count, "pair"))
            self.stack.raise_if_exited()

    def one_connection(self, plan: list[Planned]) -> None:
        """The list scenarios and their baseline at concurrency 1: latency without queueing."""
        wanted = (*LIST_SCENARIOS, LIST_BASELINE)
        for item in plan:
            if item.scenario.key in wanted and item.target.name in ("on", "baseline"):
                run = self.runner.run(
                    scenario=item.scenario.key,
                    title=item.scenario.title,
                    requests=item.requests,
                    graphql=item.scenario.graphql,
                    target=item.target,
                    duration_s=self.options.duration_s,
                    round_no=-4,
                    connections=1,
                )
                self.single.append(run)
                self.say(
                    f"concurrency 1 {item.label:<36} {run.rps:9.1f} req/s"
                    f"  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  errors {run.errors}"
                )

    def paced(self, plan: list[Planned]) -> PacedResult | None:
        """product(id) at half its median peak rate, for the p99-under-normal-load target."""
        item = next(
            (p for p in plan if p.scenario.key == PACED_SCENARIO and p.target.name == "on"), None
        )
        peaks = [r.rps for r in self.runs if r.scenario == PACED_SCENARIO and r.target == "on"]
        if item is None or not peaks:
            return None
        peak = statistics.median(peaks)
        goal = peak / 2
        cycle_ms = self.options.connections * 1000 / goal  # per connection, at the goal rate
        probe = self.run_planned(item, _CALIBRATION_S, round_no=-1, delay_ms=cycle_ms)
        delay = max(cycle_ms - probe.mean_ms, 0.0)
        run = self.run_planned(item, self.options.duration_s, round_no=-1, delay_ms=delay)
        self.say(
            f"paced {PACED_SCENARIO} at {run.rps:.0f} req/s (goal {goal:.0f}, half of {peak:.0f}):"
            f" p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms"
        )
        return PacedResult(peak_rps=peak, goal_rps=goal, delay_ms=delay, run=run)

    def soak(self, plan: list[Planned]) -> RunResult | None:
        """A mix of every gateway scenario for `soak_s` seconds, sampling the gateway's RSS."""
        mix = [p for p in plan if p.target.name == "on"]
        if not mix or self.options.soak_s <= 0:
            return None
        requests: list[HttpRequest] = []
        for item in mix:
            requests += [
                p.request
                for p in sample_evenly(item.scenario.build(self.data), _SOAK_MIX_PER_SCENARIO)
            ]
        self.say(f"soak: {len(mix)} scenarios mixed for {self.options.soak_s} s")
        run = self.runner.run(
            scenario="soak",
            title="soak: every gateway scenario, mixed",
            requests=requests,
            graphql=True,
            target=mix[0].target,
            duration_s=self.options.soak_s,
            round_no=-2,
        )
        self.say(f"soak: {run.rps:.0f} req/s, gateway RSS {_rss_summary(run)}")
        return run

    def _timed(
        self, item: Planned, seconds: int, number: int, of: int, phase: str = "round"
    ) -> RunResult:
        run = self.run_planned(item, seconds, number)
        self.say(
            f"{phase} {number}/{of} {item.label:<36}"
            f" {run.rps:9.1f} req/s  p50 {run.p50_ms:6.2f} ms"
            f"  p99 {run.p99_ms:7.2f} ms  errors {run.errors}"
        )
        return run

    def run_planned(
        self, item: Planned, duration_s: int, round_no: int, delay_ms: float | None = None
    ) -> RunResult:
        return self.runner.run(
            scenario=item.scenario.key,
            title=item.scenario.title,
            requests=item.requests,
            graphql=item.scenario.graphql,
            target=item.target,
            duration_s=duration_s,
            round_no=round_no,
            delay_ms=delay_ms,
        )

    def _targets(self, scenario: Scenario) -> list[Target]:
        if scenario.target == "baseline":
            return [self.stack.target("baseline")]
        targets = [self.stack.target("on")]
        if scenario.key in WORKER_SCENARIOS and self.stack.has_workers:
            targets.append(self.stack.target(WORKERS_TARGET))
        if scenario.logging_off and self.stack.has_logging_twins:
            targets += [self.stack.target(twin) for twin in LOGGING_TWINS]
        return targets


def _describe(result: CheckResult) -> str:
    if result.skipped:
        return f"SKIPPED: {result.skipped}"
    if result.problem:
        return f"WRONG ANSWER (not timed): {result.problem}"
    calls = result.grpc_calls_per_request
    grpc = f", {calls:g} gRPC call(s) per request" if calls is not None else ""
    return f"ok ({result.checked} answers right{grpc})"


def _rss_summary(run: RunResult) -> str:
    series = [mb for _, mb in run.rss_series]
    if not series:
        return "not sampled"
    return f"first {series[0]:.0f} MB, max {max(series):.0f} MB, last {series[-1]:.0f} MB"
