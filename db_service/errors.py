"""Domain errors, and the one table that turns them into gRPC statuses.

Services raise `DomainError(ErrorCode.X, "message")`; only the servicer boundary
(`translate_errors`) turns one into a gRPC status. The code itself is part of the wire contract
(protos/errors.py): it travels in trailing metadata, so the gateway never parses messages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import grpc

from db_service.calls import Context, note_outcome
from protos.errors import ErrorCode as ErrorCode
from protos.errors import error_metadata

log = logging.getLogger(__name__)


GRPC_STATUS: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.OUT_OF_STOCK: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


class DomainError(Exception):
    """An expected failure: a code from the table and a message safe to show a client."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


def invalid(message: str) -> DomainError:
    """Shorthand for the most common error."""
    return DomainError(ErrorCode.INVALID_ARGUMENT, message)


# asyncpg failures that mean "the database is not reachable right now", not a bug: the
# connection failed or broke (SQLSTATE class 08), the server is shutting down, starting up or
# crashed or cancelled the statement (class 57: operator intervention), it is out of
# connections, memory or disk (class 53), or the client gave up waiting.
_DB_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InterfaceError,
)


@asynccontextmanager
async def translate_errors(context: Context) -> AsyncIterator[None]:
    """Turn domain and database errors raised inside an RPC into a gRPC status, once."""
    try:
        yield
    except DomainError as exc:
        note_outcome(exc.code.value)
        context.set_trailing_metadata(error_metadata(exc.code, retry_after_s=exc.retry_after_s))
        await context.abort(GRPC_STATUS[exc.code], exc.message)
    except _DB_UNAVAILABLE as exc:
        # Expected while PostgreSQL is away, once per call: one line, not a traceback each.
        log.warning("database unavailable: %s", type(exc).__name__)
        note_outcome(ErrorCode.UNAVAILABLE.value)
        context.set_trailing_metadata(error_metadata(ErrorCode.UNAVAILABLE))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable, retry later")
    except asyncpg.DataError as exc:
        # A value PostgreSQL cannot take (class 22: out of range, too long, a NUL byte) that
        # validation let through: the client's input is wrong. The SQLSTATE says which rule;
        # the message is not logged, as it may quote the value.
        log.warning("database refused a value: SQLSTATE %s", exc.sqlstate)
        note_outcome(ErrorCode.INVALID_ARGUMENT.value)
        context.set_trailing_metadata(error_metadata(ErrorCode.INVALID_ARGUMENT))
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a value is out of range or invalid")
    except grpc.aio.AbortError:
        raise
    except Exception:
        # A bug: log it here with the traceback, tell the client nothing about it.
        log.exception("unexpected error in RPC")
        note_outcome("INTERNAL")
        await context.abort(grpc.StatusCode.INTERNAL, "internal error")
