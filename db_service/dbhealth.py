"""Watch PostgreSQL after start, so db_service's health tells the truth about it.

    monitor = DatabaseMonitor(dsn, interval_s=2.0, on_change=set_serving)
    monitor.start()      # probes `SELECT 1` every interval, each probe bounded by the interval
    ...
    await monitor.stop()

`on_change(False)` is called once when a probe fails (PostgreSQL stopped, paused, unreachable)
and `on_change(True)` once when one succeeds again. Recovery itself needs nothing from here:
the asyncpg pool replaces broken connections on the next acquire.

The probe has a connection of its own rather than one from the pool: a pool busy with real
work must not look like a database that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)


class DatabaseMonitor:
    """Probes PostgreSQL periodically and reports each change between reachable and not."""

    def __init__(
        self,
        dsn: str,
        *,
        interval_s: float,
        on_change: Callable[[bool], Awaitable[None]],
    ) -> None:
        self._dsn = dsn
        self._interval_s = interval_s
        self._on_change = on_change
        self._healthy = True  # started right after a successful connect and migration
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self._healthy

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="database-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop_connection()

    async def _run(self) -> None:
        while True:
            healthy = await self._probe()
            if healthy != self._healthy:
                self._healthy = healthy
                if healthy:
                    log.info("PostgreSQL is reachable again")
                else:
                    log.warning("PostgreSQL is unreachable; health is NOT_SERVING until it is back")
                await self._on_change(healthy)
            # The probe period, not a synchronisation: nothing waits on this sleep.
            await asyncio.sleep(self._interval_s)

    async def _probe(self) -> bool:
        """One `SELECT 1`, connecting first if needed; every wait bounded by the interval."""
        timeout = self._interval_s
        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(self._dsn, timeout=timeout)
            await self._connection.fetchval("SELECT 1", timeout=timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._drop_connection()
            return False
        return True

    def _drop_connection(self) -> None:
        # terminate(), not close(): closing politely waits on a server that may not answer.
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None
