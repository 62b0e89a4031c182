"""The bench's logging cost is paired by round: a drift between rounds must not show as cost;
and the host's speed around each run is reported, so a slow host is not taken for slow code."""

from __future__ import annotations

from bench.hostspeed import probe_ms
from bench.runner import RunResult
from bench.summary import build_rows, logging_overhead

ROLES = ("gateway", "db_service", "logging_service", "postgres", "broker", "wrk")


def run(target: str, round_no: int, rps: float, probe: float = 0.0) -> RunResult:
    return RunResult(
        scenario="gql_product_var",
        target=target,
        round=round_no,
        requests=int(rps * 5),
        rps=rps,
        p50_ms=5.0,
        p90_ms=8.0,
        p99_ms=10.0,
        max_ms=20.0,
        mean_ms=5.0,
        errors=0,
        socket_errors=0,
        http_errors=0,
        graphql_errors=0,
        cpu_ms=dict.fromkeys(ROLES, 0.1),
        gateway_rss_mb=70.0,
        grpc_calls_per_request=1.0,
        log_queue_max=None,
        log_dropped=None,
        other_cpu_pct=0.0,
        host_probe_ms=probe,
    )


def test_each_round_is_compared_with_itself_not_with_the_median_of_the_other_side() -> None:
    # given logging on 2-3 % slower than off within rounds 1 and 2, and a round 3 in which
    # something else slowed the logging-on run down
    runs = [
        run("batch", 1, 4500),
        run("off", 1, 4600),
        run("off", 2, 3600),
        run("batch", 2, 3500),
        run("batch", 3, 4000),
        run("off", 3, 5000),
    ]

    # when the cost is computed
    (cost,) = logging_overhead(build_rows(runs, {}, {}), runs)

    # then it is the median round's (3500 / 3600), not the medians' (4000 / 4600: 13 %)
    assert round(cost["overhead_pct"], 2) == round((1 - 3500 / 3600) * 100, 2)
    assert round(cost["overhead_pct_of_medians"], 2) == round((1 - 4000 / 4600) * 100, 2)
    assert cost["rounds_paired"] == 3


def test_rows_and_pairs_say_how_much_slower_the_host_was() -> None:
    # given a host at its fastest for round 1 and 40 % slower for round 2's logging-on run
    runs = [
        run("batch", 1, 4500, probe=10.0),
        run("off", 1, 4600, probe=10.5),
        run("off", 2, 4600, probe=10.0),
        run("batch", 2, 3300, probe=14.0),
    ]

    # when the rows and the cost are computed
    rows = {row.target: row for row in build_rows(runs, {}, {})}
    (cost,) = logging_overhead(list(rows.values()), runs)

    # then each row shows its slowest round against the fastest probe, and the pair its skew
    assert rows["batch"].host_slowdown == 1.4
    assert rows["off"].host_slowdown == 1.05
    assert round(cost["host_skew_pct"], 1) == 40.0


def test_runs_without_a_probe_show_none() -> None:
    runs = [run("batch", 1, 4500), run("off", 1, 4600)]

    rows = build_rows(runs, {}, {})
    (cost,) = logging_overhead(rows, runs)

    assert [row.host_slowdown for row in rows] == [None, None]
    assert cost["host_skew_pct"] is None


def test_the_probe_times_a_loop_in_milliseconds() -> None:
    fast, slow = probe_ms(20_000), probe_ms(200_000)

    assert 0 < fast < slow


def test_logging_is_costed_on_the_twins_not_on_the_stack_every_scenario_ran_on() -> None:
    # given the stack every scenario ran on ("on": orders pages and product lists grew its
    # heap), 20 % slower than the logging-off twin, and the logging-on twin 5 % slower
    runs = [run("on", 1, 4000), run("batch", 1, 4750), run("off", 1, 5000)]

    # when the cost of logging is computed
    (cost,) = logging_overhead(build_rows(runs, {}, {}), runs)

    # then it compares the twins, which served the same requests and differ in logging alone
    assert (cost["rps_on"], cost["rps_off"]) == (4750, 5000)
    assert round(cost["overhead_pct"], 2) == 5.0
