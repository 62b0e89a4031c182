"""Outbox records: the log record of a committed change, written in the change's transaction.

    OUTBOX.event("Order.placed", subject=sid, message="...")   # JSON for log_outbox.record

A record has the fields of every log record (logging_service.records.JSON_FIELDS) with
`kind` "event": `user` is the caller of the RPC (the new user for a registration, "system" at
start-up), `request_id` the RPC's. The relay (db_service.relay) ships them; such a record in
`log-channel` proves the change committed. The outbox is bounded: while it holds `max_rows`
rows (the relay counts them), new records are dropped and counted instead of written, and the
change still commits. With LOG_SHIPPING=false nothing is recorded, so no row is written (there
would be no relay to ship and delete it).
"""

from __future__ import annotations

import time
import uuid

import orjson

from db_service.calls import current_call


class Outbox:
    """Builds outbox records and knows whether the outbox has room for them."""

    def __init__(self, *, max_rows: int = 1_000_000, enabled: bool = True) -> None:
        self.max_rows = max_rows
        self.enabled = enabled
        self.rows = 0  # as last counted by the relay
        self.dropped = 0

    @property
    def full(self) -> bool:
        return self.rows >= self.max_rows

    def event(self, operation: str, *, subject: str, message: str) -> str | None:
        """The JSON of one record; None when records are off, or (counted) when the outbox is
        full."""
        if not self.enabled:
            return None
        if self.full:
            self.dropped += 1
            return None
        call = current_call.get()
        if call is None:
            user, request_id = "system", uuid.uuid4().hex
        else:
            user = call.user if call.user != "anonymous" else subject
            request_id = call.request_id
        return orjson.dumps(
            {
                "event_id": uuid.uuid4().hex,
                "ts": time.time(),
                "service": "db_service",
                "kind": "event",
                "operation": operation,
                "user": user,
                "outcome": "ok",
                "duration_ms": 0.0,
                "request_id": request_id,
                "message": message,
            }
        ).decode()


# Where no outbox is configured (tests of a repository alone): records are built, never full.
UNBOUNDED = Outbox(max_rows=2**62)
