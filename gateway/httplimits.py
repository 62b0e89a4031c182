"""The gateway's HTTP protocol: uvicorn's (writing each response once), with each request's
head bounded in size and time, and its body in time.

    uvicorn.Config(app, http=bounded_protocol(settings.request_max_bytes), ...)

uvicorn (httptools) buffers a request line and headers of any size, and waits for a head or a
body without end: one client could send a header of hundreds of megabytes (memory), or hold
thousands of connections open by sending nothing, or a byte now and then (every file
descriptor, the "slowloris" attack). A load balancer in front usually bounds all of it; the
gateway does too, so that it is safe when reached directly:

- a head (request line and headers) over its bound is answered 431 and the connection closed
  before more of it is kept: HEADERS_MAX_BYTES for the headers, plus REQUEST_MAX_BYTES for the
  request line, which may carry a GraphQL query string (`bounded_protocol`);
- each request's head must arrive whole within HEAD_TIMEOUT_S of the connection opening or of
  its first byte (nginx's client_header_timeout), and its body within BODY_TIMEOUT_S of its
  head; else the connection is closed, after a 408 when no response has begun.
  Between requests, uvicorn's keep-alive timeout closes an idle connection.

One timer per connection, not one per request (arming and cancelling one costs 2 µs, an
`asyncio.timeout` around a body read 5-8 µs), and no clock read per request: when the timer
fires it dates a head or body begun since it last looked, checks the one under way against its
start, and re-arms for what is left; so a limit holds within twice its length at worst.
"""

from __future__ import annotations

import asyncio

from gateway.onewrite import OneWriteHttpProtocol

HEADERS_MAX_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 20.0
BODY_TIMEOUT_S = 30.0


def _plain(status: bytes, text: bytes) -> bytes:
    """A whole plain-text response that closes its connection."""
    return (
        b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, len(text), text)
    )


_TOO_LARGE = _plain(
    b"431 Request Header Fields Too Large", b"the request line and headers are too large\n"
)
_TOO_SLOW = _plain(b"408 Request Timeout", b"the request body did not arrive in time\n")


class BoundedHttpProtocol(OneWriteHttpProtocol):
    """OneWriteHttpProtocol whose requests are bounded (see the module docstring)."""

    head_max_bytes = HEADERS_MAX_BYTES
    head_timeout_s = HEAD_TIMEOUT_S
    body_timeout_s = BODY_TIMEOUT_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._loop = asyncio.get_running_loop()
        self._head_bytes = 0
        self._in_head = True
        self._body: object | None = None  # the request whose body is being timed
        self._started: float | None = self._loop.time()  # of the head or body under way
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            self.head_timeout_s, self._check
        )

    @property
    def timing(self) -> bool:
        """Whether a head or a body is under way here, with its time running."""
        return self._in_head or self._body_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    # The only per-request work: a few attribute reads around uvicorn's own data_received (no
    # parser callback of ours, no clock read): a head or body is dated by the timer when it
    # next looks, so each is bounded within its limit of that, twice its limit at most.
    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if not self._in_head and (cycle is None or not cycle.more_body):
            self._in_head = True  # no body under way: a next head begins
            self._head_bytes = 0
            self._started = None
            if self._timer is None:
                self._timer = self._loop.call_later(self.head_timeout_s, self._check)
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
        if self.cycle is not cycle:  # a head ended here: uvicorn begins a request's cycle then
            self._in_head = False
            if self.cycle.more_body:  # and its body is still to come
                self._body = self.cycle
                self._started = None
                if self._timer is None:
                    self._timer = self._loop.call_later(self.body_timeout_s, self._check)
        elif self._in_head and self.transport.get_protocol() is not self:
            self._in_head = False  # upgraded (a WebSocket): nothing of it is timed here any more

    def _body_pending(self) -> bool:
        cycle = self.cycle
        return cycle is not None and cycle is self._body and cycle.more_body

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._in_head:
            limit = self.head_timeout_s
        elif self._body_pending():
            limit = self.body_timeout_s
        else:
            return
        now = self._loop.time()
        if self._started is None:  # begun since the last look: dated now
            self._started = now
        left = self._started + limit - now
        if left > 0:
            self._timer = self._loop.call_later(left, self._check)
            return
        if not self._in_head and not self.cycle.response_started:
            self.transport.write(_TOO_SLOW)
        self._in_head, self._body = False, None
        self.transport.close()


def bounded_protocol(request_max_bytes: int) -> type[BoundedHttpProtocol]:
    """The protocol for a gateway whose request line may carry REQUEST_MAX_BYTES of query."""
    return type(
        "BoundedHttpProtocol",
        (BoundedHttpProtocol,),
        {"head_max_bytes": request_max_bytes + HEADERS_MAX_BYTES},
    )
