"""Sending serialized LogRecords to logging_service: one call per batch, no re-encoding.

Records are kept serialized (in the spool, in the outbox relay), so a batch travels as the
bytes it already is: a `LogBatch` message is the concatenation of its records, each framed as
field 1 (tag 0x0a and a varint length), which is exactly what protobuf would encode.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from logging_service.encoding import varint
from plumbing.grpcchannel import DIRECT
from protos import logging_service_pb2 as pb

# gRPC refuses a message over 4 MiB by default; a LogBatch message stays at about a quarter of
# that (a record is at most ~11 kB: its fields are clipped, records.FIELD_LIMITS).
MESSAGE_MAX_BYTES = 1024 * 1024
_SERVICE = pb.DESCRIPTOR.services_by_name["LoggingService"].full_name
_RECORD_TAG = b"\x0a"  # LogBatch.records: field 1, length-delimited
# gRPC's default reconnect backoff grows to 120 s, which would keep records waiting long after
# the logging service is back; a short cap bounds the recovery time to about two seconds.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    DIRECT,
]


# The tag and length of a record, looked up for the usual sizes (a few hundred bytes) instead
# of encoded once per record shipped.
_FRAMING = [_RECORD_TAG + varint(size) for size in range(2048)]


def batch_messages(records: list[bytes], max_bytes: int = MESSAGE_MAX_BYTES) -> list[bytes]:
    """Serialized records, in order, as serialized LogBatch messages of at most `max_bytes`
    each (usually one). A single record larger than `max_bytes` still travels, alone."""
    messages: list[bytes] = []
    parts: list[bytes] = []
    size = 0
    framing, known = _FRAMING, len(_FRAMING)
    for record in records:
        length = len(record)
        framed = framing[length] if length < known else _RECORD_TAG + varint(length)
        total = len(framed) + length
        if parts and size + total > max_bytes:
            messages.append(b"".join(parts))
            parts, size = [], 0
        parts.append(framed)
        parts.append(record)
        size += total
    if parts or not messages:
        messages.append(b"".join(parts))
    return messages


def _raw(message: bytes) -> bytes:
    return message


class LogChannel:
    """One long-lived channel to logging_service; `send` makes one acknowledged call."""

    def __init__(self, target: str, *, call_timeout_s: float) -> None:
        self.target = target
        self._timeout_s = call_timeout_s
        self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._batches = self._channel.stream_unary(
            f"/{_SERVICE}/StreamLogBatches",
            request_serializer=_raw,
            response_deserializer=pb.StreamLogsSummary.FromString,
        )

    async def send(self, records: list[bytes]) -> int:
        """Send `records` in one call; how many the service acknowledged. Raises AioRpcError."""
        messages: Iterator[bytes] = iter(batch_messages(records))
        summary: pb.StreamLogsSummary = await self._batches(messages, timeout=self._timeout_s)
        return int(summary.acknowledged)

    async def close(self) -> None:
        await self._channel.close(grace=None)
