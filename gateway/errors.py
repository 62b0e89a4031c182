"""The one place where backend failures become HTTP statuses and GraphQL error codes.

db_service sends its domain code in trailing metadata (protos/errors.py); the gRPC status alone
decides when it is absent (for example UNAVAILABLE from the channel itself). The
grpc library can also fail a call itself, with no status at all (BY_CLIENT_ERROR): every one of
its exceptions is mapped here, so none escapes a route as an unexpected error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc

from protos.errors import ErrorCode, read_error_metadata


class ApiCode(enum.StrEnum):
    """Every code a client sees: GraphQL's `extensions.code`, REST's `error.code` (DESIGN.md §4)."""

    BAD_REQUEST = "BAD_REQUEST"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    URI_TOO_LONG = "URI_TOO_LONG"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    # Seen by no client: the outcome recorded for one that hung up before its request was
    # read (nginx's 499), so that it is counted apart from the gateway's own failures.
    CLIENT_CLOSED_REQUEST = "CLIENT_CLOSED_REQUEST"


# The outcome recorded for a call cancelled before it ended (a GraphQL field whose non-null
# sibling failed, a handler cut off by a forced shutdown); never a code a client sees.
CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Mapping:
    http_status: int
    code: ApiCode  # GraphQL extensions.code, and the REST error body's code


# gRPC status → (HTTP status, code), DESIGN.md §4.
BY_STATUS: dict[grpc.StatusCode, Mapping] = {
    grpc.StatusCode.INVALID_ARGUMENT: Mapping(400, ApiCode.BAD_USER_INPUT),
    grpc.StatusCode.OUT_OF_RANGE: Mapping(400, ApiCode.BAD_USER_INPUT),
    grpc.StatusCode.UNAUTHENTICATED: Mapping(401, ApiCode.UNAUTHENTICATED),
    grpc.StatusCode.PERMISSION_DENIED: Mapping(403, ApiCode.FORBIDDEN),
    grpc.StatusCode.NOT_FOUND: Mapping(404, ApiCode.NOT_FOUND),
    grpc.StatusCode.ALREADY_EXISTS: Mapping(409, ApiCode.CONFLICT),
    grpc.StatusCode.ABORTED: Mapping(409, ApiCode.CONFLICT),
    grpc.StatusCode.FAILED_PRECONDITION: Mapping(409, ApiCode.FAILED_PRECONDITION),
    grpc.StatusCode.RESOURCE_EXHAUSTED: Mapping(429, ApiCode.RATE_LIMITED),
    grpc.StatusCode.UNAVAILABLE: Mapping(503, ApiCode.UNAVAILABLE),
    # A backend that stops (SIGTERM, a worker replaced) cancels the calls it had received and
    # not started yet: it is away, as with UNAVAILABLE. The gateway's own cancellation of a call
    # raises asyncio.CancelledError, never this status.
    grpc.StatusCode.CANCELLED: Mapping(503, ApiCode.UNAVAILABLE),
    grpc.StatusCode.DEADLINE_EXCEEDED: Mapping(504, ApiCode.DEADLINE_EXCEEDED),
}
INTERNAL = Mapping(500, ApiCode.INTERNAL_SERVER_ERROR)

# What the grpc library raises instead of a status, most specific first. A closed channel means
# the gateway is stopping: retry elsewhere. Anything else (ExecuteBatchError from metadata grpc
# refuses, …) is a call the gateway should never have built: a bug, answered without details.
BY_CLIENT_ERROR: tuple[tuple[type[Exception], Mapping], ...] = (
    (grpc.aio.UsageError, BY_STATUS[grpc.StatusCode.UNAVAILABLE]),
    (grpc.aio.BaseError, INTERNAL),
    (grpc.RpcError, INTERNAL),
)
# Every exception a gRPC call of the gateway can raise (AioRpcError is a grpc.RpcError).
GRPC_ERRORS: tuple[type[Exception], ...] = (grpc.aio.BaseError, grpc.RpcError)

# Domain codes that are more precise than their gRPC status.
BY_DOMAIN_CODE: dict[str, ApiCode] = {ErrorCode.OUT_OF_STOCK: ApiCode.OUT_OF_STOCK}

# HTTP-level refusals (the request itself, before any backend): status → code.
BY_HTTP_STATUS: dict[int, ApiCode] = {
    400: ApiCode.BAD_REQUEST,
    404: ApiCode.NOT_FOUND,
    405: ApiCode.METHOD_NOT_ALLOWED,
    413: ApiCode.PAYLOAD_TOO_LARGE,
    414: ApiCode.URI_TOO_LONG,
    415: ApiCode.UNSUPPORTED_MEDIA_TYPE,
    500: INTERNAL.code,
}

_SAFE_MESSAGES = {
    ApiCode.UNAVAILABLE: "a backend service is unavailable, retry later",
    ApiCode.DEADLINE_EXCEEDED: "a backend service did not answer in time",
}


class ApiError(Exception):
    """An expected failure, ready for either API: code, HTTP status, message, Retry-After."""

    def __init__(
        self, code: ApiCode, message: str, *, http_status: int, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s

    @classmethod
    def unauthenticated(cls, message: str = "a valid bearer token is required") -> ApiError:
        return cls(ApiCode.UNAUTHENTICATED, message, http_status=401)

    @classmethod
    def forbidden(cls, message: str = "this operation is for administrators") -> ApiError:
        return cls(ApiCode.FORBIDDEN, message, http_status=403)

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        mapping = BY_STATUS[grpc.StatusCode.NOT_FOUND]
        return cls(mapping.code, message, http_status=mapping.http_status)

    @classmethod
    def unavailable(cls, message: str = _SAFE_MESSAGES[ApiCode.UNAVAILABLE]) -> ApiError:
        mapping = BY_STATUS[grpc.StatusCode.UNAVAILABLE]
        return cls(mapping.code, message, http_status=mapping.http_status)

    @classmethod
    def deadline_exceeded(cls) -> ApiError:
        """What a backend call that ran out of time answers."""
        mapping = BY_STATUS[grpc.StatusCode.DEADLINE_EXCEEDED]
        return cls(mapping.code, _SAFE_MESSAGES[mapping.code], http_status=mapping.http_status)

    @classmethod
    def internal(cls) -> ApiError:
        """A bug: the code and a message that say nothing about it (it is logged instead)."""
        return cls(INTERNAL.code, "internal error", http_status=INTERNAL.http_status)

    @classmethod
    def bad_input(cls, message: str) -> ApiError:
        return cls(ApiCode.BAD_USER_INPUT, message, http_status=400)

    def copy(self) -> ApiError:
        """The same failure as a new exception, for another request to raise."""
        return ApiError(
            self.code, self.message, http_status=self.http_status, retry_after_s=self.retry_after_s
        )

    @classmethod
    def http(cls, status: int, message: str) -> ApiError:
        """A refusal of the HTTP request itself (wrong path, method, media type, size, shape)."""
        return cls(BY_HTTP_STATUS.get(status, ApiCode.BAD_REQUEST), message, http_status=status)


def from_grpc_error(exc: Exception) -> ApiError:
    """Translate any of GRPC_ERRORS: a status from the server, or the client library's own."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return from_rpc_error(exc)
    mapping = next((m for kind, m in BY_CLIENT_ERROR if isinstance(exc, kind)), INTERNAL)
    message = _SAFE_MESSAGES.get(mapping.code, "internal error")
    return ApiError(mapping.code, message, http_status=mapping.http_status)


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ApiError:
    """Translate a failed backend call; statuses outside the table are bugs and say nothing.

    db_service sends its code with every status it answers. A status without one was made by
    the gRPC library (a message too large, a call a stopping backend cancelled): only a backend
    out of reach, stopping or out of time is news for the client; any other is the gateway's
    failure, not an answer."""
    sent = read_error_metadata(exc.trailing_metadata())
    mapping = BY_STATUS.get(exc.code(), INTERNAL)
    if mapping is INTERNAL or (sent.code is None and mapping.code not in _SAFE_MESSAGES):
        return ApiError.internal()
    code = BY_DOMAIN_CODE.get(str(sent.code), mapping.code)
    message = _SAFE_MESSAGES.get(code) if sent.code is None else None
    return ApiError(
        code,
        message or exc.details() or code,
        http_status=mapping.http_status,
        retry_after_s=sent.retry_after_s,
    )
