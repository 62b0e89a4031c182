"""The bench's logging pairs: after the rounds, each scenario timed with logging on and off is
timed again in many short runs, on, off and sync back to back (reversed every other pair), and
the logging table is computed from those pairs alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

from bench.options import parse_options
from bench.runner import Runner, RunResult
from bench.scenarios import BenchData, Scenario
from bench.session import Planned, Session
from bench.stack import BenchStack, Target
from bench.summary import build_rows, logging_overhead, logging_table
from tests.unit.test_bench_summary import run as result


class _Runner:
    """Records what it is asked to time; every run answers 1000 req/s."""

    def __init__(self) -> None:
        self.timed: list[tuple[str, str, int, int]] = []

    def run(self, **kwargs: Any) -> RunResult:
        self.timed.append(
            (kwargs["scenario"], kwargs["target"].name, kwargs["round_no"], kwargs["duration_s"])
        )
        return dataclasses.replace(
            result(kwargs["target"].name, kwargs["round_no"], 1000.0),
            scenario=kwargs["scenario"],
        )


class _Stack:
    def raise_if_exited(self) -> None:
        pass


def _planned(key: str, target: str, *, logging_off: bool = True) -> Planned:
    scenario = Scenario(key, key, "gateway", lambda _: [], logging_off=logging_off)
    return Planned(scenario, Target(target, "http://127.0.0.1:1", {}, True), [])


def _session(argv: list[str]) -> tuple[Session, _Runner]:
    options, _ = parse_options([*argv, "--data-dir", str(Path("/nonexistent"))])
    runner = _Runner()
    session = Session(
        options,
        cast(BenchStack, _Stack()),
        cast(Runner, runner),
        cast(BenchData, None),
        lambda _: None,
    )
    return session, runner


# As Session.check plans them: the stack every scenario runs on ("on"), then the twins.
PLAN = [
    _planned("baseline", "baseline", logging_off=False),
    _planned("gql_product_var", "on"),
    _planned("gql_product_var", "workers"),
    _planned("gql_product_var", "batch"),
    _planned("gql_product_var", "off"),
    _planned("gql_product_var", "sync"),
    _planned("gql_orders", "on", logging_off=False),
    _planned("rest_product_get", "on"),
    _planned("rest_product_get", "batch"),
    _planned("rest_product_get", "off"),
]


def test_each_pair_times_the_twins_on_off_and_sync_back_to_back_reversed_every_other_pair() -> None:
    # given a plan with two scenarios timed on the logging twins (one also in sync mode)
    session, runner = _session(["--logging-pairs", "3", "--logging-pair-duration", "2"])

    # when the logging pairs run
    session.logging_pairs(PLAN)

    # then only the twins of those scenarios are timed, not "on", 2 s each, in pairs 1..3
    assert runner.timed == [
        ("gql_product_var", "batch", 1, 2),
        ("gql_product_var", "off", 1, 2),
        ("gql_product_var", "sync", 1, 2),
        ("rest_product_get", "batch", 1, 2),
        ("rest_product_get", "off", 1, 2),
        ("gql_product_var", "sync", 2, 2),
        ("gql_product_var", "off", 2, 2),
        ("gql_product_var", "batch", 2, 2),
        ("rest_product_get", "off", 2, 2),
        ("rest_product_get", "batch", 2, 2),
        ("gql_product_var", "batch", 3, 2),
        ("gql_product_var", "off", 3, 2),
        ("gql_product_var", "sync", 3, 2),
        ("rest_product_get", "batch", 3, 2),
        ("rest_product_get", "off", 3, 2),
    ]
    # and they are kept apart from the rounds, and the logging table comes from them
    assert session.runs == []
    overhead = logging_overhead(build_rows(session.pairs, {}, {}), session.pairs)
    assert [(o["scenario"], o["rounds_paired"]) for o in overhead] == [
        ("gql_product_var", 3),
        ("rest_product_get", 3),
    ]


def test_no_pairs_with_zero_pairs_or_without_a_logging_off_stack() -> None:
    session, runner = _session(["--logging-pairs", "0"])
    session.logging_pairs(PLAN)
    on_only = [p for p in PLAN if p.target.name in ("on", "workers", "baseline")]
    other, other_runner = _session(["--logging-pairs", "4"])
    other.logging_pairs(on_only)

    assert runner.timed == []
    assert other_runner.timed == []


def test_a_full_run_times_ten_pairs_and_a_quick_one_none() -> None:
    full, _ = _session([])
    quick, _ = _session(["--quick"])

    assert (full.options.logging_pairs, full.options.logging_pair_s) == (10, 2)
    assert quick.options.logging_pairs == 0


def test_the_logging_table_comes_from_the_pairs_when_there_are_any() -> None:
    # given rounds in which logging cost 50 % and pairs in which it cost 10 %
    rounds = [result("batch", 1, 500.0), result("off", 1, 1000.0)]
    pairs = [result("batch", 1, 900.0), result("off", 1, 1000.0)]

    # when the report builds the logging table with and without pairs
    (from_pairs,), used_pairs = logging_table(rounds, pairs, {}, {})
    (from_rounds,), used_rounds = logging_table(rounds, [], {}, {})

    # then the pairs decide it when they ran, and the rounds otherwise
    assert (round(from_pairs["overhead_pct"], 1), used_pairs) == (10.0, True)
    assert (round(from_rounds["overhead_pct"], 1), used_rounds) == (50.0, False)
