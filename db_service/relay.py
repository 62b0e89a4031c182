"""The outbox relay: ships log_outbox rows to logging_service in id order, deleting them once
logging_service acknowledged them (Kafka has them).

One batch is one transaction: take the relay lock (a transaction-level advisory lock, so one
db_service replica relays at a time and the order holds), read the oldest rows, send them in
one StreamLogBatches call, delete them, commit. A failure rolls back and leaves the rows for
the next try; a crash after the acknowledgement and before the commit sends them again with the
same `event_id` (at least once, like every log record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
import grpc

from db_service.outbox import Outbox
from db_service.repositories.outbox import OutboxRepository
from logging_service.client import LogChannel, record_from_json

log = logging.getLogger("db_service.relay")

# An empty outbox is looked at every LOG_FLUSH_INTERVAL_S, but never more often than this.
IDLE_MIN_S = 0.05
_COUNT_EVERY_S = 1.0
_MAX_BACKOFF_S = 5.0
# PostgreSQL or logging_service away, or a connection that broke mid-batch (InterfaceError: the
# transaction cannot even roll back): expected in operation, so logged without a traceback.
_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    grpc.aio.AioRpcError,
)


class OutboxRelay:
    """Runs in the background from `start()` to `stop()`."""

    def __init__(
        self,
        outbox: Outbox,
        repo: OutboxRepository,
        pool: asyncpg.Pool,
        channel: LogChannel,
        *,
        batch_max: int = 500,
        hold_max_s: float = 15.0,
        idle_s: float = 0.2,
    ) -> None:
        """`hold_max_s`: how long a batch's transaction may sit idle (waiting for `channel`'s
        acknowledgement, whose deadline must be shorter) before PostgreSQL ends it. `idle_s`:
        how long to wait before looking again at an outbox that had less than a batch
        (LOG_FLUSH_INTERVAL_S, like the service's other records; at least IDLE_MIN_S)."""
        self._outbox = outbox
        self._repo = repo
        self._pool = pool
        self._channel = channel
        self._batch_max = batch_max
        self._hold_max_s = hold_max_s
        self._idle_s = max(idle_s, IDLE_MIN_S)
        self._task: asyncio.Task[None] | None = None
        self._counted_at = 0.0
        self.relayed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._channel.close()

    async def _run(self) -> None:
        """Relay until cancelled: no failure ends it, since nothing would start it again and
        the outbox would only grow (a dropped connection, a bug: each is logged and retried)."""
        delay = self._idle_s
        failing = False
        while True:
            try:
                await self._count()
                sent = await self.relay_once()
            except Exception as exc:
                if not failing:
                    _report(exc)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
                continue
            if failing:
                log.info("outbox relay recovered")
                failing, delay = False, self._idle_s
            if sent < self._batch_max:
                await asyncio.sleep(self._idle_s)  # caught up: look again shortly

    async def relay_once(self) -> int:
        """Relay the oldest batch, if this replica holds the lock; how many rows went."""
        if not await self._repo.any():
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            if not await self._repo.lock(conn, hold_max_s=self._hold_max_s):
                return 0
            rows = await self._repo.oldest(conn, self._batch_max)
            if not rows:
                return 0
            records = [record_from_json(record.encode()) for _, record in rows]
            acknowledged = await self._channel.send(records)
            if acknowledged != len(records):
                raise TimeoutError(f"{acknowledged} of {len(records)} acknowledged")
            await self._repo.delete(conn, [row_id for row_id, _ in rows])
        self.relayed += len(rows)
        return len(rows)

    async def _count(self) -> None:
        now = time.monotonic()
        if now - self._counted_at >= _COUNT_EVERY_S:
            self._counted_at = now
            full = self._outbox.full
            self._outbox.rows = await self._repo.count(at_most=self._outbox.max_rows)
            if self._outbox.full and not full:
                log.error(
                    "log outbox holds %d rows: new records are dropped and counted until the"
                    " relay catches up",
                    self._outbox.rows,
                )


def _report(exc: Exception) -> None:
    """The first failure of a run of them: a traceback only when it is not an expected one."""
    if isinstance(exc, _TRANSIENT):
        log.warning("outbox relay failing (%s); retrying with backoff", _reason(exc))
    else:
        log.exception("outbox relay failed; retrying with backoff", exc_info=exc)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code().name
    return type(exc).__name__
