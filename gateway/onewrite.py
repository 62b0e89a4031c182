"""uvicorn's HTTP protocol, writing each response to its socket once instead of twice.

    uvicorn.Config(app, http=OneWriteHttpProtocol, ...)

uvicorn writes a response's status line and headers when the app sends `http.response.start`
and its body when the app sends `http.response.body`, and uvloop sends each write at once: two
`send` system calls per response, and two wake-ups of the client, which may read the head
alone. On loopback TCP every send also runs the receiver's side of the network stack, and the
head's send was 7 % of the gateway's CPU per product(id) (bench profile).

`CoalescedWrites` sits between the protocol and its transport: the writes made in one turn of
the event loop are joined and sent at the end of that turn, so a response (and pipelined
responses answered in the same turn) leaves in one send. Order is kept; a write that brings the
buffer over WRITE_NOW_BYTES goes out at once, so a large or streamed body is not held; closing
sends what is held first. Everything else is the transport's own behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

WRITE_NOW_BYTES = 64 * 1024


class CoalescedWrites(asyncio.Transport):
    """A transport whose writes of one event-loop turn reach the wrapped one as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= WRITE_NOW_BYTES:
            self._flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        if not self._held:
            return
        held = self._held
        self._held = []
        self._held_bytes = 0
        if self._transport.is_closing():
            return  # the connection is gone: the transport would only count the lost write
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._held_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over CoalescedWrites (a WebSocket upgraded from it too)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        stream = cast(asyncio.Transport, transport)
        super().connection_made(CoalescedWrites(stream, asyncio.get_running_loop()))
