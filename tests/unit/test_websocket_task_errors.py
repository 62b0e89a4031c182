"""An operation whose client closed its socket under it is no error to log with a traceback."""

from __future__ import annotations

import logging

import pytest
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected
from strawberry.http.exceptions import WebSocketDisconnected as StrawberryWebSocketDisconnected
from uvicorn.protocols.utils import ClientDisconnected
from websockets.exceptions import InvalidState

from gateway.graphql.websocket import GraphQLTransportWSHandler

# What sending on a closed socket raised in a hostile client's run, by layer.
GONE = [
    StrawberryWebSocketDisconnected(),
    WebSocketDisconnect(1006),
    WebSocketDisconnected('Cannot call "send" once a close message has been sent.'),
    ClientDisconnected(),
    InvalidState("connection is closing"),
]


def _handler() -> GraphQLTransportWSHandler:
    # The hook uses nothing of a connection: no socket, schema or context is needed.
    return GraphQLTransportWSHandler.__new__(GraphQLTransportWSHandler)


@pytest.mark.parametrize("error", GONE, ids=[type(e).__name__ for e in GONE])
async def test_a_socket_gone_under_an_operation_logs_no_traceback(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    await _handler().handle_task_exception(error)

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_any_other_failure_of_an_operation_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    bug = RuntimeError("a bug")

    await _handler().handle_task_exception(bug)

    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [bug]
