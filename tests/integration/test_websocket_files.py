"""WEBSOCKETS_MAX against the process's open-files limit: each WebSocket is a file descriptor,
and a gateway out of them answers nothing, HTTP included, without a word. Started under a soft
limit below WEBSOCKETS_MAX (1,024 is a common default, 1,000 the default maximum), the gateway
makes room for its sockets up to the hard limit."""

from __future__ import annotations

import contextlib
import resource
import sys
import tempfile
from collections.abc import Iterator

import httpx
import pytest
import websockets

from scripts.processes import ManagedProcess
from tests.conftest import ROOT, Stack
from tests.graphqlws import PROTOCOL
from tests.ownstack import OwnStack, own_env, wait_started

WEBSOCKETS_MAX = 60
# Fewer than the sockets plus the ~30 files an idle gateway holds (channels, spool, listener).
SOFT_LIMIT = 64
# `python -m gateway`, started under that soft open-files limit (the hard one stays).
UNDER_SOFT_LIMIT = (
    "import os, resource, sys; "
    "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({SOFT_LIMIT}, hard)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'gateway'])"
)


@pytest.fixture
def low_soft_limit(stack: Stack) -> Iterator[OwnStack]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < WEBSOCKETS_MAX + 1024 + SOFT_LIMIT:
        pytest.skip(f"the hard open-files limit ({hard}) leaves the gateway no room to grow")
    # All the test's sockets come from one address: the client's own limit must not stop them.
    limits = {
        "WEBSOCKETS_MAX": str(WEBSOCKETS_MAX),
        "WEBSOCKETS_PER_CLIENT_MAX": str(WEBSOCKETS_MAX),
    }
    own = OwnStack(env=own_env(stack, ("gateway",), **limits))
    # A spool directory of its own, as start_service gives one.
    own.env["LOG_SPOOL_DIR"] = tempfile.mkdtemp(prefix="spool-gateway-", dir=stack.log_dir)
    log_file = (stack.log_dir / "gateway-files.log").open("a", encoding="utf-8")
    gateway = ManagedProcess(
        "gateway",
        [sys.executable, "-c", UNDER_SOFT_LIMIT],
        env=own.env,
        cwd=ROOT,
        output=log_file,
        die_with_parent=True,
    )
    own.processes["gateway"] = gateway
    try:
        gateway.start()
        wait_started(own)
        yield own
    finally:
        gateway.stop(timeout=10)
        log_file.close()


async def test_websockets_up_to_the_limit_leave_the_gateway_answering_under_a_low_soft_limit(
    low_soft_limit: OwnStack,
) -> None:
    # given a gateway started under a soft open-files limit of 64, with WEBSOCKETS_MAX=60
    url = low_soft_limit.gateway_url.replace("http://", "ws://") + "/graphql"
    async with contextlib.AsyncExitStack() as sockets:
        # when WEBSOCKETS_MAX sockets are opened
        for _ in range(WEBSOCKETS_MAX):
            await sockets.enter_async_context(
                websockets.connect(url, subprotocols=[PROTOCOL], open_timeout=10)
            )
        # then one more is refused as documented, 503 (not dropped unanswered)…
        with pytest.raises(websockets.InvalidStatus) as refusal:
            await websockets.connect(url, subprotocols=[PROTOCOL], open_timeout=10)
        assert refusal.value.response.status_code == 503
        # …and HTTP is still answered
        async with httpx.AsyncClient(base_url=low_soft_limit.gateway_url, timeout=10) as client:
            assert (await client.get("/healthz")).status_code == 200
