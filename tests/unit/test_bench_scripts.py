"""The bench's wrk scripts: the paced run's script, whose requests pause between each other, is
written beside the closed-loop one, never over it. A run repeated by hand from
`<scenario>-<target>.lua` after a full bench used to find the paced run's pauses in it and
measured a third of the rate."""

from __future__ import annotations

from bench.lua import wrk_script
from bench.probes import HttpRequest
from bench.runner import script_name

REQUESTS = [HttpRequest("GET", "/api/v1/products/1")]


def test_the_paced_script_has_a_file_of_its_own() -> None:
    closed = script_name("gql_product_var", "on", paced=False)
    paced = script_name("gql_product_var", "on", paced=True)

    assert closed == "gql_product_var-on.lua"
    assert paced != closed


def test_only_the_paced_script_pauses() -> None:
    closed = wrk_script(REQUESTS, title="t", nonce="n", graphql=False)
    paced = wrk_script(REQUESTS, title="t", nonce="n", graphql=False, delay_ms=11.6)

    assert "function delay()" not in closed
    assert "function delay()" in paced
