"""Reading the services' Prometheus endpoints: gRPC calls, log shipper queue, Kafka records."""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")

GRPC_CALLS = "gateway_grpc_calls_total"
LOG_QUEUE_DEPTH = "gateway_log_queue_depth"
LOG_SENT = "gateway_log_records_sent"
LOG_DROPPED = "gateway_log_records_dropped"
LOG_RESENT = "gateway_log_records_resent"
LOG_READ_BACK = "gateway_log_spool_read_back_records"
KAFKA_RECORDS = "logging_service_records_total"


def parse(text: str) -> dict[str, float]:
    """Every metric name in a Prometheus exposition with its samples summed over their labels."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            number = float(match.group(3))
        except ValueError:
            continue
        totals[match.group(1)] = totals.get(match.group(1), 0.0) + number
    return totals


def value(samples: dict[str, float], name: str) -> float | None:
    """The sum of `name`, found as `name` or `name_total`, whichever the exposition used."""
    for candidate in (name, name + "_total", name.removesuffix("_total")):
        if candidate in samples:
            return samples[candidate]
    return None


def total(scrapes: Iterable[dict[str, float]], name: str) -> float | None:
    """The sum of `name` over several processes' scrapes; None when none of them has it."""
    values = [v for v in (value(samples, name) for samples in scrapes) if v is not None]
    return sum(values) if values else None


def scrape(client: httpx.Client, url: str | None) -> dict[str, float]:
    """The summed samples at `url`; empty when there is no endpoint or it does not answer."""
    if not url:
        return {}
    try:
        response = client.get(url)
    except httpx.HTTPError:
        return {}
    return parse(response.text) if response.status_code == 200 else {}


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    """How much `name` grew between two scrapes; None when the metric does not exist."""
    now = value(after, name)
    if now is None:
        return None
    return now - (value(before, name) or 0.0)
