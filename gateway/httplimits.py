"""The gateway's HTTP protocol: uvicorn's (writing each response once), with the request head
bounded in size and in time.

    uvicorn.Config(app, http=BoundedHttpProtocol, ...)

uvicorn (httptools) buffers a request line and headers of any size, and waits for them without
end: one client could send a header of hundreds of megabytes (memory), or hold thousands of
connections open by sending nothing or a byte now and then (every file descriptor, the
"slowloris" attack). A load balancer in front usually bounds both; the gateway does too, so that
it is safe when reached directly:

- a head (request line and headers) over its bound is answered 431 and the connection closed
  before more of it is kept: HEADERS_MAX_BYTES for the headers, plus REQUEST_MAX_BYTES for the
  request line, which may carry a GraphQL query string (`bounded_protocol`);
- a connection must deliver each request's whole head within HEAD_TIMEOUT_S of opening or of
  that request's first byte, or is closed (nginx's client_header_timeout does the same).
  Between requests, uvicorn's keep-alive timeout closes an idle connection; a body's pace is
  bounded by the app (gateway.jsonbody.read_body).
"""

from __future__ import annotations

import asyncio

from gateway.onewrite import OneWriteHttpProtocol

HEADERS_MAX_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 20.0

_TOO_LARGE_BODY = b"the request line and headers are too large\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)


class BoundedHttpProtocol(OneWriteHttpProtocol):
    """OneWriteHttpProtocol whose request heads are bounded (see the module docstring)."""

    head_max_bytes = HEADERS_MAX_BYTES
    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._loop = asyncio.get_running_loop()
        self._head_bytes = 0
        self._in_head = True
        self._head_started = self._loop.time()
        self._head_timer: asyncio.TimerHandle | None = self._loop.call_later(
            self.head_timeout_s, self._check_head
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # Only the head's own bytes: a read may also carry the body behind it (413 is the
            # app's to answer) or more pipelined requests, each a head of its own. A next head
            # beginning inside this read is counted from the next read on.
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.head_max_bytes:
                self._in_head = False
                self.transport.write(_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the next request of a kept-alive connection
            self._in_head = True
            self._head_bytes = 0
            self._head_started = self._loop.time()
            # One timer per connection, not one per request (2 µs each): a timer still pending
            # from an earlier request checks this head when it fires.
            if self._head_timer is None:
                self._head_timer = self._loop.call_later(self.head_timeout_s, self._check_head)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def _check_head(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        left = self._head_started + self.head_timeout_s - self._loop.time()
        if left > 0:
            self._head_timer = self._loop.call_later(left, self._check_head)
        else:
            self.transport.close()


def bounded_protocol(request_max_bytes: int) -> type[BoundedHttpProtocol]:
    """The protocol for a gateway whose request line may carry REQUEST_MAX_BYTES of query."""
    return type(
        "BoundedHttpProtocol",
        (BoundedHttpProtocol,),
        {"head_max_bytes": request_max_bytes + HEADERS_MAX_BYTES},
    )
