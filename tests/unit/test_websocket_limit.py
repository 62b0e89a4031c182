"""WebSocketLimit: the count of open sockets, and a refusal on servers without denial responses;
the open-files limit the gateway raises to fit WEBSOCKETS_MAX sockets."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.__main__ import OTHER_FILES, make_room_for_websockets
from gateway.graphql.view import WebSocketLimit


def _scope(**extra: Any) -> Scope:
    return {"type": "websocket", "path": "/graphql", "headers": [], **extra}


async def _connect() -> Message:
    return {"type": "websocket.connect"}


# A server that names no extensions leaves the key out, or (ASGI allows it) sets it to None.
@pytest.mark.parametrize("extensions", [{}, {"extensions": None}], ids=["absent", "none"])
async def test_a_server_without_denial_responses_gets_a_close_try_again_later(
    extensions: dict[str, Any],
) -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        held.set()
        await release.wait()

    limit = WebSocketLimit(app, 1)
    first = asyncio.create_task(limit(_scope(), _connect, _ignore))
    await asyncio.wait_for(held.wait(), 5)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    # given one socket open of one allowed, on a server that cannot answer an upgrade itself
    await limit(_scope(**extensions), _connect, send)
    # then the next is closed before its handshake with 1013, "try again later"
    assert sent == [{"type": "websocket.close", "code": 1013, "reason": ""}]
    release.set()
    await asyncio.wait_for(first, 5)
    assert limit.open == 0  # and a socket that ends is no longer counted, nor its client
    assert limit.by_client == {}


async def _ignore(message: Message) -> None:
    return None


ROOT = Path(__file__).resolve().parents[2]
# Run in a child: the limits are the process's, and this one must keep its own.
ROOM_UNDER = """
import resource
from gateway.__main__ import make_room_for_websockets
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
make_room_for_websockets(1000)
print(*resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def _room_under(soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    code = ROOM_UNDER.format(soft=soft, hard=hard)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_the_soft_open_files_limit_is_raised_to_fit_the_websockets() -> None:
    # given a soft limit of 256 under a hard one of 4,096, and WEBSOCKETS_MAX=1000
    # when the gateway makes room
    done = _room_under(256, 4096)
    # then the soft limit fits the sockets and the gateway's other files, silently
    assert done.stdout.split() == [str(1000 + OTHER_FILES), "4096"]
    assert done.stderr == ""


def test_a_hard_limit_too_low_for_the_websockets_is_reached_and_reported() -> None:
    # given a hard limit of 512, below WEBSOCKETS_MAX=1000
    # when the gateway makes room
    done = _room_under(256, 512)
    # then the soft limit is the hard one, and stderr says what to change
    assert done.stdout.split() == ["512", "512"]
    assert "open-files limit is 512" in done.stderr
    assert "WEBSOCKETS_MAX" in done.stderr


def test_a_kernel_that_refuses_the_raise_leaves_the_limit_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a soft limit of 256 under an unlimited hard one that the kernel caps lower (macOS)
    def refuse(resource_id: int, limits: tuple[int, int]) -> None:
        raise ValueError("current limit exceeds maximum limit")

    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, resource.RLIM_INFINITY))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    # when the gateway makes room, then it starts anyway and says what the limit is
    make_room_for_websockets(1000)
    assert "open-files limit is 256" in capsys.readouterr().err
