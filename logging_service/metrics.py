"""Prometheus metrics of logging_service, served on LOGGING_METRICS_PORT when it is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPCS = Counter("logging_service_rpcs_total", "RPCs handled, by method and code", ["method", "code"])
RECORDS = Counter("logging_service_records_total", "Records acknowledged by Kafka")
PRODUCE_SECONDS = Histogram(
    "logging_service_kafka_produce_seconds",
    "Time from the end of a StreamLogs or StreamLogBatches stream to Kafka acknowledging all of "
    "its records",
)
PRODUCE_FAILURES = Counter(
    "logging_service_kafka_produce_failures_total",
    "StreamLogs and StreamLogBatches calls failed because of Kafka",
)
KAFKA_READY = Gauge("logging_service_kafka_ready", "1 while the Kafka producer is connected")
OPEN_TAILS = Gauge("logging_service_open_tails", "TailLogs streams currently open")
