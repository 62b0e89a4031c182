"""What LogShipper.record and record_each put on the wire, received by a fake logging service:
one record per request id of a call, each the record `record()` makes for that id alone."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from logging_service.buffers import Frame
from logging_service.client import MAX_BATCH, LogShipper
from logging_service.servicer import LoggingServiceServicer
from logging_service.settings import Settings as LoggingSettings
from logging_service.spool import DiskSpool
from protos import logging_service_pb2 as pb
from protos import logging_service_pb2_grpc
from tests.conftest import FAKE_SERVER_OPTIONS
from tests.unit.test_log_spool import until

Context = grpc.aio.ServicerContext[Any, Any]
FIELDS = dict(kind="rpc", operation="DBService/GetProductsByIds", user="anonymous", outcome="ok")


class Collector(logging_service_pb2_grpc.LoggingServiceServicer):
    def __init__(self) -> None:
        self.records: list[pb.LogRecord] = []
        self.arrived = asyncio.Event()

    async def StreamLogBatches(
        self, request_iterator: AsyncIterator[pb.LogBatch], context: Context
    ) -> pb.StreamLogsSummary:
        count = 0
        async for batch in request_iterator:
            self.records.extend(batch.records)
            count += len(batch.records)
        self.arrived.set()
        return pb.StreamLogsSummary(received=count, acknowledged=count)

    async def StreamLogs(
        self, request_iterator: AsyncIterator[pb.LogRecord], context: Context
    ) -> pb.StreamLogsSummary:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "LogShipper sends StreamLogBatches")

    async def TailLogs(
        self, request: pb.TailLogsRequest, context: Context
    ) -> AsyncIterator[pb.LogRecord]:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")
        yield pb.LogRecord()  # pragma: no cover (makes this an async generator)


@pytest.fixture
async def service() -> AsyncIterator[tuple[Collector, str]]:
    """A fake logging service that keeps what it is sent, and its address."""
    server = grpc.aio.server(options=FAKE_SERVER_OPTIONS)
    collector = Collector()
    logging_service_pb2_grpc.add_LoggingServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield collector, f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.fixture
async def collected(
    service: tuple[Collector, str],
) -> AsyncIterator[tuple[Collector, LogShipper]]:
    collector, target = service
    shipper = LogShipper(target, service="db_service", flush_interval_s=0)
    await shipper.start()
    yield collector, shipper
    await shipper.stop(timeout_s=2)


@contextlib.asynccontextmanager
async def spooled(target: str, directory: Path) -> AsyncIterator[LogShipper]:
    """A started shipper with its spool in `directory`, stopped after the block."""
    shipper = LogShipper(target, service="gateway", flush_interval_s=0, spool_dir=directory)
    await shipper.start()
    try:
        yield shipper
    finally:
        await shipper.stop(timeout_s=2)


async def received(collector: Collector, count: int) -> list[pb.LogRecord]:
    async with asyncio.timeout(5):
        while len(collector.records) < count:
            collector.arrived.clear()
            await collector.arrived.wait()
    return collector.records


async def test_a_call_for_several_requests_is_one_record_per_request_id(
    collected: tuple[Collector, LogShipper],
) -> None:
    collector, shipper = collected
    ids = ["req-a", "req-b", "r" * 300]

    event_ids = shipper.record_each(ids, duration_ms=2.5, **FIELDS)
    shipper.record(request_id="req-alone", duration_ms=2.5, **FIELDS)

    records = await received(collector, 4)
    assert [r.request_id for r in records] == ["req-a", "req-b", "r" * 128, "req-alone"]
    assert [r.event_id for r in records[:3]] == event_ids
    assert len(set(r.event_id for r in records)) == 4
    # 32 hex digits: the shipper's random prefix, then its counter.
    assert all(re.fullmatch("[0-9a-f]{32}", r.event_id) for r in records)
    assert len({r.event_id[:16] for r in records}) == 1
    # Alike but for the two ids: the fields of the one built alone, the same time for the call.
    alone = records[3]
    for record in records[:3]:
        assert (record.kind, record.operation, record.user, record.outcome) == (
            alone.kind,
            alone.operation,
            alone.user,
            alone.outcome,
        )
        assert (record.service, record.duration_ms, record.message) == ("db_service", 2.5, "")
        assert record.ts == records[0].ts > 0


async def test_a_record_that_cannot_be_built_is_counted_dropped_and_the_rest_still_go(
    collected: tuple[Collector, LogShipper],
) -> None:
    collector, shipper = collected

    # A lone surrogate cannot be encoded: that record is dropped, the others are not.
    event_ids = shipper.record_each(["req-1", "\ud800", "req-3"], duration_ms=1.0, **FIELDS)

    assert len(event_ids) == 2
    assert shipper.stats.dropped == 1
    records = await received(collector, 3)  # req-1, req-3 and the drop report
    assert [r.request_id for r in records[:2]] == ["req-1", "req-3"]
    assert [r.event_id for r in records[:2]] == event_ids
    assert records[2].operation == "LogShipper.dropped"
    assert records[2].message == "1 log records were dropped: 1 could not be encoded"


def _readme_log_field(name: str) -> str:
    """The meaning README's "Log records" table gives the record field `name`."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
    return row


async def test_readme_names_the_user_and_outcome_of_the_shippers_own_report(
    collected: tuple[Collector, LogShipper],
) -> None:
    # given the record a shipper writes of its own, made by no request (a drop report)
    collector, shipper = collected
    shipper.record_each(["\ud800"], duration_ms=1.0, **FIELDS)
    (report,) = await received(collector, 1)

    # then README's table of record fields lists its `user` and `outcome` among their values,
    # so that a reader of log-channel filtering on them knows what they mean
    assert f"`{report.user}`" in _readme_log_field("user")
    assert f"`{report.outcome}`" in _readme_log_field("outcome")


async def test_the_sender_outlives_a_failure_to_read_its_buffer(
    service: tuple[Collector, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a shipper on a spool whose next read fails with an error nobody foresaw
    collector, target = service
    real_read, failures = DiskSpool.read, [RuntimeError("a bug in the reader")]

    async def read_failing_once(self: DiskSpool, limit: int) -> list[Frame]:
        if failures:
            raise failures.pop()
        return await real_read(self, limit)

    monkeypatch.setattr(DiskSpool, "read", read_failing_once)
    async with spooled(target, tmp_path) as shipper:
        # when records are made, before and after the failure
        shipper.record(request_id="first", duration_ms=1.0, **FIELDS)
        shipper.record(request_id="second", duration_ms=1.0, **FIELDS)
        records = await received(collector, 2)

    # then the sender went on (it was the only one: nothing would have sent them)
    assert not failures
    assert {r.request_id for r in records} == {"first", "second"}


class _KafkaBatch:
    def __init__(self, sink: list[pb.LogRecord]) -> None:
        self._sink = sink

    async def add_many(self, records: Any) -> None:
        self._sink.extend(records)

    async def acknowledged(self, within_s: float | None = None) -> None:
        return None

    def abandon(self) -> None:
        return None


class _Kafka:
    """A producer that takes every record at once."""

    ready = True

    def __init__(self) -> None:
        self.records: list[pb.LogRecord] = []

    def batch(self) -> _KafkaBatch:
        return _KafkaBatch(self.records)


async def test_the_largest_batch_with_a_drop_report_fits_one_stream() -> None:
    # given the real logging service (on a Kafka taking everything) and a shipper sending the
    # largest batches it allows
    kafka = _Kafka()
    server = grpc.aio.server(options=FAKE_SERVER_OPTIONS)
    servicer = LoggingServiceServicer(kafka, LoggingSettings())  # type: ignore[arg-type]
    logging_service_pb2_grpc.add_LoggingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    shipper = LogShipper(
        f"127.0.0.1:{port}", service="gateway", batch_max=MAX_BATCH, queue_max=2 * MAX_BATCH
    )
    try:
        # when a full batch waits with a drop to report (a record that could not be built)
        for n in range(MAX_BATCH):
            shipper.record(request_id=f"r{n}", duration_ms=1.0, **FIELDS)
        shipper.record(request_id="\ud800", duration_ms=1.0, **FIELDS)
        await shipper.start()
        deadline = time.monotonic() + 10
        while shipper.stats.sent < MAX_BATCH + 1 and not shipper.stats.resent:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)  # polls the shipper's counters until the deadline
        stats = shipper.stats
    finally:
        await shipper.stop(timeout_s=1)
        await server.stop(None)

    # then both go in one stream, once: not refused (RESOURCE_EXHAUSTED) and re-sent for ever
    assert (stats.sent, stats.resent) == (MAX_BATCH + 1, 0)
    assert len(kafka.records) == MAX_BATCH + 1


async def test_the_drop_report_says_the_spool_failed_when_it_did(
    service: tuple[Collector, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a shipper whose spool's disk refuses every write (full)
    collector, target = service

    def full(self: DiskSpool, data: bytes, frames: list[Frame]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DiskSpool, "_write", full)
    async with spooled(target, tmp_path) as shipper:
        # when records are made
        for n in range(3):
            shipper.record(request_id=f"r{n}", duration_ms=1.0, **FIELDS)
        records = await received(collector, 1)

    # then the report says why they were dropped: not "queue full"
    (report,) = records
    assert report.operation == "LogShipper.dropped"
    assert report.message.startswith("3 log records were dropped: 3 the spool could not write")
    assert "No space left on device" in report.message


async def test_records_a_process_left_after_this_one_started_are_shipped_without_a_restart(
    service: tuple[Collector, str], tmp_path: Path
) -> None:
    collector, target = service
    # given a running shipper (it locked slot 0) that looks for abandoned slots every 50 ms
    survivor = LogShipper(
        target, service="gateway", flush_interval_s=0, spool_dir=tmp_path, orphan_check_s=0.05
    )
    await survivor.start()
    try:
        # and a second process on the same spool directory (slot 1) that recorded while it
        # could not reach the logging service, then stopped for good (a replica scaled down)
        leaving = LogShipper("127.0.0.1:1", service="gateway", spool_dir=tmp_path)
        await leaving.start()
        ids = [
            leaving.record(
                kind="graphql",
                operation="Query.products",
                user="anonymous",
                outcome="ok",
                duration_ms=1.0,
                request_id=f"r{n}",
            )
            for n in range(20)
        ]
        await leaving.stop(timeout_s=0.5)
        assert list((tmp_path / "slot-1").glob("*.seg")), "the records should wait on disk"

        # when the survivor runs on; then it ships them, event ids unchanged, and empties slot 1
        records: list[pb.LogRecord] = await received(collector, 20)
        assert sorted(r.event_id for r in records) == sorted(ids)
        assert sorted(r.request_id for r in records) == sorted(f"r{n}" for n in range(20))
        slot = tmp_path / "slot-1"
        await until(lambda: not list(slot.glob("*.seg")), "slot 1 kept its segments")
        assert survivor.stats.dropped == 0
    finally:
        await survivor.stop(timeout_s=2)
