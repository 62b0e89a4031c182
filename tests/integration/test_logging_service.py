"""The logging service against a real broker: StreamLogs and StreamLogBatches ack only what
Kafka acknowledged, health follows Kafka, TailLogs reads the topic back."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client import REGISTRY

from logging_service import servicer as servicer_module
from logging_service.console import tail
from logging_service.kafka import LogProducer
from logging_service.records import JSON_FIELDS
from logging_service.server import LoggingServiceApp
from logging_service.servicer import TAIL_RETRY_AFTER_S
from logging_service.tail import TopicTail
from protos import logging_service_pb2 as pb
from protos import logging_service_pb2_grpc
from protos.errors import read_error_metadata
from scripts.infra import TansuBroker, free_port
from tests.integration.conftest import (
    event_ids,
    health_status,
    log_settings,
    make_record,
    read_topic,
    wait_for,
    wait_serving,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
App = tuple[LoggingServiceApp, str]


async def stream(target: str, records: list[pb.LogRecord]) -> pb.StreamLogsSummary:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
        return await stub.StreamLogs(iter(records), timeout=10)


async def stream_batches(target: str, batches: list[list[pb.LogRecord]]) -> pb.StreamLogsSummary:
    """One StreamLogBatches call, one LogBatch message per list."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
        messages = [pb.LogBatch(records=records) for records in batches]
        return await stub.StreamLogBatches(iter(messages), timeout=10)


async def ship(target: str, records: list[pb.LogRecord]) -> list[pb.LogRecord]:
    """Send `records` in one StreamLogBatches call until it is acknowledged, as LogShipper
    does (it re-sends what was not); the records, once acknowledged."""

    async def acknowledged() -> bool:
        try:
            return (await stream_batches(target, [records])).acknowledged == len(records)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return False

    await wait_for(acknowledged, within=20, message="the records were never acknowledged")
    return records


def rpcs(method: str, code: str) -> float:
    """logging_service_rpcs_total{method, code}, as the in-process service counted it."""
    labels = {"method": method, "code": code}
    return REGISTRY.get_sample_value("logging_service_rpcs_total", labels) or 0.0


def records_acknowledged() -> float:
    return REGISTRY.get_sample_value("logging_service_records_total") or 0.0


async def test_stream_logs_is_acknowledged_once_every_record_is_in_the_topic(
    logging_app: App, broker: TansuBroker
) -> None:
    app, target = logging_app
    records = [make_record(n, message="checkout done" if n % 2 else "") for n in range(25)]

    summary = await stream(target, records)

    assert (summary.received, summary.acknowledged) == (25, 25)
    messages = await read_topic(broker.bootstrap_servers, app.settings.kafka_topic, count=25)
    assert event_ids(messages) == [r.event_id for r in records]
    for message, record in zip(messages, records, strict=True):
        value = orjson.loads(message.value)
        assert message.key == record.request_id.encode()
        expected_keys = set(JSON_FIELDS) | ({"message"} if record.message else set())
        assert set(value) == expected_keys
        assert value["operation"] == record.operation
        assert value["duration_ms"] == pytest.approx(record.duration_ms)


async def test_stream_logs_truncates_long_fields_and_redacts_tokens(
    logging_app: App, broker: TansuBroker
) -> None:
    app, target = logging_app
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl"
    long_record = make_record(operation="x" * 500, message="m" * 5000)
    secret_record = make_record(message=f"login with {jwt} and password=hunter2")

    await stream(target, [long_record, secret_record])

    messages = await read_topic(broker.bootstrap_servers, app.settings.kafka_topic, count=2)
    long_value, secret_value = (orjson.loads(m.value) for m in messages)
    assert len(long_value["operation"]) == 200
    assert long_value["message"] == "m" * 2000
    assert secret_value["message"] == "login with [REDACTED] and password=[REDACTED]"


async def test_stream_logs_refuses_streams_over_the_limit(
    logging_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = logging_app
    monkeypatch.setattr(servicer_module, "MAX_RECORDS_PER_STREAM", 5)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream(target, [make_record(n) for n in range(6)])

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_stream_log_batches_produces_every_record_of_every_message(
    logging_app: App, broker: TansuBroker
) -> None:
    app, target = logging_app
    records = [make_record(n, message="checkout done" if n % 3 else "") for n in range(15)]
    ok_before, records_before = rpcs("StreamLogBatches", "OK"), records_acknowledged()

    summary = await stream_batches(target, [records[:4], [], records[4:14], records[14:]])

    assert (summary.received, summary.acknowledged) == (15, 15)
    messages = await read_topic(broker.bootstrap_servers, app.settings.kafka_topic, count=15)
    assert event_ids(messages) == [r.event_id for r in records]
    for message, record in zip(messages, records, strict=True):
        value = orjson.loads(message.value)
        assert message.key == record.request_id.encode()
        assert set(value) == set(JSON_FIELDS) | ({"message"} if record.message else set())
    assert rpcs("StreamLogBatches", "OK") == ok_before + 1
    assert records_acknowledged() == records_before + 15


async def test_stream_log_batches_sanitizes_like_stream_logs(
    logging_app: App, broker: TansuBroker
) -> None:
    app, target = logging_app
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl"
    long_record = make_record(operation="x" * 500, message="m" * 5000, request_id="")
    secret_record = make_record(message=f"login with {jwt} and password=hunter2", event_id="")

    await stream_batches(target, [[long_record, secret_record]])

    messages = await read_topic(broker.bootstrap_servers, app.settings.kafka_topic, count=2)
    long_value, secret_value = (orjson.loads(m.value) for m in messages)
    assert len(long_value["operation"]) == 200
    assert long_value["message"] == "m" * 2000
    assert messages[0].key is None
    assert secret_value["message"] == "login with [REDACTED] and password=[REDACTED]"
    assert len(secret_value["event_id"]) == 32


async def test_stream_log_batches_limit_counts_records_not_messages(
    logging_app: App, broker: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, target = logging_app
    monkeypatch.setattr(servicer_module, "MAX_RECORDS_PER_STREAM", 5)
    exhausted_before = rpcs("StreamLogBatches", "RESOURCE_EXHAUSTED")
    at_limit = [make_record(n) for n in range(5)]
    within, beyond = [make_record(n) for n in range(3)], [make_record(n) for n in range(3)]
    marker = make_record(99)

    summary = await stream_batches(target, [at_limit[:3], at_limit[3:]])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream_batches(target, [within, beyond])
    # Produced after the refused call on the same partition: nothing refused can come after it.
    await stream(target, [marker])

    assert (summary.received, summary.acknowledged) == (5, 5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert rpcs("StreamLogBatches", "RESOURCE_EXHAUSTED") == exhausted_before + 1
    messages = await read_topic(broker.bootstrap_servers, app.settings.kafka_topic, count=9)
    # As with StreamLogs, what came before the limit was produced; the message crossing it not.
    assert event_ids(messages) == [r.event_id for r in [*at_limit, *within, marker]]


async def test_stream_log_batches_without_records_is_acknowledged_at_once(
    logging_app: App,
) -> None:
    _, target = logging_app

    no_messages = await stream_batches(target, [])
    empty_messages = await stream_batches(target, [[], []])

    assert (no_messages.received, no_messages.acknowledged) == (0, 0)
    assert (empty_messages.received, empty_messages.acknowledged) == (0, 0)


async def test_stream_log_batches_is_unavailable_without_kafka() -> None:
    app = LoggingServiceApp(log_settings(f"127.0.0.1:{free_port()}"))
    target = f"127.0.0.1:{await app.start()}"
    unavailable_before = rpcs("StreamLogBatches", "UNAVAILABLE")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream_batches(target, [[make_record()]])
    finally:
        await app.stop(1.0)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert rpcs("StreamLogBatches", "UNAVAILABLE") == unavailable_before + 1


async def test_a_second_logging_service_on_a_taken_port_refuses_to_start() -> None:
    # given a logging service listening on a port
    first = LoggingServiceApp(log_settings(f"127.0.0.1:{free_port()}"))
    port = await first.start()
    second = LoggingServiceApp(log_settings(f"127.0.0.1:{free_port()}", listen=f"127.0.0.1:{port}"))
    try:
        # when another one is started on the same port; then it fails to start, instead of
        # silently taking a share of the first one's connections (gRPC's SO_REUSEPORT default)
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{port} "):
            await second.start()
    finally:
        await second.stop(0)
        await first.stop(0)


async def test_health_is_serving_for_both_names_once_kafka_is_up(logging_app: App) -> None:
    _, target = logging_app

    assert await health_status(target) == SERVING
    assert await health_status(target, "merch.v1.LoggingService") == SERVING


async def test_unreachable_kafka_means_not_serving_until_the_broker_comes() -> None:
    kafka_port = free_port()
    app = LoggingServiceApp(log_settings(f"127.0.0.1:{kafka_port}"))
    target = f"127.0.0.1:{await app.start()}"
    late_broker = TansuBroker(kafka_port, die_with_parent=True)
    try:
        assert await health_status(target) == NOT_SERVING
        assert await health_status(target, "merch.v1.LoggingService") == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream(target, [make_record()])
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        await asyncio.to_thread(late_broker.start)

        await wait_serving(target, within=15)
        summary = await stream(target, [make_record()])
        assert summary.acknowledged == 1
    finally:
        await app.stop(1.0)
        await asyncio.to_thread(late_broker.stop)


async def test_service_recovers_by_itself_when_kafka_comes_back(own_broker: TansuBroker) -> None:
    app = LoggingServiceApp(log_settings(own_broker.bootstrap_servers))
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)

        await asyncio.to_thread(own_broker.stop)
        await wait_for(
            lambda: app.producer.ready is False, within=10, message="broken Kafka not noticed"
        )
        assert await health_status(target) == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream(target, [make_record()])
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        await asyncio.to_thread(own_broker.start)  # empty again: the topic is recreated
        await wait_serving(target)
        record = make_record()
        summary = await stream(target, [record])
        messages = await read_topic(own_broker.bootstrap_servers, app.settings.kafka_topic, count=1)
    finally:
        await app.stop(1.0)

    assert summary.acknowledged == 1
    assert event_ids(messages) == [record.event_id]


async def test_records_acknowledged_after_the_broker_restarted_empty_stay_in_the_topic(
    own_broker: TansuBroker,
) -> None:
    # given a logging service whose producer outlived a restart of the development broker
    # (over in a moment: the health probe saw nothing), which came back empty, without the topic
    settings = log_settings(own_broker.bootstrap_servers, kafka_health_interval_s=60.0)
    app = LoggingServiceApp(settings)
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)
        await ship(target, [make_record(n) for n in range(5)])
        await asyncio.to_thread(own_broker.stop)
        await asyncio.to_thread(own_broker.start)

        # when records are acknowledged, logging_service restarts, and more are acknowledged
        # (batches of other sizes, as the shippers' are)
        acknowledged = await ship(target, [make_record(n) for n in range(5, 15)])
    finally:
        await app.stop(1.0)
    app = LoggingServiceApp(settings)
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)
        for first in range(15, 24, 3):
            acknowledged += await ship(target, [make_record(n) for n in range(first, first + 3)])
    finally:
        await app.stop(1.0)

    # then every record acknowledged since the broker came back is in the topic, in order
    messages = await read_topic(
        own_broker.bootstrap_servers, settings.kafka_topic, count=len(acknowledged)
    )
    assert event_ids(messages) == [r.event_id for r in acknowledged]


async def test_a_call_whose_later_message_follows_a_broker_restart_acknowledges_nothing_lost(
    own_broker: TansuBroker,
) -> None:
    # given a StreamLogBatches call whose first message was produced, and the development
    # broker restarted empty before its second one (the health probe saw nothing)
    settings = log_settings(own_broker.bootstrap_servers, kafka_health_interval_s=60.0)
    app = LoggingServiceApp(settings)
    target = f"127.0.0.1:{await app.start()}"
    restarted = asyncio.Event()
    first, second = [make_record(n) for n in range(3)], [make_record(n) for n in range(3, 6)]

    async def messages() -> AsyncIterator[pb.LogBatch]:
        yield pb.LogBatch(records=first)
        await restarted.wait()
        yield pb.LogBatch(records=second)

    try:
        await wait_serving(target)
        await ship(target, [make_record(n) for n in range(100, 103)])
        async with grpc.aio.insecure_channel(target) as channel:
            stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
            call = stub.StreamLogBatches(messages(), timeout=30)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(own_broker.stop)
            await asyncio.to_thread(own_broker.start)
            restarted.set()

            # when the call ends, and the shippers re-send what was not acknowledged
            try:
                acknowledged, code = (await call).acknowledged, grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                acknowledged, code = 0, exc.code()
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE), code
        if acknowledged != len(first + second):
            await ship(target, first + second)
        later = await ship(target, [make_record(n) for n in range(6, 9)])
    finally:
        await app.stop(1.0)

    # then every record the call's answer or a re-send acknowledged is in the new topic
    expected = [r.event_id for r in first + second + later]
    found = await read_topic(own_broker.bootstrap_servers, settings.kafka_topic, count=3)
    assert event_ids(found) == expected


async def test_a_stream_of_single_records_checks_the_topic_a_bounded_number_of_times(
    logging_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the development broker (no idempotence: calls check that it still has the topic)
    _, target = logging_app
    checks = 0
    confirm = LogProducer._confirm_topic

    async def counted(self: LogProducer, producer: Any) -> None:
        nonlocal checks
        checks += 1
        await confirm(self, producer)

    monkeypatch.setattr(LogProducer, "_confirm_topic", counted)
    records = [make_record(n) for n in range(300)]

    # when a client sends 300 records over StreamLogs, one message each
    started = time.monotonic()
    summary = await stream(target, records)
    elapsed = time.monotonic() - started

    # then all are acknowledged, and the topic was not asked for once per record
    assert summary.acknowledged == len(records)
    assert checks <= elapsed / 0.05 + 2, (checks, elapsed)


async def test_a_hung_kafka_fails_calls_within_the_produce_timeout(own_broker: TansuBroker) -> None:
    settings = log_settings(
        own_broker.bootstrap_servers, kafka_request_timeout_s=1.0, kafka_produce_timeout_s=1.0
    )
    app = LoggingServiceApp(settings)
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)

        own_broker.pause()
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream(target, [make_record()])
        elapsed = time.monotonic() - started
        await wait_for(
            lambda: app.producer.ready is False, within=5, message="hung Kafka not noticed"
        )
        assert await health_status(target) == NOT_SERVING
        own_broker.resume()

        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert elapsed < 3
        await wait_serving(target)
        assert (await stream(target, [make_record()])).acknowledged == 1
    finally:
        own_broker.resume()
        await app.stop(1.0)


async def test_tail_from_beginning_yields_the_topic_in_order(logging_app: App) -> None:
    _, target = logging_app
    records = [make_record(n) for n in range(5)]
    await stream(target, records)

    async with grpc.aio.insecure_channel(target) as channel:
        call = logging_service_pb2_grpc.LoggingServiceStub(channel).TailLogs(
            pb.TailLogsRequest(from_beginning=True), timeout=10
        )
        got = [await call.read() for _ in records]
        call.cancel()

    assert [r.event_id for r in got] == [r.event_id for r in records]
    assert [r.offset for r in got] == [0, 1, 2, 3, 4]
    assert got[0].operation == records[0].operation


async def test_tail_from_now_yields_only_records_produced_after_the_call(logging_app: App) -> None:
    _, target = logging_app
    await stream(target, [make_record(n) for n in range(5)])  # one batch, before the call
    later = [make_record(n) for n in range(3)]

    async with grpc.aio.insecure_channel(target) as channel:
        call = logging_service_pb2_grpc.LoggingServiceStub(channel).TailLogs(
            pb.TailLogsRequest(), timeout=10
        )
        assert ("x-tail-positioned", "1") in tuple(await call.initial_metadata())
        await stream(target, later)
        got = [await call.read() for _ in later]
        call.cancel()

    assert [r.event_id for r in got] == [r.event_id for r in later]
    assert [r.offset for r in got] == [5, 6, 7]


@pytest.mark.parametrize(
    ("offset", "expected"), [(3, [3, 4, 5]), (5, [5]), (1000, [0, 1, 2, 3, 4, 5])]
)
async def test_tail_from_an_offset_starts_there_or_at_the_oldest_past_the_end(
    logging_app: App, offset: int, expected: list[int]
) -> None:
    # given a topic of 5 records, one batch (a tail that reconnects asks for the offset after
    # the last it printed; after a development broker restarts, that is past the new end)
    _, target = logging_app
    await stream(target, [make_record(n) for n in range(5)])

    # when a tail asks to start at `offset`, and one more record comes
    async with grpc.aio.insecure_channel(target) as channel:
        call = logging_service_pb2_grpc.LoggingServiceStub(channel).TailLogs(
            pb.TailLogsRequest(offset=offset), timeout=10
        )
        await call.initial_metadata()
        await stream(target, [make_record(5)])
        got = [await call.read() for _ in expected]
        call.cancel()

    # then it reads from there; past the end, from the oldest record kept (what Kafka does,
    # auto_offset_reset), not nothing for ever
    assert [r.offset for r in got] == expected


async def test_an_open_tail_goes_on_after_the_broker_restarts_empty(
    own_broker: TansuBroker,
) -> None:
    # given a tail that has read the 5 records of the topic (one batch)
    app = LoggingServiceApp(log_settings(own_broker.bootstrap_servers))
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)
        await stream(target, [make_record(n) for n in range(5)])
        async with grpc.aio.insecure_channel(target) as channel:
            call = logging_service_pb2_grpc.LoggingServiceStub(channel).TailLogs(
                pb.TailLogsRequest(from_beginning=True), timeout=30
            )
            assert [(await call.read()).offset for _ in range(5)] == [0, 1, 2, 3, 4]

            # when the development broker restarts empty and the next records come
            await asyncio.to_thread(own_broker.stop)
            await asyncio.to_thread(own_broker.start)
            await wait_serving(target)
            later = await ship(target, [make_record(n) for n in range(5, 8)])

            # then the open tail reads them from the new topic's start (what a real Kafka's
            # OFFSET_OUT_OF_RANGE does), instead of waiting silently for offset 5
            async with asyncio.timeout(10):
                got = [await call.read() for _ in later]
            call.cancel()
    finally:
        await app.stop(1.0)

    assert [r.event_id for r in got] == [r.event_id for r in later]
    assert [r.offset for r in got] == [0, 1, 2]


async def test_console_tail_prints_report_style_lines(logging_app: App) -> None:
    _, target = logging_app
    await stream(target, [make_record(0, message="User 'peter' is created", kind="rest")])
    out = io.StringIO()

    printer = asyncio.create_task(tail(target, from_beginning=True, out=out))
    await wait_for(lambda: out.getvalue().endswith("\n"), within=10, message="nothing printed")
    printer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await printer

    assert re.fullmatch(r"\d{10} - REST API: User 'peter' is created\n", out.getvalue())


async def test_console_tail_prints_a_re_sent_record_once(logging_app: App) -> None:
    # given a record in the topic twice (its batch re-sent: same event_id), then another
    _, target = logging_app
    twice = make_record(0, message="Order 58 placed", kind="rest")
    await stream(target, [twice, twice, make_record(1, message="the end", kind="rest")])
    out = io.StringIO()

    # when the console prints the topic
    printer = asyncio.create_task(tail(target, from_beginning=True, out=out))
    await wait_for(lambda: "the end" in out.getvalue(), within=10, message="nothing printed")
    printer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await printer

    # then the repeat is not printed again (delivery is at least once; readers deduplicate)
    assert out.getvalue().count("Order 58 placed") == 1


async def test_tail_consumer_is_stopped_when_the_client_cancels(logging_app: App) -> None:
    app, target = logging_app

    async with grpc.aio.insecure_channel(target) as channel:
        call = logging_service_pb2_grpc.LoggingServiceStub(channel).TailLogs(
            pb.TailLogsRequest(from_beginning=True), timeout=10
        )
        await call.initial_metadata()
        assert app.servicer.open_tails == 1
        call.cancel()

        await wait_for(lambda: app.servicer.open_tails == 0, within=5, message="tail not closed")


async def test_tails_beyond_the_limit_are_refused_until_one_ends(broker: TansuBroker) -> None:
    # given a logging service that keeps at most 2 tails open, and 2 open
    app = LoggingServiceApp(log_settings(broker.bootstrap_servers, log_tails_max=2))
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = logging_service_pb2_grpc.LoggingServiceStub(channel)
            tails = [stub.TailLogs(pb.TailLogsRequest(), timeout=20) for _ in range(2)]
            for tail in tails:
                await tail.initial_metadata()
            # when more are asked for
            refused = [stub.TailLogs(pb.TailLogsRequest(), timeout=5) for _ in range(3)]
            # then each is refused at once, and no consumer was opened for it
            codes = [await call.code() for call in refused]
            assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3
            # coded as a rate limit with when to retry, for the gateway's one table
            sent = read_error_metadata(await refused[0].trailing_metadata())
            assert (sent.code, sent.retry_after_s) == ("RATE_LIMITED", TAIL_RETRY_AFTER_S)
            assert app.servicer.open_tails == 2
            # and once a tail ends, the next one is served
            tails[0].cancel()
            await wait_for(lambda: app.servicer.open_tails == 1, within=5, message="not closed")
            tails[0] = stub.TailLogs(pb.TailLogsRequest(), timeout=20)
            await tails[0].initial_metadata()
            assert app.servicer.open_tails == 2
            for tail in tails:
                tail.cancel()
    finally:
        await app.stop(1.0)


async def test_stop_ends_open_tails_well_within_the_grace_period(broker: TansuBroker) -> None:
    app = LoggingServiceApp(log_settings(broker.bootstrap_servers, shutdown_grace_s=10))
    target = f"127.0.0.1:{await app.start()}"
    await wait_serving(target)
    async with grpc.aio.insecure_channel(target) as channel:
        call = logging_service_pb2_grpc.LoggingServiceStub(channel).TailLogs(
            pb.TailLogsRequest(), timeout=20
        )
        await call.initial_metadata()

        await asyncio.wait_for(app.stop(), timeout=5)

        assert await call.code() == grpc.StatusCode.OK
    assert app.servicer.open_tails == 0


async def test_console_tail_says_what_it_waits_for_until_the_service_comes(
    broker: TansuBroker,
) -> None:
    # given a tail started before logging_service (`make logs` before `make run`)
    port = free_port()
    target = f"127.0.0.1:{port}"
    out, err = io.StringIO(), io.StringIO()
    printer = asyncio.create_task(tail(target, from_beginning=True, out=out, err=err))
    try:
        # then it says, once, what it is waiting for instead of hanging silently
        await wait_for(lambda: "waiting for" in err.getvalue(), within=10, message="no notice")
        assert err.getvalue() == f"tail: waiting for logging_service at {target} (is it running?)\n"

        # and when the service comes, it prints the topic without being restarted
        app = LoggingServiceApp(log_settings(broker.bootstrap_servers, listen=target))
        await app.start()
        try:
            await wait_serving(target)
            await stream(target, [make_record(0, message="User 'peter' is created", kind="rest")])
            await wait_for(lambda: "peter" in out.getvalue(), within=15, message="not printed")
        finally:
            await app.stop(1.0)
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    assert err.getvalue().count("waiting for") == 1


@contextlib.asynccontextmanager
async def _serving_with_a_tail(broker: TansuBroker) -> AsyncIterator[tuple[str, TopicTail]]:
    """A logging service on `broker`, serving at the target yielded, and a TopicTail of its
    settings, not yet opened; both closed after."""
    app = LoggingServiceApp(log_settings(broker.bootstrap_servers))
    target = f"127.0.0.1:{await app.start()}"
    topic_tail = TopicTail(app.settings)
    try:
        await wait_serving(target)
        yield target, topic_tail
    finally:
        await topic_tail.close()
        await app.stop(1.0)


async def _restart_and_ship_eight(broker: TansuBroker, target: str) -> list[pb.LogRecord]:
    """Restart the development broker (it comes back empty), then ship 8 records through
    logging_service at `target` as a shipper does (again until acknowledged)."""
    await asyncio.to_thread(broker.stop)
    await asyncio.to_thread(broker.start)
    await wait_serving(target)
    return await ship(target, [make_record(n) for n in range(5, 13)])


async def _read_through(topic_tail: TopicTail, last: pb.LogRecord) -> list[pb.LogRecord]:
    """What `topic_tail` reads up to and including `last` (within 10 s)."""
    got: list[pb.LogRecord] = []
    async with asyncio.timeout(10):
        while not got or got[-1].event_id != last.event_id:
            got += await topic_tail.poll(0.5)
    return got


async def test_an_open_tail_misses_nothing_when_the_restarted_broker_outgrows_it_at_once(
    own_broker: TansuBroker,
) -> None:
    # given a tail that has read the 5 records of the topic (one batch)
    async with _serving_with_a_tail(own_broker) as (target, topic_tail):
        await stream(target, [make_record(n) for n in range(5)])
        await topic_tail.open(pb.TailLogsRequest(from_beginning=True))
        first: list[pb.LogRecord] = []
        async with asyncio.timeout(10):
            while len(first) < 5:
                first += await topic_tail.poll(0.5)
        assert [r.offset for r in first] == [0, 1, 2, 3, 4]

        # when the development broker restarts empty and 8 records come before the tail's
        # next poll (the shippers' backlog arrives at once after an outage)
        later = await _restart_and_ship_eight(own_broker, target)

        # then the tail reads them all from the new topic's start, as a real Kafka's
        # OFFSET_OUT_OF_RANGE makes it: none of the first five is skipped
        got = await _read_through(topic_tail, later[-1])

    assert [r.event_id for r in got] == [r.event_id for r in later]


async def test_a_tail_from_now_misses_nothing_when_the_restarted_broker_outgrows_it_at_once(
    own_broker: TansuBroker,
) -> None:
    # given a tail opened at the end of a topic of 5 records, that has read nothing yet
    async with _serving_with_a_tail(own_broker) as (target, topic_tail):
        await ship(target, [make_record(n) for n in range(5)])
        await topic_tail.open(pb.TailLogsRequest())

        # when the development broker restarts empty and 8 records come before the tail's
        # first poll
        later = await _restart_and_ship_eight(own_broker, target)

        # then the tail reads them all, from the new topic's start
        got = await _read_through(topic_tail, later[-1])

    assert [r.event_id for r in got] == [r.event_id for r in later]


async def test_the_development_broker_gets_no_idempotent_producer(
    broker: TansuBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # given the development broker, which keeps no producer ids across restarts: its counter
    # starts again, a reused id's batches would be answered DUPLICATE_SEQUENCE_NUMBER, which
    # aiokafka takes for success, and only without idempotence does each call check that
    # the broker still has the topic. It refuses aiokafka's InitProducerId (v0) today.
    caplog.set_level(logging.INFO, logger="logging_service.kafka")
    app = LoggingServiceApp(log_settings(broker.bootstrap_servers))

    # when logging_service connects with KAFKA_IDEMPOTENCE=auto
    target = f"127.0.0.1:{await app.start()}"
    try:
        await wait_serving(target)
    finally:
        await app.stop(1.0)

    # then it produces without idempotence (if an upgrade of aiokafka or Tansu changes this,
    # the development stack must set KAFKA_IDEMPOTENCE=off)
    ready = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Kafka ready")]
    assert ready
    assert all(line.endswith("idempotence off") for line in ready)
