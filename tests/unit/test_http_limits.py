"""The gateway's HTTP protocol bounds each request's line and headers in size and in time, and a
handler bounds how long a body may take (gateway.httplimits, gateway.jsonbody)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from gateway.httplimits import BoundedHttpProtocol, bounded_protocol
from tests.unit.test_one_write import RecordingTransport

OK = b"HTTP/1.1 200 OK\r\n"


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):  # the whole body first, as the handlers read it
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class _Quick(BoundedHttpProtocol):
    head_max_bytes = 1024
    head_timeout_s = 0.05
    body_timeout_s = 0.05


def _connect() -> tuple[_Quick, RecordingTransport]:
    config = uvicorn.Config(_app, lifespan="off", log_level="warning")
    config.load()
    protocol = _Quick(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    transport.set_protocol(protocol)  # as the event loop's own transport has it
    protocol.connection_made(transport)
    return protocol, transport


async def _until(predicate: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + 5
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {message}")
        await asyncio.sleep(0.01)


async def _answered_once() -> tuple[_Quick, RecordingTransport]:
    """A connection kept alive after one request was answered."""
    protocol, transport = _connect()
    protocol.data_received(b"GET /api/v1 HTTP/1.1\r\nhost: t\r\n\r\n")
    await _until(lambda: b"".join(transport.writes).startswith(OK), "no answer")
    return protocol, transport


async def test_headers_over_the_bound_are_431_and_the_connection_closed() -> None:
    # given a connection; when a request's headers run past the bound
    protocol, transport = _connect()
    protocol.data_received(b"GET /api/v1 HTTP/1.1\r\nhost: t\r\nx-padding: " + b"a" * 2000)

    # then it is answered 431 and closed, without waiting for the rest
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 431 ")
    assert transport.closing
    protocol.connection_lost(None)


async def test_a_kept_alive_connection_s_next_request_is_bounded_too() -> None:
    # given a connection that was answered once
    protocol, transport = await _answered_once()

    # when its next request's headers run past the bound, in pieces
    protocol.data_received(b"GET /api/v1 HTTP/1.1\r\nhost: t\r\nx-padding: ")
    for _ in range(4):
        protocol.data_received(b"a" * 500)

    # then that one is 431, and the connection closed
    assert b"HTTP/1.1 431 " in b"".join(transport.writes)
    assert transport.closing
    protocol.connection_lost(None)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /api/v1 HTTP/1.1\r\nhost: t\r\n"],
    ids=["nothing", "half the headers"],
)
async def test_a_head_that_does_not_arrive_in_time_closes_the_connection(sent: bytes) -> None:
    # given a connection that sends `sent` and then nothing (slowloris)
    protocol, transport = _connect()
    protocol.data_received(sent)

    # then it is closed once the head's time is up, without an answer
    await _until(lambda: transport.closing, "the connection was kept open")
    assert transport.writes == []
    protocol.connection_lost(None)


def test_the_head_bound_leaves_room_for_the_largest_query_string() -> None:
    assert bounded_protocol(65_536).head_max_bytes == 65_536 + 64 * 1024


async def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed() -> None:
    # given a connection whose request announces 10 bytes of body and sends 2 (slowloris, body)
    protocol, transport = _connect()
    protocol.data_received(b"POST /graphql HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\n{}")

    # then, once the body's time is up, it is answered 408 and closed
    await _until(lambda: transport.closing, "the connection was kept open")
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 408 ")
    protocol.connection_lost(None)


async def test_a_websocket_upgrade_is_not_timed_as_a_body() -> None:
    # given a connection upgraded to a WebSocket (its protocol is uvicorn's WebSocket one now)
    protocol, _ = _connect()
    protocol.data_received(
        b"GET /graphql HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
        b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )

    # then this protocol has nothing under way to time: the socket is not closed by it
    assert not protocol.timing
    protocol.connection_lost(None)


async def test_a_kept_alive_connection_s_next_head_must_arrive_in_time_too() -> None:
    # given a connection that was answered once, and sends half its next request's headers
    protocol, transport = await _answered_once()
    protocol.data_received(b"GET /api/v1 HTTP/1.1\r\nhost: t\r\n")

    # then it is closed once that head's time is up, with no second answer
    await _until(lambda: transport.closing, "the connection was kept open")
    assert b"".join(transport.writes).count(b"HTTP/1.1 ") == 1
    protocol.connection_lost(None)


async def test_a_body_arriving_with_its_head_is_no_part_of_the_head() -> None:
    # given a connection whose request's head is small and whose body arrives in the same read
    protocol, transport = _connect()
    head = b"POST /api/v1 HTTP/1.1\r\nhost: t\r\ncontent-length: 2000\r\n\r\n"

    # when head and body together run past the head's bound
    protocol.data_received(head + b"a" * 2000)

    # then the request reaches the app (which answers, or refuses the body with its own 413)
    await _until(lambda: bool(transport.writes), "no answer")
    assert b"".join(transport.writes).startswith(OK)
    protocol.connection_lost(None)


async def test_pipelined_requests_in_one_read_are_each_their_own_head() -> None:
    # given 40 small requests a client pipelines, arriving in one read of more than the bound
    request = b"GET /api/v1 HTTP/1.1\r\nhost: t\r\n\r\n"
    protocol, transport = _connect()

    # when they are read
    protocol.data_received(request * 40)

    # then each is answered, none refused as a head too large
    await _until(lambda: b"".join(transport.writes).count(OK) == 40, "not all answered")
    assert b" 431 " not in b"".join(transport.writes)
    protocol.connection_lost(None)


async def test_a_head_over_the_bound_is_431_even_when_it_ends_in_the_same_read() -> None:
    # given a connection; when a whole head over the bound arrives in one read, with a body
    protocol, transport = _connect()
    protocol.data_received(
        b"POST /api/v1 HTTP/1.1\r\nhost: t\r\nx-padding: "
        + b"a" * 2000
        + b"\r\ncontent-length: 2\r\n\r\n{}"
    )

    # then it is 431 and closed
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 431 ")
    assert transport.closing
    protocol.connection_lost(None)
