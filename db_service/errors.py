"""Domain errors: what services raise for an expected failure.

Services raise `DomainError(ErrorCode.X, "message")`; only the servicer boundary
(db_service/servicers/translate.py) turns one into a gRPC status. The code itself is part of
the wire contract (protos/errors.py): it travels in trailing metadata, so the gateway never
parses messages.
"""

from __future__ import annotations

from protos.errors import ErrorCode as ErrorCode


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
