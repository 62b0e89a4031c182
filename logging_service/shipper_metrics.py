"""A LogShipper's counters and spool state as Prometheus metrics, read at scrape time.

    REGISTRY.register(ShipperCollector(shipper, prefix="gateway"))

gives `gateway_log_queue_depth`, `gateway_log_records_sent` (and `_resent`, `_dropped`),
`gateway_log_spool_bytes`, `gateway_log_spool_segments`, `gateway_log_oldest_unacked_seconds`
`gateway_log_spool_degraded` (1 while the spool cannot be written) and
`gateway_log_spool_read_back_records` (records the spool had to read back from disk).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from logging_service.client import LogShipper


class ShipperCollector(Collector):
    """Reads one LogShipper's stats when Prometheus scrapes."""

    def __init__(self, shipper: LogShipper, *, prefix: str) -> None:
        self._shipper = shipper
        self._prefix = prefix

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self._shipper.stats
        p = self._prefix
        for name, value, help_text in (
            ("log_queue_depth", stats.queued, "Log records not yet acknowledged"),
            ("log_spool_bytes", stats.spool_bytes, "Bytes of log records in the disk spool"),
            ("log_spool_segments", stats.spool_segments, "Segment files in the disk spool"),
            (
                "log_oldest_unacked_seconds",
                stats.oldest_unacked_age_s,
                "Age of the oldest log record not yet acknowledged by logging_service",
            ),
            (
                "log_spool_degraded",
                1 if stats.degraded else 0,
                "1 while the disk spool cannot be written (records are dropped or kept in memory)",
            ),
        ):
            yield GaugeMetricFamily(f"{p}_{name}", help_text, value=value)
        for name, value, help_text in (
            ("log_records_sent", stats.sent, "Log records acknowledged by Kafka"),
            ("log_records_resent", stats.resent, "Log records sent again after a failure"),
            (
                "log_records_dropped",
                stats.dropped,
                "Log records dropped: buffer or spool full, or the spool failing",
            ),
            (
                "log_spool_read_back_records",
                stats.spool_read_back,
                "Log records read back from the disk spool: an earlier run's, or after the"
                " sender fell behind by more than the spool keeps in memory",
            ),
        ):
            yield CounterMetricFamily(f"{p}_{name}", help_text, value=value)
