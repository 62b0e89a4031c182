"""TopicTail: a group-less consumer positioned on the log topic, read one poll at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from logging_service.kafka import KafkaUnavailable
from logging_service.records import from_json
from logging_service.settings import Settings
from protos import logging_service_pb2 as pb

log = logging.getLogger("logging_service.tail")

_MAX_RECORDS_PER_POLL = 500
# Records that come after this long without any are checked against the last one read (see
# `_recheck_after_a_pause`). A tail that keeps up under load polls far more often than this, so
# it never pays for the check; a broker restart takes longer.
_PAUSE_S = 0.2

_Batches = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


@dataclass(frozen=True, slots=True)
class _LastRead:
    """The last record read from a partition: what tells it from another record at its offset."""

    offset: int
    timestamp: int
    value: bytes | None

    @classmethod
    def of(cls, record: ConsumerRecord[Any, Any]) -> _LastRead:
        return cls(record.offset, record.timestamp, record.value)


class TopicTail:
    """Reads the topic from an offset, the beginning, or now; `close()` always stops the consumer.

    With several partitions, `offset` applies to each of them and records are interleaved;
    the service creates the topic with one partition, where the order is the topic's order.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="logging_service-tail",
            group_id=None,
            enable_auto_commit=False,
            # An offset older than retention (or past the end) restarts at the oldest record
            # kept: a tail should show too much rather than silently skip records.
            auto_offset_reset="earliest",
            request_timeout_ms=settings.kafka_request_timeout_ms,
            # Short long-polls keep `poll()` responsive to shutdown and position probes cheap.
            fetch_max_wait_ms=100,
        )
        self._partitions: list[TopicPartition] = []
        self._last_read: dict[TopicPartition, _LastRead] = {}
        # Partitions moved back onto their last record read, whose next record must be it.
        self._unverified: set[TopicPartition] = set()
        self._records_at = time.monotonic()

    async def open(self, request: pb.TailLogsRequest) -> None:
        """Connect, assign every partition of the topic, and seek to the requested start."""
        s = self._settings
        try:
            async with asyncio.timeout(s.kafka_request_timeout_s * 2):
                await self._consumer.start()
                partitions = self._consumer.partitions_for_topic(s.kafka_topic)
                if not partitions:
                    raise KafkaUnavailable(f"topic {s.kafka_topic!r} does not exist yet")
                self._partitions = [TopicPartition(s.kafka_topic, p) for p in sorted(partitions)]
                self._consumer.assign(self._partitions)
                start = request.WhichOneof("start")
                if start == "from_beginning" and request.from_beginning:
                    await self._consumer.seek_to_beginning(*self._partitions)
                else:
                    if start == "offset":
                        await self._seek_to_offset(request.offset)
                    else:
                        await self._seek_to_now()
                    await self._read_the_record_before()
        except KafkaUnavailable:
            raise
        except Exception as exc:
            raise KafkaUnavailable(f"cannot read the topic: {type(exc).__name__}") from exc

    async def _read_the_record_before(self) -> None:
        """Remember the record just before each partition's start, as if the tail had read it.

        A tail that starts mid-topic (from now, or at an offset) has read nothing yet, and
        `_recheck_after_a_pause` compares records against the last one read: without it the
        first records of a topic created again under the tail, grown past its start before
        its first poll, would be skipped. One bounded wait for all partitions, once.

        A record retention removed is not waited for: the fetch would start again at the oldest
        record kept, and on a topic whose records all expired nothing comes, so each partition
        held the tail's start (the `logs` subscription's first message) for half the request
        timeout, and four of them failed the open. The oldest offsets tell at once."""
        consumer = self._consumer
        starts = {tp: await consumer.position(tp) for tp in self._partitions}
        oldest = await consumer.beginning_offsets(list(starts))
        pending = {tp: start for tp, start in starts.items() if start > oldest.get(tp, 0)}
        for tp, start in pending.items():
            consumer.seek(tp, start - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.kafka_request_timeout_s / 2
        while pending and (left := deadline - loop.time()) > 0:
            fetched = await consumer.getmany(
                *pending, timeout_ms=max(int(left * 1000), 1), max_records=len(pending)
            )
            for tp, messages in fetched.items():
                start = pending.pop(tp, None)
                if start is None:
                    continue
                if messages and messages[0].offset == start - 1:
                    self._last_read[tp] = _LastRead.of(messages[0])
                # Back to the start: a fetch may have read past it, and a reset gone before it.
                consumer.seek(tp, start)
        # Not fetched in time: start where asked, unverified.
        for tp, start in pending.items():
            consumer.seek(tp, start)

    async def poll(self, timeout_s: float) -> list[pb.LogRecord]:
        """The next records, or [] when none arrived within `timeout_s`.

        Records that follow a pause are checked to continue what was read; see
        `_recheck_after_a_pause`."""
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=_MAX_RECORDS_PER_POLL
            )
            if not batches:
                await self._rewind_if_past_the_end()
                return []
            if time.monotonic() - self._records_at > _PAUSE_S:
                batches = await self._recheck_after_a_pause(batches, timeout_s)
            records: list[pb.LogRecord] = []
            for tp, messages in batches.items():
                if messages and tp in self._unverified:
                    self._unverified.discard(tp)
                    if not await self._still_the_topic_read(tp, messages[0]):
                        continue
                    if messages[0].offset == self._last_read[tp].offset:
                        messages = messages[1:]
                if messages:
                    self._last_read[tp] = _LastRead.of(messages[-1])
                records += _decoded(messages)
        except KafkaError as exc:
            raise KafkaUnavailable(f"reading the topic failed: {type(exc).__name__}") from exc
        self._records_at = time.monotonic()
        return records

    async def _recheck_after_a_pause(self, batches: _Batches, timeout_s: float) -> _Batches:
        """Read again, from the last record read, the partitions whose records follow it.

        After a pause the topic may not be the one read so far: a development broker restarted
        empty (or a topic deleted and created again) that has grown past our position by now
        answers with its records from there, and its first ones would be skipped unseen. No
        offset or watermark tells; the record at the offset of the last one read does, so the
        fetch starts there once, and `_still_the_topic_read` compares it. Under load polls
        follow each other closely and nothing is read twice."""
        again = [
            tp
            for tp, messages in batches.items()
            if messages
            and tp in self._last_read
            and tp not in self._unverified
            and messages[0].offset == self._last_read[tp].offset + 1
        ]
        if not again:
            return batches
        for tp in again:
            self._consumer.seek(tp, self._last_read[tp].offset)
            self._unverified.add(tp)
        kept = {tp: messages for tp, messages in batches.items() if tp not in again}
        # Nothing within the timeout leaves them unverified: the next poll reads from there.
        reread: _Batches = await self._consumer.getmany(
            *again, timeout_ms=int(timeout_s * 1000), max_records=_MAX_RECORDS_PER_POLL
        )
        return kept | reread

    async def _still_the_topic_read(
        self, tp: TopicPartition, first: ConsumerRecord[Any, Any]
    ) -> bool:
        """Whether `first`, read from the last record read on, continues what was read; if
        not, start the partition again at its oldest record."""
        last = self._last_read[tp]
        # Another offset: the consumer already started again at the oldest record kept
        # (OFFSET_OUT_OF_RANGE: the topic is shorter now, or the last record expired).
        if first.offset != last.offset or (first.timestamp, first.value) == (
            last.timestamp,
            last.value,
        ):
            return True
        log.info("%s holds another record at offset %d now: from the oldest", tp, last.offset)
        await self._consumer.seek_to_beginning(tp)
        return False

    async def _rewind_if_past_the_end(self) -> None:
        """Start a partition again at its oldest record when its end fell behind our position.

        A real Kafka answers such a fetch with OFFSET_OUT_OF_RANGE (auto_offset_reset applies);
        Tansu, restarted empty under an open tail, answers it with nothing, for ever, so the
        tail would go silent until the new topic grows past the old position (and
        `_recheck_after_a_pause` then notices). The end a fetch reports (its high watermark)
        tells. Bounded: a position still being reset waits for the broker, and the poll loop
        must go on."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.kafka_request_timeout_s):
                for tp in self._partitions:
                    end = self._consumer.highwater(tp)
                    if end is not None and await self._consumer.position(tp) > end:
                        log.info("the end of %s went back to %d: from the oldest", tp, end)
                        await self._consumer.seek_to_beginning(tp)

    async def close(self) -> None:
        """Stop the consumer; bounded, and safe to call after a failed `open()`."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._settings.kafka_request_timeout_s):
                await self._consumer.stop()

    async def _seek_to_now(self) -> None:
        """Position after the last record currently in the topic. Records produced while
        positioning may or may not be included; the stream's initial metadata marks the end
        of positioning."""
        for tp, end in (await self._ends()).items():
            self._consumer.seek(tp, end)

    async def _seek_to_offset(self, offset: int) -> None:
        """Position at `offset`, or at the oldest record kept when it lies past the end.

        Kafka answers a fetch past the end with OFFSET_OUT_OF_RANGE, and the consumer starts
        again where auto_offset_reset says. Tansu (the development broker) waits for that
        offset instead, silently: after it restarts empty, a tail resuming where it left off
        (`make logs`) would print nothing more."""
        for tp, end in (await self._ends()).items():
            if offset > end:
                log.info("offset %d is past the end of %s (%d): from the oldest", offset, tp, end)
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)

    async def _ends(self) -> dict[TopicPartition, int]:
        """Each partition's log end: the offset the next record will have.

        Kafka answers ListOffsets(latest) with it. Tansu answers with the start of its last
        record batch plus one; the high watermark of a fetch response is right on both, so a
        short probe fetch corrects it."""
        consumer = self._consumer
        await consumer.seek_to_end(*self._partitions)
        ends = {tp: await consumer.position(tp) for tp in self._partitions}
        deadline = time.monotonic() + self._settings.kafka_request_timeout_s
        while time.monotonic() < deadline and any(
            consumer.highwater(tp) is None for tp in self._partitions
        ):
            await consumer.getmany(*self._partitions, timeout_ms=50, max_records=1)
        return {tp: max(end, consumer.highwater(tp) or 0) for tp, end in ends.items()}


def _decoded(messages: list[ConsumerRecord[Any, Any]]) -> list[pb.LogRecord]:
    records: list[pb.LogRecord] = []
    for message in messages:
        try:
            records.append(from_json(message.value, offset=message.offset))
        except ValueError:
            log.debug("skipping non-JSON value at offset %d", message.offset)
    return records
