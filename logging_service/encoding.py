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
operation) and remembered: operations are the code's resolvers, routes and RPCs, a few dozen
(at most `cache_max` are kept; all are forgotten when full). User and outcome are encoded per
record: keyed by user, the memory would thrash with more than a handful of active users.
The strings are clipped to records.FIELD_LIMITS and the message redacted, as before. A string
protobuf refuses (a lone surrogate) raises, as protobuf does.
"""

from __future__ import annotations

import struct

from logging_service.records import clip, redact
from protos import logging_service_pb2 as pb

# Tags (field number << 3 | wire type): 1 = fixed64, 2 = length-delimited.
_EVENT_ID = b"\x0a"  # field 1, string
_TS = b"\x11"  # field 2, double
_USER = b"\x32"  # field 6, string
_OUTCOME = b"\x3a"  # field 7, string
_DURATION_MS = b"\x41"  # field 8, double
_REQUEST_ID = b"\x4a"  # field 9, string
_MESSAGE = b"\x52"  # field 10, string
_DOUBLE = struct.Struct("<d").pack
_ZERO = _DOUBLE(0.0)
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


def _double(tag: bytes, value: float) -> bytes:
    packed = _DOUBLE(value)
    return b"" if packed == _ZERO else tag + packed  # +0.0 is left out, -0.0 is not


def encode(event_id: str, middle: bytes, request_id: str, tail: bytes) -> bytes:
    """A whole record: its event id, `middle` (fields 2 to 8), the clipped request id, `tail`."""
    rid = clip(request_id, "request_id").encode()
    head = _string(_EVENT_ID, event_id.encode()) if event_id else b""
    return head + middle + (_string(_REQUEST_ID, rid) if rid else b"") + tail


class RecordEncoder:
    """The parts of one service's records (see the module docstring)."""

    def __init__(self, service: str, *, cache_max: int = CACHE_MAX) -> None:
        self._service = clip(service, "service")
        self._cache_max = cache_max
        self._fields: dict[tuple[str, str], bytes] = {}

    def middle(
        self, kind: str, operation: str, user: str, outcome: str, ts: float, duration_ms: float
    ) -> bytes:
        """Fields 2 to 8: ts, service, kind, operation, user, outcome, duration_ms."""
        key = (kind, operation)
        fields = self._fields.get(key)
        if fields is None:
            fields = pb.LogRecord(
                service=self._service,
                kind=clip(kind, "kind"),
                operation=clip(operation, "operation"),
            ).SerializeToString()
            if len(self._fields) >= self._cache_max:
                self._fields.clear()
            self._fields[key] = fields
        user_bytes = clip(user, "user").encode()
        outcome_bytes = clip(outcome, "outcome").encode()
        return b"".join(
            (
                _double(_TS, ts),
                fields,
                _string(_USER, user_bytes) if user_bytes else b"",
                _string(_OUTCOME, outcome_bytes) if outcome_bytes else b"",
                _double(_DURATION_MS, duration_ms),
            )
        )

    @staticmethod
    def tail(message: str) -> bytes:
        """Field 10: the message, clipped and redacted; nothing when it is empty."""
        text = redact(clip(message, "message")) if message else ""
        return _string(_MESSAGE, text.encode()) if text else b""
