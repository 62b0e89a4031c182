"""Which asyncpg failures are not bugs: the database is away, or refused a value.

The repositories are the code that knows asyncpg; the servicer boundary asks this module which
of its exceptions to answer as UNAVAILABLE or INVALID_ARGUMENT instead of INTERNAL.
"""

from __future__ import annotations

import asyncpg

# asyncpg failures that mean "the database is not reachable right now", not a bug: the
# connection failed or broke (SQLSTATE class 08), the server is shutting down, starting up or
# crashed or cancelled the statement (class 57: operator intervention), it is out of
# connections, memory or disk (class 53), or the client gave up waiting.
DB_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InterfaceError,
)
# A value PostgreSQL cannot take (class 22: out of range, too long, a NUL byte).
DB_REFUSED_VALUE = asyncpg.DataError
