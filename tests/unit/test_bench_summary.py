"""The bench's logging cost is paired by round: a drift between rounds must not show as cost."""

from __future__ import annotations

from bench.runner import RunResult
from bench.summary import build_rows, logging_overhead

ROLES = ("gateway", "db_service", "logging_service", "postgres", "broker", "wrk")


def run(target: str, round_no: int, rps: float) -> RunResult:
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
    )


def test_each_round_is_compared_with_itself_not_with_the_median_of_the_other_side() -> None:
    # given logging on 2-3 % slower than off within rounds 1 and 2, and a round 3 in which
    # something else slowed the logging-on run down
    runs = [
        run("on", 1, 4500),
        run("off", 1, 4600),
        run("off", 2, 3600),
        run("on", 2, 3500),
        run("on", 3, 4000),
        run("off", 3, 5000),
    ]

    # when the cost is computed
    (cost,) = logging_overhead(build_rows(runs, {}, {}), runs)

    # then it is the median round's (3500 / 3600), not the medians' (4000 / 4600: 13 %)
    assert round(cost["overhead_pct"], 2) == round((1 - 3500 / 3600) * 100, 2)
    assert round(cost["overhead_pct_of_medians"], 2) == round((1 - 4000 / 4600) * 100, 2)
    assert cost["rounds_paired"] == 3
