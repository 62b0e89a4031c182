"""Domain errors: what services raise for an expected failure.

Services raise `DomainError(ErrorCode.X, "message")`; only the servicer boundary
(db_service/servicers/translate.py) turns one into a gRPC status. The code itself is part of
the wire contract (protos/errors.py): it travels in trailing metadata, so the gateway never
parses messages.
"""

from __future__ import annotations

from protos.errors import ErrorCode as ErrorCode


class DomainError(Exception):
    """An expected failure: a code from the table and a message safe to show a client.

    `field` names the input the failure is about ("sid", "password", …) where there is one, so
    that a caller who took that input under another name (ADMIN_SID, --sid) can name it so.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after_s: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.field = field


def invalid(message: str, *, field: str | None = None) -> DomainError:
    """Shorthand for the most common error."""
    return DomainError(ErrorCode.INVALID_ARGUMENT, message, field=field)
