"""Untrusted request bodies: JSON only, read with a size bound, parsed with a nesting bound.

Both APIs read bodies through here, so a hostile body is refused the same way wherever it is
sent: the wrong media type is a 415, a body over the limit is a 413 before a byte of it is
parsed (declared or streamed), and JSON that is malformed, uses NaN/Infinity, escapes half a
surrogate pair (not text) or nests deeper than the limit is refused with a ValueError (never a
RecursionError, never a 500).
"""

from __future__ import annotations

import enum
import json
import re
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from gateway.errors import ApiCode, ApiError

JSON_MEDIA_TYPE = "application/json"


class JSONRejected(ValueError):
    """The bytes are not JSON we accept; the message is safe to show the client."""


def require_json(request: Request) -> None:
    """Refuse any body that is not declared as `application/json` (charset parameters allowed)."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        raise ApiError.http(415, "send a JSON body with Content-Type: application/json")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    body = bytearray()
    # Chunked bodies declare no length: count while reading and stop at the limit.
    try:
        # (How long a body may take is the HTTP protocol's to bound: gateway.httplimits.)
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise too_large(max_bytes)
    except ClientDisconnect:
        raise ApiError(
            ApiCode.CLIENT_CLOSED_REQUEST,
            "the client closed the connection before sending its whole body",
            http_status=499,
        ) from None
    return bytes(body)


def too_large(max_bytes: int) -> ApiError:
    return ApiError.http(413, f"the body is larger than {max_bytes} bytes")


def _refuse_constant(name: str) -> Any:
    raise JSONRejected(f"{name} is not a JSON number")


def loads(data: bytes | str, *, max_depth: int, decimals: bool = False) -> Any:
    """Parse JSON, refusing NaN/Infinity and arrays or objects nested deeper than `max_depth`.

    `decimals` parses fractions as Decimal, so a price of 49.99 stays exactly 49.99.

    orjson parses first (a GraphQL body's json.loads was ~4 % of a gateway worker's CPU); the
    standard library's parser, the reference, decides whenever orjson refuses the text or its
    result holds a float (orjson's floats include integers beyond 64 bits and, refused, numbers
    that overflow to infinity), so the answer is always the reference's
    (tests/unit/test_json_loads.py compares the two).
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _loads_reference(data, max_depth=max_depth, decimals=decimals)
    shape = _shape(value, max_depth)
    if shape is _Shape.TOO_DEEP:
        raise JSONRejected(f"the JSON is nested deeper than {max_depth} levels")
    if shape is _Shape.HAS_FLOAT:
        return _loads_reference(data, max_depth=max_depth, decimals=decimals)
    return value


def _loads_reference(data: bytes | str, *, max_depth: int, decimals: bool) -> Any:
    try:
        value = json.loads(
            data,
            parse_float=Decimal if decimals else float,
            parse_constant=_refuse_constant,
        )
    except RecursionError:
        # The C decoder gives up cleanly far beyond any sane limit; report it as one.
        raise JSONRejected(f"the JSON is nested deeper than {max_depth} levels") from None
    except JSONRejected:
        raise
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise JSONRejected("the JSON is not valid") from None
    if _shape(value, max_depth) is _Shape.TOO_DEEP:
        raise JSONRejected(f"the JSON is nested deeper than {max_depth} levels")
    if _has_lone_surrogate(value):
        # JSON's grammar allows an escape such as \ud800 alone, but it is no character: no
        # backend could store it (protobuf refuses it), and orjson refuses it too.
        raise JSONRejected(
            "the JSON holds a string that is not Unicode text (a lone \\uD800-\\uDFFF escape)"
        )
    return value


class _Shape(enum.Enum):
    PLAIN = "plain"
    HAS_FLOAT = "has float"
    TOO_DEEP = "too deep"


def _shape(value: Any, max_depth: int) -> _Shape:
    """TOO_DEEP if arrays/objects nest deeper than `max_depth`, else HAS_FLOAT if a float (or a
    Decimal) is anywhere in it; iterative, so it cannot recurse."""
    has_float = False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            has_float = has_float or isinstance(item, float | Decimal)
            continue
        if depth > max_depth:
            return _Shape.TOO_DEEP
        stack.extend((child, depth + 1) for child in children)
    return _Shape.HAS_FLOAT if has_float else _Shape.PLAIN


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string anywhere in `value` (a key too) holds a surrogate code point: the
    standard library's parser makes one of each escape it cannot pair. Iterative."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
