"""Log records without services: redaction, limits, the JSON form on the topic, console lines,
and how LogShipper packs a batch into LogBatch messages."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logging_service.client import MESSAGE_MAX_BYTES, batch_messages, decode_batch
from logging_service.console import format_line
from logging_service.records import (
    FIELD_LIMITS,
    JSON_FIELDS,
    from_json,
    redact,
    sanitize,
    to_json,
    to_kafka,
)
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
        {"message": "eyJ.a. " + "m" * 1993},  # within the limit until masked
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


def _field(name: str) -> st.SearchStrategy[str]:
    """Short text of any kind, or plain text right around the field's limit (a little further
    below it for the message, which a secret before or after can take over the limit)."""
    limit = FIELD_LIMITS[name]
    return st.one_of(
        st.text(max_size=12),
        st.integers(limit - (20 if name == "message" else 2), limit + 2).map(lambda n: "é" * n),
    )


_SECRETS = st.sampled_from(
    ["", "eyJ.a.", JWT, "Bearer abc", "password=hunter2", "$argon2id$v=19$m=1$x", "x" * 1995]
)
_NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-300])


@st.composite
def _records(draw: st.DrawFn) -> pb.LogRecord:
    record = pb.LogRecord()
    for name in ("event_id", "service", "kind", "operation", "user", "outcome", "request_id"):
        setattr(record, name, draw(_field(name)))
    record.ts = draw(_NUMBERS | st.floats(1e9, 2e9))
    record.duration_ms = draw(_NUMBERS)
    record.message = draw(_SECRETS) + draw(_field("message")) + draw(_SECRETS)
    return record


@settings(max_examples=400, deadline=None)
@given(record=_records())
def test_to_kafka_writes_what_sanitizing_the_record_would(record: pb.LogRecord) -> None:
    # The reference: the sanitized copy in its JSON form (to_kafka checks instead of copying).
    clean = sanitize(record)

    key, value = to_kafka(record)

    assert key == (clean.request_id.encode() or None)
    ts_kept = 0 < record.ts < math.inf
    if record.event_id and ts_kept:
        assert value == to_json(clean)
    else:  # a fresh id or the time now: equal apart from those
        got, expected = orjson.loads(value), orjson.loads(to_json(clean))
        assert (got.pop("event_id") == expected.pop("event_id")) == bool(record.event_id)
        assert (got.pop("ts") == expected.pop("ts")) == ts_kept
        assert got == expected


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


def test_a_batch_is_what_protobuf_makes_of_it_for_records_of_every_length() -> None:
    # Lengths on both sides of a varint byte (127/128) and of the looked-up framings (2047/2048).
    records = [make_record(message="m" * n) for n in (0, 9, 10, 500, 1928, 1929, 1999)]
    records += [make_record(message="\U0001d11e" * 2000)]
    payloads = [r.SerializeToString() for r in records]
    assert {127, 128, 2047, 2048} <= {len(p) for p in payloads}

    messages = batch_messages(payloads, max_bytes=10**9)

    assert messages == [pb.LogBatch(records=records).SerializeToString()]


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
