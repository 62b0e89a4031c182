"""The bench's wrk scripts: the paced run's script, whose requests pause between each other, is
written beside the closed-loop one, never over it. A run repeated by hand from
`<scenario>-<target>.lua` after a full bench used to find the paced run's pauses in it and
measured a third of the rate."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.lua import wrk_script
from bench.probes import HttpRequest
from bench.runner import Runner
from scripts.processes import answers_ready

REQUESTS = [HttpRequest("GET", "/api/v1/products/1")]


def test_the_paced_script_has_a_file_of_its_own(tmp_path: Path) -> None:
    runner = Runner("wrk", tmp_path, connections=32, threads=2)

    closed = runner.script_path("gql_product_var", "on", paced=False)
    paced = runner.script_path("gql_product_var", "on", paced=True)

    # the closed-loop script is where bench/README.md sends users; the paced one is elsewhere
    assert closed == tmp_path / "gql_product_var-on.lua"
    assert paced.parent == tmp_path
    assert paced != closed


def test_only_the_paced_script_pauses() -> None:
    closed = wrk_script(REQUESTS, title="t", nonce="n", graphql=False)
    paced = wrk_script(REQUESTS, title="t", nonce="n", graphql=False, delay_ms=11.6)

    assert "function delay()" not in closed
    assert "function delay()" in paced


@pytest.mark.parametrize(
    ("status", "body", "ready"),
    [
        (200, {"status": "ready", "dependencies": {"db_service": "SERVING",
                                                   "logging_service": "SERVING"}}, True),
        # a gateway whose logging service is not up yet: 200, but records would only spool
        (200, {"status": "degraded", "dependencies": {"db_service": "SERVING",
                                                      "logging_service": "UNREACHABLE"}}, False),
        (503, {"status": "not ready", "dependencies": {"db_service": "UNREACHABLE",
                                                      "logging_service": "SERVING"}}, False),
        (200, {"status": "ok"}, True),  # the baseline names no dependency
    ],
)  # fmt: skip
def test_the_bench_measures_only_once_every_dependency_serves(
    status: int, body: dict[str, object], ready: bool
) -> None:
    response = httpx.Response(status, json=body)
    assert answers_ready(response) is ready
