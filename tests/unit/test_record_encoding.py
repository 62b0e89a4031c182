"""The record encoder writes exactly the bytes protobuf writes for the same record, and fails
where protobuf fails: LogShipper's records are byte for byte what they were when each one was
built as a `pb.LogRecord` (the reference below is that code)."""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from logging_service.encoding import RecordEncoder, encode, varint
from logging_service.records import clip, redact
from protos import logging_service_pb2 as pb


def reference(
    service: str,
    event_id: str,
    ts: float,
    kind: str,
    operation: str,
    user: str,
    outcome: str,
    duration_ms: float,
    request_id: str,
    message: str,
) -> bytes:
    record = pb.LogRecord(
        ts=ts,
        service=clip(service, "service"),
        kind=clip(kind, "kind"),
        operation=clip(operation, "operation"),
        user=clip(user, "user"),
        outcome=clip(outcome, "outcome"),
        duration_ms=duration_ms,
        message=redact(clip(message, "message")) if message else "",
    )
    record.event_id = event_id
    record.request_id = clip(request_id, "request_id")
    return record.SerializeToString()


def fast(encoder: RecordEncoder, event_id: str, ts: float, *fields: str | float) -> bytes:
    kind, operation, user, outcome, duration_ms, request_id, message = fields
    assert isinstance(duration_ms, float)
    middle = encoder.middle(str(kind), str(operation), str(user), str(outcome), ts, duration_ms)
    return encode(event_id, middle, str(request_id), encoder.tail(str(message)))


def outcome_of(call: Callable[[], bytes]) -> bytes | str:
    """The bytes, or "error"."""
    try:
        return call()
    except Exception:  # that it fails is what is compared
        return "error"


# Text with what protobuf and UTF-8 treat specially: lone surrogates, non-ASCII, long runs
# (past the field limits and past 127 and 255 bytes of length), secrets that redact() masks.
text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=100, max_size=2100),
    st.sampled_from(["", "ok", "anonymous", "password=hunter2", "Bearer abc.def.ghi", "\ud800"]),
)
ENCODERS: dict[str, RecordEncoder] = {}
doubles = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1796613069.7615063]),
)


@settings(max_examples=400, deadline=None)
@given(
    service=st.sampled_from(["gateway", "db_service", "s" * 70]),
    event_id=st.one_of(st.just(""), st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)),
    ts=doubles,
    kind=text,
    operation=text,
    user=text,
    outcome=text,
    duration_ms=doubles,
    request_id=text,
    message=text,
)
@example(
    service="gateway",
    event_id="0" * 32,
    ts=0.0,
    kind="",
    operation="",
    user="",
    outcome="",
    duration_ms=-0.0,
    request_id="",
    message="",
)
def test_the_encoder_writes_what_protobuf_writes(
    service: str,
    event_id: str,
    ts: float,
    kind: str,
    operation: str,
    user: str,
    outcome: str,
    duration_ms: float,
    request_id: str,
    message: str,
) -> None:
    fields = (kind, operation, user, outcome, duration_ms, request_id, message)
    # One encoder per service for all examples, as in a shipper: what it remembered from
    # earlier examples must not leak into this one.
    encoder = ENCODERS.setdefault(service, RecordEncoder(service))

    expected = outcome_of(lambda: reference(service, event_id, ts, *fields))
    first = outcome_of(lambda: fast(encoder, event_id, ts, *fields))
    again = outcome_of(lambda: fast(encoder, event_id, ts, *fields))  # from the cache

    if isinstance(expected, bytes):
        assert first == expected
        assert again == expected
        parsed = pb.LogRecord.FromString(first)
        assert parsed.event_id == event_id
        assert math.isnan(parsed.ts) if math.isnan(ts) else parsed.ts == ts
    else:
        assert not isinstance(first, bytes)
        assert not isinstance(again, bytes)


def test_a_record_differs_from_the_next_only_in_its_event_and_request_ids() -> None:
    encoder = RecordEncoder("db_service")
    middle = encoder.middle("rpc", "DBService/GetProductsByIds", "anonymous", "ok", 1.5, 2.0)
    tail = encoder.tail("")

    one = pb.LogRecord.FromString(encode("a" * 32, middle, "r1", tail))
    two = pb.LogRecord.FromString(encode("b" * 32, middle, "r2", tail))

    assert (one.event_id, one.request_id, two.event_id, two.request_id) == (
        "a" * 32,
        "r1",
        "b" * 32,
        "r2",
    )
    one.ClearField("event_id")
    one.ClearField("request_id")
    two.ClearField("event_id")
    two.ClearField("request_id")
    assert one == two


def test_one_encoder_keeps_every_field_of_every_record_apart() -> None:
    encoder = RecordEncoder("gateway")
    combinations = [
        (kind, operation, user, outcome)
        for kind in ("rest", "graphql")
        for operation in ("GET /x", "Query.me")
        for user in ("anonymous", "12113053")
        for outcome in ("ok", "NOT_FOUND")
    ]

    for _ in range(2):  # the second time from what the encoder remembered
        for kind, operation, user, outcome in combinations:
            middle = encoder.middle(kind, operation, user, outcome, 1.0, 2.0)
            expected = pb.LogRecord(
                ts=1.0,
                service="gateway",
                kind=kind,
                operation=operation,
                user=user,
                outcome=outcome,
                duration_ms=2.0,
            )
            assert middle == expected.SerializeToString()


def test_the_remembered_operations_are_bounded() -> None:
    encoder = RecordEncoder("gateway", cache_max=3)

    for number in range(10):
        middle = encoder.middle("rest", f"GET /x/{number}", "anonymous", "ok", 1.0, 1.0)
        assert pb.LogRecord.FromString(middle).operation == f"GET /x/{number}"

    assert len(encoder._fields) <= 3


def test_varints_are_protobufs() -> None:
    assert varint(0) == b"\x00"
    for value in (1, 127, 128, 255, 256, 300, 16_383, 16_384, 2**31, 2**63 - 1):
        assert varint(value) == pb.LogRecord(offset=value).SerializeToString()[1:]
