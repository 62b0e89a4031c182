"""A host's HTTP proxy settings are for its web traffic: the services dial each other directly.

gRPC honours `http_proxy`, `https_proxy` and `grpc_proxy` from the environment, which corporate
hosts and CI runners often set for everything; through such a proxy, the gateway found db_service
and logging_service UNREACHABLE (`make run` never got ready) and no log record was shipped.
"""

from __future__ import annotations

import re

import httpx

from scripts.processes import free_port
from tests.conftest import Stack, wait_until
from tests.graphqlws import RECORDED_REQUEST
from tests.ownstack import own_services

PROXY_VARIABLES = ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2, trust_env=False)
    except httpx.HTTPError:
        return None


def _ready(url: str) -> bool:
    response = _get(f"{url}/readyz")
    return response is not None and response.json().get("status") == "ready"


def _records_sent(metrics_url: str, prefix: str) -> float:
    response = _get(metrics_url)
    found = response and re.search(rf"^{prefix}_log_records_sent_total (\S+)$", response.text, re.M)
    return float(found[1]) if found else 0.0


def test_services_dial_each_other_directly_whatever_proxy_the_environment_names(
    stack: Stack,
) -> None:
    # given an environment naming an HTTP proxy for all traffic, one that takes no connection
    proxy = f"http://127.0.0.1:{free_port()}"
    metrics_port = free_port()
    env = dict.fromkeys(PROXY_VARIABLES, proxy)

    with own_services(
        stack, ("db_service", "gateway"), DB_METRICS_PORT=str(metrics_port), **env
    ) as own:
        # when the gateway is asked whether it is ready, and answers a request both record
        wait_until(
            lambda: _ready(own.gateway_url),
            timeout=15,
            message="the gateway never found db_service and logging_service SERVING",
        )
        answer = _get(f"{own.gateway_url}{RECORDED_REQUEST}")

        # then it reached db_service, and both shipped their records to logging_service
        assert answer is not None
        assert answer.status_code == 200
        gateway_metrics = f"{own.gateway_url}/metrics"
        db_service_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(
            lambda: _records_sent(gateway_metrics, "gateway") > 0,
            timeout=15,
            message="the gateway shipped no log record",
        )
        wait_until(
            lambda: _records_sent(db_service_metrics, "db_service") > 0,
            timeout=15,
            message="db_service shipped no log record",
        )
