"""What every REST route shares: JSON in and out, the error body, and one log record per call."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import ApiError
from gateway.runtime import Runtime
from gateway.scope import RequestScope

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[Request, RequestScope], Awaitable[Response]]


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, media_type="application/json", headers=headers
    )


def error_response(error: ApiError) -> Response:
    headers: dict[str, str] = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="merch-store"'
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    body = {"error": {"code": error.code, "message": error.message}}
    return json_response(body, error.http_status, headers)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object body, refusing wrong types, bad JSON and oversized bodies."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(
            "UNSUPPORTED_MEDIA_TYPE",
            "send a JSON body with Content-Type: application/json",
            http_status=415,
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    try:
        # Decimals, not floats: a price of 49.99 must arrive as exactly 49.99.
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise ApiError.bad_input("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError.bad_input("the body must be a JSON object")
    return data


def _too_large() -> ApiError:
    return ApiError(
        "PAYLOAD_TOO_LARGE", f"the body is larger than {MAX_BODY_BYTES} bytes", http_status=413
    )


def fields(
    data: dict[str, Any],
    *,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    types: Mapping[str, tuple[type, ...]] | None = None,
) -> dict[str, Any]:
    """Check a JSON body's keys and value types; unknown keys are refused, not ignored."""
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise ApiError.bad_input(f"unknown field {unknown[0]!r}")
    missing = [name for name in required if name not in data]
    if missing:
        raise ApiError.bad_input(f"missing field {missing[0]!r}")
    for name, value in data.items():
        expected = (types or {}).get(name, (str,))
        if value is None and name in optional:
            continue
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ApiError.bad_input(f"field {name!r} must be {_type_name(expected)}")
    return data


NUMBER = (int, Decimal)
INTEGER = (int,)


def _type_name(types: tuple[type, ...]) -> str:
    if types == INTEGER:
        return "an integer"
    if Decimal in types:
        return "a number"
    return "a string"


def money(value: str) -> orjson.Fragment:
    """A decimal string from protobuf as a JSON number with two decimals, never via float."""
    return orjson.Fragment(value.encode())


def decimal_text(value: int | Decimal | str) -> str:
    """A client's price as the decimal string db_service validates (format checks are its job)."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def iso(ts: Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat()


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.bad_input(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError.bad_input(f"{name} must be {low} to {high}")
    return value


def path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    try:
        value = int(raw)
    except ValueError:
        raise ApiError.bad_input(f"{name} must be an integer") from None
    if not 1 <= value <= 2**31 - 1:
        raise ApiError("NOT_FOUND", f"{name} {raw} not found", http_status=404)
    return value


def route(method: str, path: str, handler: Handler, *, protected: bool = True) -> Route:
    """A REST route: builds the request scope, refuses bad tokens early, maps errors, logs once."""
    operation = f"{method} {path}"

    async def endpoint(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        scope = runtime.scope_for(request)
        started = time.perf_counter()
        outcome = "ok"
        try:
            if protected:
                scope.require_identity()
            return await handler(request, scope)
        except ApiError as exc:
            outcome = exc.code
            return error_response(exc)
        except Exception:
            log.exception("unexpected error in %s", operation)
            outcome = "INTERNAL_SERVER_ERROR"
            return error_response(ApiError(outcome, "internal error", http_status=500))
        finally:
            runtime.record(
                kind="rest",
                operation=operation,
                user=scope.user_label,
                outcome=outcome,
                started=started,
                request_id=scope.request_id,
            )

    return Route(path, endpoint, methods=[method])
