"""The bench's log pipeline figures (records dropped, sent, ...) cover every gateway that ships
records: the logging pairs load the "batch" and "sync" twins, not the stack "on"."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench import __main__ as bench_main
from bench import metrics
from bench.data import StockLedger
from bench.options import parse_options
from bench.runner import Runner, RunResult
from bench.scenarios import BenchData
from bench.session import Session
from bench.stack import BenchStack
from bench.summary import LOG_QUEUE_BOUND
from tests.unit.test_bench_summary import run


def _options(tmp_path: Path) -> Any:
    options, _ = parse_options(["--data-dir", str(tmp_path)])
    return options


def _report(
    tmp_path: Path, gateways: dict[str, dict[str, float]], runs: list[RunResult] | None = None
) -> dict[str, Any]:
    """What the bench reports for `runs` (none by default) and the gateways' metrics."""
    options = _options(tmp_path)
    session = Session(
        options,
        cast(BenchStack, None),
        cast(Runner, None),
        cast(BenchData, None),
        lambda _: None,
    )
    session.runs = runs or []
    ledger = StockLedger(stock=10, placed_quantity=0, placed_orders=0)
    return bench_main._report(
        options,
        SimpleNamespace(users=1, orders=1),
        session,
        None,
        None,
        (ledger, ledger),
        gateways,
        {},
        {},
        None,
    )


def test_the_gateways_counted_are_every_one_that_ships(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bench stack started with its logging twins (no process really started)
    stack = BenchStack(_options(tmp_path))
    monkeypatch.setattr(stack, "_spawn", lambda *args, **kwargs: None)
    stack._broker = cast(Any, SimpleNamespace(bootstrap_servers="127.0.0.1:1"))

    # when the services start
    stack.start_services()

    # then the log pipeline is read on "on" and the twins that ship, not on logging off
    assert stack.shipping_gateways == ["on", "batch", "sync"]


def test_records_dropped_by_a_logging_twin_miss_the_goal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a run in which the "on" gateway dropped nothing and the "batch" twin, loaded by
    # the logging pairs, dropped 7 records
    gateways = {
        "on": {metrics.LOG_DROPPED: 0.0, metrics.LOG_SENT: 100.0},
        "batch": {metrics.LOG_DROPPED: 7.0, metrics.LOG_SENT: 50.0},
        "sync": {metrics.LOG_DROPPED: 0.0, metrics.LOG_SENT: 20.0},
    }

    # when the report is made
    payload = _report(tmp_path, gateways)

    # then the goal counts the twin's drops, and the pipeline line adds up every gateway
    (lost,) = [g for g in payload["goals"] if g.name == "log records lost"]
    assert (lost.measured, lost.met) == ("7 dropped", False)
    out = capsys.readouterr().out
    assert "log pipeline (gateways on, batch, sync): sent 170, re-sent n/a, dropped 7" in out


def test_the_queue_bound_is_checked_on_every_gateway_that_ships(tmp_path: Path) -> None:
    # given a run in which the --workers gateway's queue went past the shipper's bound
    runs = [
        dataclasses.replace(run("on", 1, 1000.0), log_queue_max=10.0),
        dataclasses.replace(run("workers", 1, 1000.0), log_queue_max=LOG_QUEUE_BOUND + 1),
        dataclasses.replace(run("off", 1, 1000.0), log_queue_max=0.0),
    ]

    # when the report is made
    payload = _report(tmp_path, {"on": {}, "workers": {}}, runs)

    # then the target is missed
    (bounded,) = [g for g in payload["goals"] if g.name == "log queue bounded"]
    assert (bounded.measured, bounded.met) == (f"max depth {LOG_QUEUE_BOUND + 1}", False)
