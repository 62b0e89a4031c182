"""The gateway's Prometheus metrics, served at /metrics.

Requests are counted where they are recorded for the log (Runtime.record), so every resolver
call and REST route is measured once; gRPC calls are counted in gateway.backends; the log
shipper's counters are read at scrape time.
"""

from __future__ import annotations

import functools

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from logging_service.client import LogShipper, ShipperCollector

# The shipper's gauge that workers combine by its largest value, not their sum: an age
# (plumbing.workermetrics).
LARGEST_OVER_WORKERS = ("gateway_log_oldest_unacked_seconds",)
REQUESTS = Counter(
    "gateway_requests_total",
    "GraphQL resolver calls and REST requests, by kind, operation and outcome",
    ["kind", "operation", "outcome"],
)
LATENCY = Histogram(
    "gateway_request_seconds",
    "Latency of GraphQL resolver calls and REST requests",
    ["kind", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

GRAPHQL_PATHS = Counter(
    "gateway_graphql_operations_total",
    "GraphQL HTTP operations by the executor that ran them: compiled (a plan of"
    " gateway.graphql.compiled) or reference (graphql-core's executor)",
    ["path"],
)
COMPILED_PATH = GRAPHQL_PATHS.labels("compiled")
REFERENCE_PATH = GRAPHQL_PATHS.labels("reference")


@functools.lru_cache(maxsize=4096)
def request_children(kind: str, operation: str, outcome: str) -> tuple[Counter, Histogram]:
    """The labelled REQUESTS and LATENCY children of one (kind, operation, outcome): looked up
    once, not on every record (operations and outcomes are a small fixed set)."""
    return REQUESTS.labels(kind, operation, outcome), LATENCY.labels(kind, operation)


# With several workers (PROMETHEUS_MULTIPROC_DIR), a gauge says how its workers' values combine.
IN_FLIGHT = Gauge(
    "gateway_http_requests_in_flight",
    "HTTP requests received and not yet answered (WebSockets excluded)",
    multiprocess_mode="livesum",
)
WORKER_REQUESTS = Gauge(
    "gateway_worker_http_requests",
    "HTTP requests and WebSockets this process received since it started; with several"
    " workers one series per worker (pid label), to see how evenly the kernel spreads them",
    multiprocess_mode="liveall",
)

WEBSOCKETS_OPEN = Gauge(
    "gateway_websockets_open",
    "WebSockets open on /graphql (summed over live workers)",
    multiprocess_mode="livesum",
)
WEBSOCKETS_REFUSED = Counter(
    "gateway_websockets_refused_total",
    "WebSocket upgrades refused: limit=process (WEBSOCKETS_MAX open, 503), limit=client"
    " (WEBSOCKETS_PER_CLIENT_MAX open from its address, 429)",
    ["limit"],
)


def register_shipper(shipper: LogShipper) -> Collector:
    collector = ShipperCollector(shipper, prefix="gateway")
    REGISTRY.register(collector)
    return collector


def unregister(collector: Collector) -> None:
    REGISTRY.unregister(collector)
