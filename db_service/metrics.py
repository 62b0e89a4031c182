"""db_service's Prometheus metrics, served on DB_METRICS_PORT when it is set (DESIGN.md §8)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from db_service.outbox import Outbox
from logging_service.client import LogShipper, ShipperCollector

RPCS = Counter(
    "db_service_rpcs_total", "DBService RPCs handled, by method and outcome", ["method", "outcome"]
)
RPC_SECONDS = Histogram("db_service_rpc_seconds", "DBService RPC latency", ["method"])
# Gauges of PoolCollector that workers combine by their largest value, not their sum
# (plumbing.workermetrics): an age, and the one outbox table every worker's relay counts.
LARGEST_OVER_WORKERS = ("db_service_log_oldest_unacked_seconds", "db_service_log_outbox_rows")


class PoolCollector(Collector):
    """The asyncpg pool's size and idle connections, the log shipper's counters and spool, and
    the log outbox, read when Prometheus scrapes."""

    def __init__(self, pool: asyncpg.Pool, shipper: LogShipper, outbox: Outbox) -> None:
        self._pool = pool
        self._shipper = ShipperCollector(shipper, prefix="db_service")
        self._outbox = outbox

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._shipper.collect()
        yield GaugeMetricFamily(
            "db_service_log_outbox_rows",
            "Outbox records (committed orders and identity changes) not yet relayed",
            value=self._outbox.rows,
        )
        yield CounterMetricFamily(
            "db_service_log_outbox_dropped",
            "Outbox records not written because the outbox was full",
            value=self._outbox.dropped,
        )
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        yield GaugeMetricFamily("db_service_pool_size", "Connections open", value=size)
        yield GaugeMetricFamily("db_service_pool_in_use", "Connections in use", value=size - idle)
        yield GaugeMetricFamily(
            "db_service_pool_max", "Most connections", value=self._pool.get_max_size()
        )


def register_pool(pool: asyncpg.Pool, shipper: LogShipper, outbox: Outbox) -> Collector:
    collector = PoolCollector(pool, shipper, outbox)
    REGISTRY.register(collector)
    return collector
