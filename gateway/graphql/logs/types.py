"""The GraphQL shape of one log record (DESIGN.md §8)."""

from __future__ import annotations

import strawberry

from protos import logging_service_pb2 as pb


@strawberry.type
class LogRecord:
    event_id: str
    ts: float
    service: str
    kind: str
    operation: str
    user: str
    outcome: str
    duration_ms: float
    request_id: str
    message: str
    offset: str = strawberry.field(
        description="Position in the topic, as a string: Kafka offsets outgrow GraphQL's Int."
    )

    @classmethod
    def from_pb(cls, record: pb.LogRecord) -> LogRecord:
        return cls(
            event_id=record.event_id,
            ts=record.ts,
            service=record.service,
            kind=record.kind,
            operation=record.operation,
            user=record.user,
            outcome=record.outcome,
            duration_ms=record.duration_ms,
            request_id=record.request_id,
            message=record.message,
            offset=str(record.offset),
        )
