"""Untrusted request bodies: JSON only, read with a size bound, parsed with a nesting bound.

Both APIs read bodies through here, so a hostile body is refused the same way wherever it is
sent: the wrong media type is a 415, a body over the limit is a 413 before a byte of it is
parsed (declared or streamed), and JSON that is malformed, uses NaN/Infinity or nests deeper
than the limit is refused with a ValueError (never a RecursionError, never a 500).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from gateway.errors import ApiError

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
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large(max_bytes)
    return bytes(body)


def too_large(max_bytes: int) -> ApiError:
    return ApiError.http(413, f"the body is larger than {max_bytes} bytes")


def _refuse_constant(name: str) -> Any:
    raise JSONRejected(f"{name} is not a JSON number")


def loads(data: bytes | str, *, max_depth: int, decimals: bool = False) -> Any:
    """Parse JSON, refusing NaN/Infinity and arrays or objects nested deeper than `max_depth`.

    `decimals` parses fractions as Decimal, so a price of 49.99 stays exactly 49.99.
    """
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
        raise JSONRejected("the body is not valid JSON") from None
    if _deeper_than(value, max_depth):
        raise JSONRejected(f"the JSON is nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether arrays/objects nest deeper than `max_depth`; iterative, so it cannot recurse."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
