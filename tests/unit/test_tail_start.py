"""A tail that starts mid-topic reads the record just before its start, to check later that the
topic is still the one it read (logging_service.tail); where retention removed that record it
must not wait for it. A real Kafka expires records; Tansu, the broker the integration tests
run, never does, so the consumer here is a small fake of the AIOKafkaConsumer calls TopicTail
makes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from logging_service.settings import Settings
from logging_service.tail import TopicTail
from protos import logging_service_pb2 as pb

TOPIC = "log-channel"


@dataclass
class _Partition:
    """Offsets `oldest` to `end - 1` kept, each record's value its offset."""

    oldest: int
    end: int
    position: int = 0


@dataclass
class _Consumer:
    """What a group-less consumer does with `auto_offset_reset="earliest"`: a fetch below the
    oldest record kept starts there, and a fetch with nothing to read waits its timeout."""

    partitions: dict[TopicPartition, _Partition]
    fetches: list[tuple[TopicPartition, ...]] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.partitions}

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.partitions[tp].position = self.partitions[tp].end

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.partitions[tp].position = self.partitions[tp].oldest

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.partitions[tp].position = offset

    async def position(self, tp: TopicPartition) -> int:
        return self.partitions[tp].position

    def highwater(self, tp: TopicPartition) -> int:
        return self.partitions[tp].end

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: self.partitions[tp].oldest for tp in partitions}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        self.fetches.append(partitions)
        out: dict[TopicPartition, list[Any]] = {}
        for tp in partitions or tuple(self.partitions):
            state = self.partitions[tp]
            state.position = max(state.position, state.oldest)
            if state.position < state.end:
                offset = state.position
                out[tp] = [SimpleNamespace(offset=offset, timestamp=offset, value=b"{}")]
                state.position += 1
        if not out:
            await asyncio.sleep(timeout_ms / 1000)
        return out


async def _tail(partitions: dict[TopicPartition, _Partition]) -> tuple[TopicTail, _Consumer]:
    settings = Settings(merch_env="development", kafka_topic=TOPIC, kafka_request_timeout_s=2.0)
    tail = TopicTail(settings)
    await tail._consumer.stop()  # never started: closed, so that it is not reported unclosed
    consumer = _Consumer(partitions)
    tail._consumer = cast(AIOKafkaConsumer, consumer)
    return tail, consumer


async def test_a_tail_from_now_does_not_wait_for_records_retention_removed() -> None:
    # given a topic of three partitions whose records all expired (100 were written to each)
    tail, consumer = await _tail(
        {TopicPartition(TOPIC, p): _Partition(oldest=100, end=100) for p in range(3)}
    )

    # when a tail opens from now (no start in the request)
    started = time.monotonic()
    try:
        await tail.open(pb.TailLogsRequest())
    finally:
        await tail.close()

    # then it is positioned at once (not half the request timeout per partition), at the end
    assert time.monotonic() - started < 0.5
    assert all(p.position == 100 for p in consumer.partitions.values())


async def test_a_tail_from_now_still_reads_the_record_before_its_start_where_it_is_kept() -> None:
    # given a partition whose records expired and one that keeps them
    gone, kept = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    tail, consumer = await _tail({gone: _Partition(oldest=100, end=100), kept: _Partition(0, 50)})

    # when a tail opens from now
    try:
        await tail.open(pb.TailLogsRequest())
    finally:
        await tail.close()

    # then it remembers the record before the start where there is one, and starts at the end
    assert tail._last_read.keys() == {kept}
    assert tail._last_read[kept].offset == 49
    assert (consumer.partitions[gone].position, consumer.partitions[kept].position) == (100, 50)
