"""db_service's domain error codes as they travel: part of the wire contract.

The codes are the proto's `ErrorCode` enum. A failed call carries the code's name in the
trailing metadata entry `merch-error-code`, and a rate limit the seconds to wait in
`retry-after`; db_service writes them with `error_metadata` and the gateway reads them with
`read_error_metadata`, so neither parses messages.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from protos import db_service_pb2 as pb

ERROR_CODE_METADATA_KEY = "merch-error-code"
RETRY_AFTER_METADATA_KEY = "retry-after"


def _wire_name(value: pb.ErrorCode) -> str:
    return pb.ErrorCode.Name(value)


class ErrorCode(enum.StrEnum):
    """Every expected failure of the domain; each value is its name in the proto enum."""

    INVALID_ARGUMENT = _wire_name(pb.INVALID_ARGUMENT)
    UNAUTHENTICATED = _wire_name(pb.UNAUTHENTICATED)
    FORBIDDEN = _wire_name(pb.FORBIDDEN)
    NOT_FOUND = _wire_name(pb.NOT_FOUND)
    ALREADY_EXISTS = _wire_name(pb.ALREADY_EXISTS)
    CONFLICT = _wire_name(pb.CONFLICT)
    OUT_OF_STOCK = _wire_name(pb.OUT_OF_STOCK)
    FAILED_PRECONDITION = _wire_name(pb.FAILED_PRECONDITION)
    RATE_LIMITED = _wire_name(pb.RATE_LIMITED)
    UNAVAILABLE = _wire_name(pb.UNAVAILABLE)


def error_metadata(
    code: ErrorCode, *, retry_after_s: int | None = None
) -> tuple[tuple[str, str], ...]:
    """The trailing metadata of a call that failed with `code`."""
    if retry_after_s is None:
        return ((ERROR_CODE_METADATA_KEY, code.value),)
    return ((ERROR_CODE_METADATA_KEY, code.value), (RETRY_AFTER_METADATA_KEY, str(retry_after_s)))


@dataclass(frozen=True, slots=True)
class ErrorMetadata:
    """What a failed call's trailing metadata said: the code as sent (None when absent)."""

    code: str | None
    retry_after_s: int | None


def read_error_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> ErrorMetadata:
    """The error code and Retry-After of a failed call's trailing metadata."""
    trailing = {key: value for key, value in metadata or ()}
    code = trailing.get(ERROR_CODE_METADATA_KEY)
    retry_after = trailing.get(RETRY_AFTER_METADATA_KEY)
    return ErrorMetadata(
        code=code if isinstance(code, str) else None,
        retry_after_s=int(retry_after)
        if isinstance(retry_after, str) and retry_after.isdigit()
        else None,
    )
