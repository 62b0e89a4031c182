"""The bench's log pipeline figures (records dropped, sent, ...) cover every gateway that ships
records: the logging pairs load the "batch" and "sync" twins, not the stack "on"."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench import __main__ as bench_main
from bench import metrics
from bench.data import StockLedger
from bench.options import parse_options
from bench.runner import Runner
from bench.scenarios import BenchData
from bench.session import Session
from bench.stack import BenchStack


def _options(tmp_path: Path) -> Any:
    options, _ = parse_options(["--data-dir", str(tmp_path)])
    return options


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
    options = _options(tmp_path)
    session = Session(
        options,
        cast(BenchStack, None),
        cast(Runner, None),
        cast(BenchData, None),
        lambda _: None,
    )
    ledger = StockLedger(stock=10, placed_quantity=0, placed_orders=0)
    gateways = {
        "on": {metrics.LOG_DROPPED: 0.0, metrics.LOG_SENT: 100.0},
        "batch": {metrics.LOG_DROPPED: 7.0, metrics.LOG_SENT: 50.0},
        "sync": {metrics.LOG_DROPPED: 0.0, metrics.LOG_SENT: 20.0},
    }

    # when the report is made
    payload = bench_main._report(
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

    # then the goal counts the twin's drops, and the pipeline line adds up every gateway
    (lost,) = [g for g in payload["goals"] if g.name == "log records lost"]
    assert (lost.measured, lost.met) == ("7 dropped", False)
    out = capsys.readouterr().out
    assert "log pipeline (gateways on, batch, sync): sent 170, re-sent n/a, dropped 7" in out
