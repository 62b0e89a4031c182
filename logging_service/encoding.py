"""A LogRecord's bytes without building a message object: what LogShipper serializes per record.

    encoder = RecordEncoder("gateway")
    middle = encoder.middle(kind="rest", operation="GET /api/v1/products/{id}", user="anonymous",
                            outcome="ok", ts=time.time(), duration_ms=1.2)
    tail = encoder.tail(message="")
    payload = encode(event_id, middle, request_id, tail)

The bytes are exactly `pb.LogRecord(...).SerializeToString()` of the same fields (protobuf writes
fields in number order and leaves out zero values; so does this), which
tests/unit/test_record_encoding.py checks over generated records. Fields 3 to 5 (service, kind,
operation) repeat from record to record, so they are serialized by protobuf once per (kind,
operation) and remembered: operations are the code's resolvers, routes and RPCs, a few dozen.
Fields 6 and 7 are remembered per (user, outcome): "anonymous"/"ok" and the users active at
the moment. Each memory keeps at most `cache_max` entries and forgets all of them when full;
with more active users than that, a record costs what encoding its user did before. The
strings are clipped to records.FIELD_LIMITS and the message redacted, as before. A string
protobuf refuses (a lone surrogate) raises, as protobuf does.
"""

from __future__ import annotations

import struct

from logging_service.records import FIELD_LIMITS, clip, redact
from protos import logging_service_pb2 as pb

# Tags (field number << 3 | wire type): 1 = fixed64, 2 = length-delimited.
_EVENT_ID = b"\x0a"  # field 1, string
_TS = 0x11  # field 2, double
_USER = b"\x32"  # field 6, string
_OUTCOME = b"\x3a"  # field 7, string
_DURATION_MS = 0x41  # field 8, double
_REQUEST_ID = b"\x4a"  # field 9, string
_MESSAGE = b"\x52"  # field 10, string
# A double field: its tag and the value in one pack. A value of +0.0 is left out (-0.0 is not),
# so a field equal to the packed +0.0 is dropped.
_TAGGED_DOUBLE = struct.Struct("<Bd").pack
_TS_ZERO = _TAGGED_DOUBLE(_TS, 0.0)
_DURATION_ZERO = _TAGGED_DOUBLE(_DURATION_MS, 0.0)
_REQUEST_ID_MAX = FIELD_LIMITS["request_id"]
CACHE_MAX = 1024


def varint(value: int) -> bytes:
    """`value` (>= 0) as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LENGTHS = [varint(n) for n in range(256)]


def _string(tag: bytes, data: bytes) -> bytes:
    size = len(data)
    return tag + (_LENGTHS[size] if size < 256 else varint(size)) + data


def encode(event_id: str, middle: bytes, request_id: str, tail: bytes) -> bytes:
    """A whole record: its event id, `middle` (fields 2 to 8), the clipped request id, `tail`."""
    # Called for every record of both services: the length prefixes are looked up inline.
    eid = event_id.encode()
    rid = (
        request_id if len(request_id) <= _REQUEST_ID_MAX else request_id[:_REQUEST_ID_MAX]
    ).encode()
    n, m = len(eid), len(rid)
    return b"".join(
        (
            (_EVENT_ID + (_LENGTHS[n] if n < 256 else varint(n)) + eid) if n else b"",
            middle,
            (_REQUEST_ID + (_LENGTHS[m] if m < 256 else varint(m)) + rid) if m else b"",
            tail,
        )
    )


class RecordEncoder:
    """The parts of one service's records (see the module docstring)."""

    def __init__(self, service: str, *, cache_max: int = CACHE_MAX) -> None:
        self._service = clip(service, "service")
        self._cache_max = cache_max
        self._fields: dict[tuple[str, str], bytes] = {}  # fields 3 to 5, by kind and operation
        self._callers: dict[tuple[str, str], bytes] = {}  # fields 6 and 7, by user and outcome

    def middle(
        self, kind: str, operation: str, user: str, outcome: str, ts: float, duration_ms: float
    ) -> bytes:
        """Fields 2 to 8: ts, service, kind, operation, user, outcome, duration_ms."""
        fields = self._fields.get((kind, operation))
        if fields is None:
            fields = self._remember_operation(kind, operation)
        caller = self._callers.get((user, outcome))
        if caller is None:
            caller = self._remember_caller(user, outcome)
        stamp = _TAGGED_DOUBLE(_TS, ts)
        took = _TAGGED_DOUBLE(_DURATION_MS, duration_ms)
        return b"".join(
            (
                b"" if stamp == _TS_ZERO else stamp,
                fields,
                caller,
                b"" if took == _DURATION_ZERO else took,
            )
        )

    def _remember_operation(self, kind: str, operation: str) -> bytes:
        fields = pb.LogRecord(
            service=self._service,
            kind=clip(kind, "kind"),
            operation=clip(operation, "operation"),
        ).SerializeToString()
        if len(self._fields) >= self._cache_max:
            self._fields.clear()
        self._fields[kind, operation] = fields
        return fields

    def _remember_caller(self, user: str, outcome: str) -> bytes:
        user_bytes = clip(user, "user").encode()
        outcome_bytes = clip(outcome, "outcome").encode()
        caller = (_string(_USER, user_bytes) if user_bytes else b"") + (
            _string(_OUTCOME, outcome_bytes) if outcome_bytes else b""
        )
        if len(self._callers) >= self._cache_max:
            self._callers.clear()
        self._callers[user, outcome] = caller
        return caller

    @staticmethod
    def tail(message: str) -> bytes:
        """Field 10: the message, clipped and redacted; nothing when it is empty."""
        text = redact(clip(message, "message")) if message else ""
        return _string(_MESSAGE, text.encode()) if text else b""
