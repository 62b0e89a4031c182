"""Reading the log-channel topic in tests: every record, grouped by request id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from logging_service.records import JSON_FIELDS

TOPIC = "log-channel"
# The documented record fields; `message` is added only when non-empty.
RECORD_FIELDS = set(JSON_FIELDS)


async def read_all(
    bootstrap: str, topic: str = TOPIC, *, within: float = 10.0
) -> list[dict[str, Any]]:
    """Every record of the topic up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=5000)
    await asyncio.wait_for(consumer.start(), within)
    try:
        partitions = consumer.partitions_for_topic(topic) or {0}
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end in {within} s")
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for messages in batch.values():
                records.extend(orjson.loads(m.value) for m in messages)
        return records
    finally:
        await asyncio.wait_for(consumer.stop(), within)


async def wait_for_records(
    bootstrap: str,
    request_ids: Iterable[str],
    done: Callable[[dict[str, list[dict[str, Any]]]], bool],
    *,
    within: float = 30.0,
) -> dict[str, list[dict[str, Any]]]:
    """Records grouped by request id (only the given ids), once `done(groups)` holds."""
    wanted = set(request_ids)
    deadline = time.monotonic() + within
    while True:
        groups: dict[str, list[dict[str, Any]]] = {rid: [] for rid in wanted}
        for record in await read_all(bootstrap):
            if record.get("request_id") in wanted:
                groups[record["request_id"]].append(record)
        if done(groups):
            return groups
        if time.monotonic() > deadline:
            missing = {rid: [r["operation"] for r in recs] for rid, recs in groups.items()}
            raise AssertionError(f"log records incomplete after {within} s: {missing}")
        await asyncio.sleep(0.2)


def operations(records: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(service, operation) of each record."""
    return {(r["service"], r["operation"]) for r in records}
