"""Log records without services: redaction, limits, the JSON form on the topic, console lines,
and how LogShipper packs a batch into LogBatch messages."""

from __future__ import annotations

import math

import orjson
import pytest

from logging_service.client import MESSAGE_MAX_BYTES, batch_messages, decode_batch
from logging_service.console import format_line
from logging_service.records import JSON_FIELDS, from_json, redact, sanitize, to_json, to_kafka
from protos import logging_service_pb2 as pb

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjExMzA1MyIsInJvbGUiOiJjdXN0b21lciJ9."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def make_record(**overrides: object) -> pb.LogRecord:
    fields: dict[str, object] = {
        "event_id": "0f" * 16,
        "ts": 1732925683.25,
        "service": "gateway",
        "kind": "rest",
        "operation": "POST /api/v1/users/create",
        "user": "anonymous",
        "outcome": "ok",
        "duration_ms": 12.5,
        "request_id": "req-1",
    }
    fields.update(overrides)
    return pb.LogRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {JWT} used", "token [REDACTED] used"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED]"),
        ("Bearer abc.def", "Bearer [REDACTED]"),
        ("login password=hunter2 ok", "login password=[REDACTED] ok"),
        ('{"password": "hunter2", "user": "peter"}', '{"password": "[REDACTED]", "user": "peter"}'),
        ("PASSWORD:hunter2&next=1", "PASSWORD:[REDACTED]&next=1"),
        ("new_password=s3cret", "new_password=[REDACTED]"),
        ("hash $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA end", "hash [REDACTED] end"),
        ("User 'peter' is created", "User 'peter' is created"),
        ("GET /api/v1/products/3 in 2.5 ms", "GET /api/v1/products/3 in 2.5 ms"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_json_has_exactly_the_documented_fields_and_no_empty_message() -> None:
    value = orjson.loads(to_json(make_record()))

    assert set(value) == set(JSON_FIELDS)
    assert value["ts"] == 1732925683.25
    assert value["duration_ms"] == 12.5


def test_json_carries_a_non_empty_message() -> None:
    value = orjson.loads(to_json(make_record(message="User 'peter' is created")))

    assert set(value) == {*JSON_FIELDS, "message"}
    assert value["message"] == "User 'peter' is created"


def test_json_round_trips_with_the_offset() -> None:
    record = make_record(message="hello")

    back = from_json(to_json(record), offset=42)

    expected = pb.LogRecord()
    expected.CopyFrom(record)
    expected.offset = 42
    assert back == expected


@pytest.mark.parametrize("value", [b"[1, 2]", b'"text"', b"not json"])
def test_from_json_rejects_values_that_are_not_objects(value: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - orjson's error is a ValueError too
        from_json(value, offset=0)


def test_sanitize_bounds_strings_and_numbers_and_fills_missing_ids() -> None:
    record = make_record(
        event_id="",
        ts=0.0,
        operation="o" * 500,
        message="m" * 3000,
        duration_ms=math.nan,
        request_id="r" * 500,
    )

    clean = sanitize(record)

    assert len(clean.event_id) == 32
    assert clean.ts > 1_700_000_000
    assert len(clean.operation) == 200
    assert len(clean.message) == 2000
    assert len(clean.request_id) == 128
    assert clean.duration_ms == 0.0
    assert orjson.loads(to_json(clean))["duration_ms"] == 0.0


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"message": "User 'peter' is created"},
        {"message": f"login with {JWT} and password=hunter2"},
        {"operation": "o" * 500, "message": "m" * 3000, "request_id": "r" * 500},
        {"request_id": ""},
        {"duration_ms": math.inf},
        {"duration_ms": -3.0, "service": "s" * 100, "user": "u" * 100},
    ],
)
def test_to_kafka_is_the_sanitized_record_keyed_by_its_request_id(
    overrides: dict[str, object],
) -> None:
    record = make_record(**overrides)
    clean = sanitize(record)

    key, value = to_kafka(record)

    assert value == to_json(clean)
    assert key == (clean.request_id.encode() or None)


@pytest.mark.parametrize("ts", [0.0, -5.0, math.nan])
def test_to_kafka_fills_a_missing_event_id_and_time(ts: float) -> None:
    _, value = to_kafka(make_record(event_id="", ts=ts))

    data = orjson.loads(value)
    assert set(data) == set(JSON_FIELDS)
    assert len(data["event_id"]) == 32
    assert data["ts"] > 1_700_000_000


def test_a_batch_that_fits_travels_as_one_message() -> None:
    records = [make_record(request_id=f"req-{n}") for n in range(500)]

    messages = batch_messages([r.SerializeToString() for r in records])

    assert len(messages) == 1
    assert messages[0] == pb.LogBatch(records=records).SerializeToString()


def test_a_large_batch_is_split_in_order_into_messages_under_the_limit() -> None:
    # ~8 kB per record: 600 of them are ~4.9 MB, over gRPC's 4 MiB per message.
    records = [make_record(request_id=f"req-{n}", message="\U0001d11e" * 2000) for n in range(600)]

    messages = batch_messages([r.SerializeToString() for r in records])

    assert len(messages) == 5
    assert all(len(m) <= MESSAGE_MAX_BYTES for m in messages)
    assert [r for m in messages for r in decode_batch(m)] == records


def test_a_record_larger_than_the_limit_travels_alone() -> None:
    small, large = make_record(), make_record(message="m" * 2000)

    messages = batch_messages([r.SerializeToString() for r in (small, large, small)], 1000)

    assert [decode_batch(m) for m in messages] == [[small], [large], [small]]


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"message": "User 'peter' is created"}, "1732925683 - REST API: User 'peter' is created"),
        (
            {"kind": "graphql", "operation": "Query.products"},
            "1732925683 - GraphQL API: Query.products by anonymous: ok (12.5 ms)",
        ),
        (
            {
                "service": "db_service",
                "kind": "rpc",
                "operation": "DBService/CreateUser",
                "outcome": "ALREADY_EXISTS",
            },
            "1732925683 - DB Service: error: ALREADY_EXISTS - DBService/CreateUser by anonymous"
            " (12.5 ms)",
        ),
        ({"message": "two\nlines"}, "1732925683 - REST API: two lines"),
    ],
)
def test_console_line(overrides: dict[str, object], line: str) -> None:
    assert format_line(make_record(**overrides)) == line
