"""The one table that turns domain errors into gRPC statuses, and the boundary that uses it.

Every servicer method runs inside `translate_errors`: a DomainError becomes its status with the
code in trailing metadata; the database being away becomes UNAVAILABLE; anything else is a bug,
logged here and answered INTERNAL with no details.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from db_service.calls import Context, note_outcome
from db_service.errors import DomainError, ErrorCode
from db_service.repositories.failures import DB_REFUSED_VALUE, DB_UNAVAILABLE
from protos.errors import error_metadata

log = logging.getLogger(__name__)

# A message travels in a trailer (grpc-message), and gRPC refuses metadata over 16 KiB: one that
# quotes a client's value (a 20,000-character sid) is cut to this many characters.
MESSAGE_MAX = 500

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


@asynccontextmanager
async def translate_errors(context: Context) -> AsyncIterator[None]:
    """Turn domain and database errors raised inside an RPC into a gRPC status, once."""
    try:
        yield
    except DomainError as exc:
        note_outcome(exc.code.value)
        context.set_trailing_metadata(error_metadata(exc.code, retry_after_s=exc.retry_after_s))
        message = exc.message
        if len(message) > MESSAGE_MAX:
            message = message[: MESSAGE_MAX - 1] + "…"
        await context.abort(GRPC_STATUS[exc.code], message)
    except DB_UNAVAILABLE as exc:
        # Expected while PostgreSQL is away, once per call: one line, not a traceback each.
        log.warning("database unavailable: %s", type(exc).__name__)
        note_outcome(ErrorCode.UNAVAILABLE.value)
        context.set_trailing_metadata(error_metadata(ErrorCode.UNAVAILABLE))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable, retry later")
    except DB_REFUSED_VALUE as exc:
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
