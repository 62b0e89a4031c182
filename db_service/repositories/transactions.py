"""Transactions of several statements, which give their rows back even when db_service stops
answering in the middle of one.

A db_service replica that freezes (a paused VM, a host cut off from the network) keeps its
connections open, and PostgreSQL would keep each open transaction's row locks until TCP
notices, hours by default: a cancel frozen after it updated its product's row would block
every order of that product on every replica. Such a transaction is ended by PostgreSQL once
it sits idle for IDLE_MAX_S, far longer than db_service ever waits between two statements of
one transaction (a round trip; a statement itself is bounded by DB_COMMAND_TIMEOUT_S). The
outbox relay bounds its batches the same way, in its lock's statement (OutboxRepository.lock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from db_service.repositories.outbox import Conn

IDLE_MAX_S = 15

_BOUND = f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_MAX_S}s'"


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A pooled connection in a transaction that PostgreSQL ends after IDLE_MAX_S idle."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_BOUND)
        yield conn
