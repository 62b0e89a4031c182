"""The gateway's HTTP protocol writes a response once: the same bytes as uvicorn's, in one write."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.graphql.pipeline import JSONBytes
from gateway.onewrite import WRITE_NOW_BYTES, CoalescedWrites, OneWriteHttpProtocol

REQUEST = b"POST /graphql HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"
BODY = b'{"data":{"product":{"id":"1"}}}'


class RecordingTransport(asyncio.Transport):
    """A socket's transport as the protocol sees it: it records what it is asked to do."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.calls.append("write")

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None, "a socket's transport always has its protocol"
        return self.protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8081)}.get(
            name, default
        )


async def _json_app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await JSONBytes(BODY)(scope, receive, send)


async def _serve_one(protocol_class: type[HttpToolsProtocol]) -> RecordingTransport:
    """One request through `protocol_class` on a recording transport; its writes once answered."""
    config = uvicorn.Config(_json_app, lifespan="off", log_level="warning")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(REQUEST)
    for _ in range(100):  # the app runs as a task; answered within a few turns
        if b"".join(transport.writes).endswith(BODY):
            break
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


async def test_a_response_leaves_in_one_write_with_uvicorn_s_own_bytes() -> None:
    # Given the same request answered by uvicorn's protocol and by the gateway's
    stock = await _serve_one(HttpToolsProtocol)
    ours = await _serve_one(OneWriteHttpProtocol)
    # Then uvicorn wrote head and body apart, the gateway's protocol the same bytes at once
    assert len(stock.writes) == 2
    assert len(ours.writes) == 1
    assert ours.writes[0] == b"".join(stock.writes)
    assert ours.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")


async def test_writes_of_one_turn_are_joined_in_order() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"head ")
    writes.write(bytearray(b"body"))
    assert transport.writes == []
    assert writes.get_write_buffer_size() == len(b"head body")
    await asyncio.sleep(0)  # the end of this turn
    assert transport.writes == [b"head body"]
    assert writes.get_write_buffer_size() == 0


async def test_close_sends_what_is_held_first() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"last words")
    writes.close()
    assert transport.calls == ["write", "close"]
    assert transport.writes == [b"last words"]
    await asyncio.sleep(0)
    assert transport.calls == ["write", "close"]  # nothing sent twice


async def test_abort_drops_what_is_held() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"never sent")
    writes.abort()
    await asyncio.sleep(0)
    assert transport.calls == ["abort"]


async def test_a_large_body_is_not_held() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"head")
    writes.write(b"x" * WRITE_NOW_BYTES)
    assert transport.writes == [b"head" + b"x" * WRITE_NOW_BYTES]


async def test_nothing_is_written_to_a_closed_connection() -> None:
    transport = RecordingTransport()
    writes = CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"too late")
    transport.closing = True  # the peer went away in this turn
    await asyncio.sleep(0)
    assert transport.writes == []
