"""db_service's Prometheus metrics, served on DB_METRICS_PORT when it is set (DESIGN.md §8)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RPCS = Counter(
    "db_service_rpcs_total", "DBService RPCs handled, by method and outcome", ["method", "outcome"]
)
RPC_SECONDS = Histogram("db_service_rpc_seconds", "DBService RPC latency", ["method"])


class PoolCollector(Collector):
    """The asyncpg pool's size and idle connections, read when Prometheus scrapes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        yield GaugeMetricFamily("db_service_pool_size", "Connections open", value=size)
        yield GaugeMetricFamily("db_service_pool_in_use", "Connections in use", value=size - idle)
        yield GaugeMetricFamily(
            "db_service_pool_max", "Most connections", value=self._pool.get_max_size()
        )


def register_pool(pool: asyncpg.Pool) -> Collector:
    collector = PoolCollector(pool)
    REGISTRY.register(collector)
    return collector
