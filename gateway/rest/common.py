"""What every REST route shares: JSON in and out, the error body, and one log record per call."""

from __future__ import annotations

import asyncio
import logging
import re
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

from gateway.errors import CANCELLED, ApiCode, ApiError
from gateway.jsonbody import JSONRejected, loads, read_body, require_json
from gateway.queryparams import RepeatedParameter, one_value
from gateway.runtime import Runtime
from gateway.scope import RequestScope

log = logging.getLogger(__name__)

Handler = Callable[[Request, RequestScope], Awaitable[Response]]


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, media_type="application/json", headers=headers
    )


def error_response(error: ApiError) -> Response:
    """The one place a failure becomes a REST response: `{"error": {"code", "message"}}`, with
    the headers its status calls for (GraphQL's shape is gateway/graphql/errors.py's)."""
    headers: dict[str, str] = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="merch-store"'
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    body = {"error": {"code": error.code, "message": error.message}}
    return json_response(body, error.http_status, headers)


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object body, refusing wrong types, bad JSON and oversized bodies."""
    settings = request.app.state.runtime.settings
    require_json(request)
    body = await read_body(request, settings.request_max_bytes)
    try:
        # Decimals, not floats: a price of 49.99 must arrive as exactly 49.99.
        data = loads(body, max_depth=settings.json_max_depth, decimals=True)
    except JSONRejected as exc:
        raise ApiError.bad_input(str(exc)) from None
    if not isinstance(data, dict):
        raise ApiError.bad_input("the body must be a JSON object")
    return data


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
        if expected == INTEGER and isinstance(value, Decimal) and value == value.to_integral():
            # JSON (and JSON Schema) call 1.0 an integer; it is the number 1. The range comes
            # first: int() of 1e999999999 would build a billion-digit number.
            if not INT32_MIN <= value <= INT32_MAX:
                raise ApiError.bad_input(f"field {name!r} is out of range")
            value = data[name] = int(value)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ApiError.bad_input(f"field {name!r} must be {_type_name(expected)}")
        if isinstance(value, int) and expected == INTEGER and not INT32_MIN <= value <= INT32_MAX:
            # Every integer of the API is an int32 in protobuf, which would refuse it with a 500.
            raise ApiError.bad_input(f"field {name!r} is out of range")
    return data


NUMBER = (int, Decimal)
INTEGER = (int,)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _type_name(types: tuple[type, ...]) -> str:
    if types == INTEGER:
        return "an integer"
    if Decimal in types:
        return "a number"
    return "a string"


def money(value: str) -> orjson.Fragment:
    """A decimal string from protobuf as a JSON number with two decimals, never via float."""
    return orjson.Fragment(value.encode())


def iso(ts: Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).isoformat()


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    """Query parameter `name` as an integer from `low` to `high`, `default` when absent."""
    try:
        raw = one_value(request.query_params, name)
    except RepeatedParameter as exc:
        raise ApiError.bad_input(str(exc)) from None
    if raw is None:
        return default
    value = _integer(name, raw)
    if not low <= value <= high:
        raise ApiError.bad_input(f"{name} must be {low} to {high}")
    return value


def path_id(request: Request, resource: str) -> int:
    """The `{id}` of a `resource` ("product", "order"). One no row can have (0, beyond int32)
    is not found, in db_service's words for a missing one."""
    raw = request.path_params["id"]
    value = _integer("id", raw)
    if not 1 <= value <= 2**31 - 1:
        raise ApiError(ApiCode.NOT_FOUND, f"{resource} {value} not found", http_status=404)
    return value


# An integer as a URL writes it: ASCII digits, perhaps a minus. int() alone also takes "+1",
# " 1", "1_000" and other scripts' digits ("１"), so one id would have many URLs.
_INTEGER = re.compile(r"-?[0-9]+")


def _integer(name: str, raw: str) -> int:
    try:
        if _INTEGER.fullmatch(raw):
            return int(raw)
    except ValueError:  # more digits than int() converts
        pass
    raise ApiError.bad_input(f"{name} must be an integer")


def resources(routes: list[Route]) -> list[Route]:
    """One Starlette route per path, dispatching on the method, so a 405's Allow names them all.

    (Starlette answers a wrong method with the methods of the first route whose path matched.)
    """
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for each in routes:
        for method in each.methods or ():
            by_path.setdefault(each.path, {})[method] = each.endpoint
    return [
        Route(path, _by_method(endpoints), methods=list(endpoints))
        for path, endpoints in by_path.items()
    ]


def _by_method(
    endpoints: Mapping[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await endpoints[request.method](request)

    return endpoint


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
        except asyncio.CancelledError:
            outcome = CANCELLED
            raise
        except Exception:
            log.exception("unexpected error in %s", operation)
            error = ApiError.internal()
            outcome = error.code
            return error_response(error)
        finally:
            runtime.record(
                kind="rest",
                operation=operation,
                user=scope.user_label,
                outcome=outcome,
                started=started,
                request_id=scope.request_id,
                message=getattr(request.state, "log_message", "") if outcome == "ok" else "",
            )

    return Route(path, endpoint, methods=[method])


def log_message(request: Request, message: str) -> None:
    """A seed-style line for this route's log record (`User 'peter' is created`)."""
    request.state.log_message = message
