"""The one record a REST route writes per call, whatever ends the call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from gateway.identity import ANONYMOUS
from gateway.rest.common import log_message, route
from gateway.scope import RequestScope


class _Runtime:
    """What a route asks of the runtime: a scope per request and one record per call."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def scope_for(self, request: Request) -> RequestScope:
        return RequestScope(db=None, credentials=ANONYMOUS, request_id="r-1")  # type: ignore[arg-type]

    def record(self, **fields: Any) -> None:
        self.records.append(fields)


async def test_a_handler_cancelled_mid_call_is_recorded_as_cancelled_not_ok() -> None:
    # given a route whose handler has set its seed-style line and then waits (on db_service,
    # say) when the gateway is forced to stop
    started = asyncio.Event()

    async def handler(request: Request, scope: RequestScope) -> Response:
        log_message(request, "User 'peter' is created")
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("never reached")

    runtime = _Runtime()
    app = Starlette()
    app.state.runtime = runtime
    endpoint = route("POST", "/api/v1/users", handler, protected=False).endpoint
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/users",
            "app": app,
            "headers": [],
            "query_string": b"",
            "state": {},
        }
    )
    call = asyncio.create_task(endpoint(request))
    await asyncio.wait_for(started.wait(), timeout=5)

    # when the call is cancelled
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    # then its one record says so, without the line of a change that may not have happened
    assert [(r["operation"], r["outcome"], r["message"]) for r in runtime.records] == [
        ("POST /api/v1/users", "CANCELLED", "")
    ]
