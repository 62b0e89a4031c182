"""GATEWAY_WORKERS and DB_SERVICE_WORKERS: several processes on one port, supervised, one /metrics.

The services run as `make run` starts them, each with two workers, beside the session stack
(same PostgreSQL, broker and logging service).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psutil
import pytest
import websockets

from logging_service.spool import MAX_SLOTS
from scripts.processes import free_port
from tests.conftest import ROOT, Stack, service_env, wait_until
from tests.factories import admin_token
from tests.ownstack import OwnStack, own_services

WORKERS = 2
WELCOME = {"query": "{ welcome }"}


@pytest.fixture(scope="module")
def workers(stack: Stack) -> Iterator[OwnStack]:
    with own_services(
        stack,
        ("db_service", "gateway"),
        GATEWAY_WORKERS=str(WORKERS),
        DB_SERVICE_WORKERS=str(WORKERS),
        DB_METRICS_PORT=str(free_port()),
    ) as own:
        wait_until(
            lambda: (
                len(worker_pids(own, "gateway")) == WORKERS
                and len(worker_pids(own, "db_service")) == WORKERS
            ),
            timeout=30,
            message="the workers never all started",
        )
        yield own


def worker_pids(own: OwnStack, name: str) -> set[int]:
    return {child.pid for child in psutil.Process(own.processes[name].pid).children()}


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of `name` whose labels include `labels`."""
    total = 0.0
    for match in re.finditer(rf"^{name}(?:\{{(.*)\}})? (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match[2])
    return total


async def scrape(url: str) -> str:
    """A metrics page, each time over a new connection (so from any worker)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        return response.text


def requests_per_worker(text: str) -> dict[str, float]:
    return {
        pid: float(value)
        for pid, value in re.findall(
            r'^gateway_worker_http_requests\{pid="(\d+)"\} (\S+)$', text, re.M
        )
    }


async def on_new_connections(url: str, count: int, body: dict[str, str]) -> None:
    """`count` requests at once, each on a connection of its own."""

    async def one() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            response = await client.post("/graphql", json=body)
            assert response.status_code == 200, response.text

    await asyncio.gather(*(one() for _ in range(count)))


async def test_every_gateway_worker_takes_connections(workers: OwnStack) -> None:
    # given two gateway workers on one port
    # when 32 clients connect at once
    await on_new_connections(workers.gateway_url, 32, WELCOME)

    # then both workers served some of them
    text = await scrape(f"{workers.gateway_url}/metrics")
    served = requests_per_worker(text)
    assert set(served) == {str(pid) for pid in worker_pids(workers, "gateway")}
    assert all(count > 0 for count in served.values()), served


async def test_gateway_metrics_are_the_sum_over_its_workers(workers: OwnStack) -> None:
    # given the welcome count so far, whichever worker answers the scrape
    url = workers.gateway_url
    name, labels = "gateway_requests_total", {"operation": "Query.welcome", "outcome": "ok"}
    before = metric_total(await scrape(f"{url}/metrics"), name, **labels)

    # when 40 requests go over 40 connections (so over both workers)
    await on_new_connections(url, 40, WELCOME)

    # then every scrape counts all 40
    for _ in range(4):
        text = await scrape(f"{url}/metrics")
        assert metric_total(text, name, **labels) - before == 40


async def test_db_service_metrics_port_sums_its_workers(workers: OwnStack) -> None:
    # given db_service's metrics port, served by its supervisor
    metrics_url = f"http://127.0.0.1:{workers.env['DB_METRICS_PORT']}/metrics"
    name, labels = "db_service_rpcs_total", {"method": "ListProducts"}
    before = metric_total(await scrape(metrics_url), name, **labels)

    # when 20 product lists go through the gateway's workers
    async with httpx.AsyncClient(base_url=workers.gateway_url, timeout=30) as client:
        for _ in range(20):
            assert (await client.get("/api/v1/products")).status_code == 200

    # then the port counts all 20, and the pool gauges of both workers are there
    text = await scrape(metrics_url)
    assert metric_total(text, name, **labels) - before == 20
    assert metric_total(text, "db_service_pool_max") == WORKERS * 10


async def test_a_logs_subscription_works_on_whichever_worker_accepts_it(
    workers: OwnStack,
) -> None:
    # given a subscription held by each gateway worker
    async with httpx.AsyncClient(base_url=workers.gateway_url, timeout=30) as client:
        token = await admin_token(client)
    ws_url = workers.gateway_url.replace("http://", "ws://") + "/graphql"
    held: dict[int, websockets.ClientConnection] = {}
    spare: list[websockets.ClientConnection] = []
    try:
        for _ in range(40):
            ws = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
            owner = _worker_holding(workers, ws.local_address[1])
            if owner in held:
                spare.append(ws)
            else:
                held[owner] = ws
            if len(held) == WORKERS:
                break
        assert len(held) == WORKERS, "every connection landed on one worker"
        for ws in held.values():
            await _subscribe(ws, token)

        # when a request is made, then each subscription streams its record
        rid = f"workers-{os.getpid()}-{free_port()}"
        for ws in held.values():
            await asyncio.wait_for(_until_record(ws, workers.gateway_url, rid), 30)
    finally:
        for ws in [*held.values(), *spare]:
            await ws.close()


def _worker_holding(own: OwnStack, client_port: int) -> int:
    """The gateway worker whose socket is the other end of our connection from `client_port`."""
    for pid in worker_pids(own, "gateway"):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == client_port:
                return pid
    raise AssertionError(f"no gateway worker holds the connection from port {client_port}")


async def _subscribe(ws: websockets.ClientConnection, token: str) -> None:
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await ws.send(orjson.dumps(init).decode())
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    query = "subscription { logs { requestId operation } }"
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": query}}
    await ws.send(orjson.dumps(subscribe).decode())


async def _until_record(ws: websockets.ClientConnection, url: str, rid: str) -> None:
    """Keep making a request with `rid` until this subscription streams one of its records."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while True:
            await client.get("/api/v1/products/1", headers={"X-Request-ID": rid})
            try:
                message = orjson.loads(await asyncio.wait_for(ws.recv(), 1))
            except TimeoutError:
                continue
            assert message["type"] == "next", message
            if message["payload"]["data"]["logs"]["requestId"] == rid:
                return


@pytest.mark.parametrize("name", ["gateway", "db_service"])
def test_a_killed_worker_is_replaced(workers: OwnStack, name: str) -> None:
    # given the running workers
    before = worker_pids(workers, name)
    victim = min(before)

    # when one is killed outright
    os.kill(victim, signal.SIGKILL)

    # then the supervisor starts another, and the service answers again
    wait_until(
        lambda: (
            victim not in worker_pids(workers, name) and len(worker_pids(workers, name)) == WORKERS
        ),
        timeout=30,
        message=f"{name}: the killed worker was not replaced",
    )
    assert workers.processes[name].running
    wait_until(
        lambda: httpx.get(f"{workers.gateway_url}/readyz", timeout=2).status_code == 200,
        timeout=30,
        message="the gateway never became ready again",
    )


@pytest.mark.parametrize("name", ["gateway", "db_service"])
def test_sigterm_stops_every_worker_gracefully(stack: Stack, name: str) -> None:
    # given a service of our own with two workers
    variable = "GATEWAY_WORKERS" if name == "gateway" else "DB_SERVICE_WORKERS"
    with own_services(stack, (name,), **{variable: str(WORKERS)}) as own:
        wait_until(
            lambda: len(worker_pids(own, name)) == WORKERS,
            timeout=30,
            message="the workers never all started",
        )
        pids = worker_pids(own, name)

        # when the supervisor gets SIGTERM
        os.kill(own.processes[name].pid, signal.SIGTERM)

        # then it and every worker exit, cleanly, within the grace period and its margin
        assert own.processes[name].wait(15) == 0
        assert not [pid for pid in pids if psutil.pid_exists(pid)]


def test_gateway_workers_refusing_their_spool_stop_their_supervisor(tmp_path: Path) -> None:
    # given a log spool directory whose every slot another process holds
    with contextlib.ExitStack() as held:
        for slot in range(MAX_SLOTS):
            (tmp_path / f"slot-{slot}").mkdir()
            fd = os.open(tmp_path / f"slot-{slot}" / "spool.lock", os.O_RDWR | os.O_CREAT)
            held.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

        # when a gateway with two workers is started on it (no backend is needed to refuse)
        env = service_env(
            GATEWAY_WORKERS=str(WORKERS),
            GATEWAY_PORT=str(free_port()),
            LOG_SPOOL_DIR=str(tmp_path),
            DB_SERVICE_ADDR="127.0.0.1:9",
            LOGGING_SERVICE_ADDR="127.0.0.1:9",
        )
        try:
            result = subprocess.run(
                [sys.executable, "-m", "gateway"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError("the supervisor kept restarting refusing workers") from exc

    # then the workers' refusal stops the supervisor (README: "a worker that rejects its
    # configuration stops them all"), as db_service's does, instead of a restart loop
    assert result.returncode == 2, result.stderr[-2000:]
    assert "refused its configuration" in result.stderr
