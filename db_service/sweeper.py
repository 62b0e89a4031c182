"""Deletes expired rate-limit windows, so keys seen once (a username that never logs in, an
address that came by once) do not stay in PostgreSQL forever.

    sweeper = WindowSweeper(pool, {"login_attempts": 60}, interval_s=60)
    sweeper.start()
    ...
    await sweeper.stop()

Every replica runs one; they may overlap harmlessly (a row is deleted once). Each round deletes
at most BATCH rows per statement and MAX_BATCHES statements per table, so a backlog is worked
off over several rounds instead of holding locks on a large delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

import asyncpg

from db_service.repositories.windows import Table, delete_expired

log = logging.getLogger(__name__)

BATCH = 1000
MAX_BATCHES = 10


class WindowSweeper:
    """A background task deleting the expired windows of each table every `interval_s`."""

    def __init__(
        self, pool: asyncpg.Pool, windows_s: Mapping[Table, int], *, interval_s: float
    ) -> None:
        self._pool = pool
        self._windows_s = dict(windows_s)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="window-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sweep(self) -> int:
        """One round: the number of expired windows deleted."""
        deleted = 0
        for table, window_s in self._windows_s.items():
            for _ in range(MAX_BATCHES):
                count = await delete_expired(self._pool, table, window_s=window_s, limit=BATCH)
                deleted += count
                if count < BATCH:
                    break
        return deleted

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                deleted = await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                # PostgreSQL is away: the health monitor reports it; try again next round.
                log.warning("window sweep failed: %s", type(exc).__name__)
                continue
            except Exception:
                # Anything else is a bug, but no failure may end the task: nothing would start
                # it again, and expired windows would pile up for ever.
                log.exception("window sweep failed; trying again next round")
                continue
            if deleted:
                log.debug("deleted %d expired rate-limit windows", deleted)
