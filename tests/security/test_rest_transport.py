"""Matrix, REST transport: wrong paths, methods, media types, JSON and sizes, in the error shape.

Every refusal is `{"error": {"code", "message"}}` with its status (404, 405 with `Allow`, 415,
400, 413), never a 5xx or a plain-text page, and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Stack
from tests.security.conftest import Actors, assert_safe, unchanged

MAX_BYTES = 64 * 1024
JSON = {"Content-Type": "application/json"}
LOGIN = "/api/v1/users/login"


async def _chunks(size: int) -> AsyncIterator[bytes]:
    chunk = b" " * 8192
    for _ in range(size // len(chunk) + 1):
        yield chunk


def _raw(content: bytes) -> Callable[[], dict[str, Any]]:
    return lambda: {"content": content, "headers": JSON}


# (case, who, method, path, request arguments, expected status, expected code)
ROWS: list[tuple[str, str, str, str, Callable[[], dict[str, Any]], int, str]] = [
    ("unknown API version", "anonymous", "GET", "/api/v2/products", dict, 404, "NOT_FOUND"),
    ("unknown resource", "anonymous", "GET", "/api/v1/coupons", dict, 404, "NOT_FOUND"),
    ("path under a product", "anonymous", "GET", "/api/v1/products/1/reviews", dict, 404,
     "NOT_FOUND"),
    ("path traversal", "anonymous", "GET", "/api/v1/..%2f..%2fetc%2fpasswd", dict, 404,
     "NOT_FOUND"),
    # Not a redirect: Starlette's would answer 307 with a Location built from the Host header.
    ("a trailing slash", "anonymous", "GET", "/api/v1/products/", dict, 404, "NOT_FOUND"),
    ("a trailing slash on an order", "alice", "POST", "/api/v1/orders/",
     lambda: {"json": {"product_id": 1, "quantity": 1}}, 404, "NOT_FOUND"),
    ("DELETE on the product list", "admin", "DELETE", "/api/v1/products", dict, 405,
     "METHOD_NOT_ALLOWED"),
    ("PATCH on an order", "alice", "PATCH", "/api/v1/orders/{order}", dict, 405,
     "METHOD_NOT_ALLOWED"),
    ("POST on the welcome", "anonymous", "POST", "/api/v1", dict, 405, "METHOD_NOT_ALLOWED"),
    ("OPTIONS on products", "anonymous", "OPTIONS", "/api/v1/products", dict, 405,
     "METHOD_NOT_ALLOWED"),
    ("POST on /healthz", "anonymous", "POST", "/healthz", dict, 405, "METHOD_NOT_ALLOWED"),
    ("DELETE on /metrics", "anonymous", "DELETE", "/metrics", dict, 405, "METHOD_NOT_ALLOWED"),
    ("text/plain login", "anonymous", "POST", LOGIN, lambda: {"content": b'{"username": "a"}',
     "headers": {"Content-Type": "text/plain"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("form login", "anonymous", "POST", LOGIN, lambda: {"data": {"username": "a",
     "password": "b"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("multipart login", "anonymous", "POST", LOGIN, lambda: {"files": {"f": ("f", b"{}")}},
     415, "UNSUPPORTED_MEDIA_TYPE"),
    ("XML order", "alice", "POST", "/api/v1/orders", lambda: {"content": b"<order/>",
     "headers": {"Content-Type": "application/xml"}}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("login with no Content-Type", "anonymous", "POST", LOGIN, lambda: {"content": b"{}"}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("text/plain product update", "admin", "PUT", "/api/v1/products/{product}",
     lambda: {"content": b'{"stock": 0}', "headers": {"Content-Type": "text/plain"}}, 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("malformed JSON", "anonymous", "POST", LOGIN, _raw(b'{"username": "a",'), 400,
     "BAD_USER_INPUT"),
    ("trailing garbage", "anonymous", "POST", LOGIN, _raw(b'{"username": "a"} x'), 400,
     "BAD_USER_INPUT"),
    ("a JSON array", "anonymous", "POST", LOGIN, _raw(b'[{"username": "a"}]'), 400,
     "BAD_USER_INPUT"),
    ("a JSON string", "anonymous", "POST", LOGIN, _raw(b'"login"'), 400, "BAD_USER_INPUT"),
    ("JSON null", "anonymous", "POST", LOGIN, _raw(b"null"), 400, "BAD_USER_INPUT"),
    ("an empty body", "anonymous", "POST", LOGIN, _raw(b""), 400, "BAD_USER_INPUT"),
    ("NaN", "alice", "POST", "/api/v1/orders", _raw(b'{"product_id": NaN, "quantity": 1}'), 400,
     "BAD_USER_INPUT"),
    ("Infinity", "admin", "PUT", "/api/v1/products/{product}", _raw(b'{"price": Infinity}'),
     400, "BAD_USER_INPUT"),
    ("invalid UTF-8", "anonymous", "POST", LOGIN, _raw(b'{"username": "\xff\xfe"}'), 400,
     "BAD_USER_INPUT"),
    ("nested 40 deep", "anonymous", "POST", LOGIN, _raw(b'{"username": ' + b"[" * 40
     + b"]" * 40 + b"}"), 400, "BAD_USER_INPUT"),
    ("nested 30 000 deep", "anonymous", "POST", LOGIN, _raw(b'{"username": ' + b"[" * 30_000
     + b"]" * 30_000 + b"}"), 400, "BAD_USER_INPUT"),
    ("oversized, declared", "anonymous", "POST", LOGIN, _raw(b'{"username": "'
     + b"a" * MAX_BYTES + b'"}'), 413, "PAYLOAD_TOO_LARGE"),
    ("oversized, chunked", "anonymous", "POST", LOGIN, lambda: {"content": _chunks(MAX_BYTES),
     "headers": JSON}, 413, "PAYLOAD_TOO_LARGE"),
    ("oversized product update", "admin", "PUT", "/api/v1/products/{product}",
     lambda: {"json": {"description": "d" * MAX_BYTES}}, 413, "PAYLOAD_TOO_LARGE"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "who", "method", "path", "make_request", "status", "code"),
    ROWS,
    ids=[row[0] for row in ROWS],
)
async def test_rest_transport_refusals(
    client: httpx.AsyncClient,
    stack: Stack,
    actors: Actors,
    case: str,
    who: str,
    method: str,
    path: str,
    make_request: Callable[[], dict[str, Any]],
    status: int,
    code: str,
) -> None:
    # given a request that is wrong at the HTTP level
    arguments = make_request()
    headers = {**actors.headers(who), **arguments.pop("headers", {})}
    url = path.format(order=actors.alice_order["id"], product=actors.product["id"])

    # when it is sent
    async with unchanged(stack):
        response = await client.request(method, url, headers=headers, **arguments)

    # then it is refused with its status in the JSON error shape, and nothing changed
    assert_safe(response)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    if status == 405:
        assert response.headers["allow"]


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    # given the product list; when it is asked for with HEAD
    response = await client.head("/api/v1/products")

    # then it answers 200 with no body
    assert response.status_code == 200
    assert response.content == b""


def _login_count(metrics: str, outcome: str) -> float:
    line = f'gateway_requests_total{{kind="rest",operation="POST {LOGIN}",outcome="{outcome}"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0][len(line) :]) if found else 0.0


async def _hang_up_mid_body(stack: Stack, path: str) -> None:
    """Send the headers and half a body, then close the connection."""
    url = httpx.URL(stack.gateway_url)
    _, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        'Content-Length: 1000\r\n\r\n{"username": '.encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_client_that_hangs_up_mid_body_is_no_internal_error(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given the REST logins counted so far, and the gateway's log so far
    before = (await client.get("/metrics")).text
    log_before = (stack.log_dir / "gateway.log").read_text()

    # when clients hang up halfway through their bodies, on REST and on GraphQL
    await _hang_up_mid_body(stack, LOGIN)
    await _hang_up_mid_body(stack, "/graphql")

    # then the REST one is counted as a request its client closed (nginx's 499)
    deadline = time.monotonic() + 10
    while True:
        after = (await client.get("/metrics")).text
        closed = _login_count(after, "CLIENT_CLOSED_REQUEST")
        if closed > _login_count(before, "CLIENT_CLOSED_REQUEST") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)  # polls the metrics until the deadline
    assert closed == _login_count(before, "CLIENT_CLOSED_REQUEST") + 1
    # and neither is counted or logged as a bug of the gateway
    internal = "INTERNAL_SERVER_ERROR"
    assert _login_count(after, internal) == _login_count(before, internal)
    new_log = (stack.log_dir / "gateway.log").read_text()[len(log_before) :]
    assert "ClientDisconnect" not in new_log
    assert "unexpected error" not in new_log


async def test_request_headers_are_bounded(stack: Stack) -> None:
    # given one anonymous request whose header block is 8 MB
    url = urlsplit(stack.gateway_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 8_000_000 + b"\r\n\r\n")
    try:
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
    except (ConnectionError, OSError):
        status = b"closed"
    finally:
        writer.close()

    # then the gateway refuses it instead of buffering it all and answering 200: with 431, or
    # by closing while the client still sends (which resets the connection before it can read)
    assert status.startswith(b"HTTP/1.1 431 ") or status in (b"", b"closed"), status
