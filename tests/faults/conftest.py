"""A stack to break: its own PostgreSQL, db_service and gateway, beside the session stack.

The fault tests stop, pause and kill these processes; the session stack, which every other test
uses, is never touched. Timeouts are short so a fault shows within a second or two:
GRPC_TIMEOUT_S=1.5 at the gateway, 1 s database timeouts and a 0.3 s health probe in db_service.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from protos.tokens import TokenCodec
from scripts.infra import EmbeddedPostgres, free_port
from tests.conftest import JWT_SECRET, Stack, wait_until
from tests.factories import Account, admin_token, make_product, make_user
from tests.ownstack import OwnStack, grpc_status, own_services

GRPC_TIMEOUT_S = 1.5


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (Linux procfs)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The parent pid follows the state, after the parenthesised command name.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@dataclass
class Faulty:
    """The breakable stack, and a shopper and product of its own."""

    postgres: EmbeddedPostgres
    own: OwnStack
    shopper: Account
    product_id: int
    frozen: list[int] = field(default_factory=list)

    def freeze_postgres(self) -> None:
        """SIGSTOP the postmaster and every backend (each backend leads a process group of its
        own, so stopping the postmaster's group would leave them answering)."""
        self.frozen = [self.postgres.pid, *_children(self.postgres.pid)]
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw_postgres(self) -> None:
        for pid in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    @property
    def url(self) -> str:
        return self.own.gateway_url

    def db_status(self) -> str:
        return grpc_status(self.own.db_addr, timeout=0.5)

    def wait_db_status(self, status: str, timeout: float = 15) -> None:
        wait_until(
            lambda: self.db_status() == status,
            timeout=timeout,
            message=f"db_service health never became {status}",
        )

    def restore(self) -> None:
        """Bring PostgreSQL and db_service back to running and SERVING, whatever was done."""
        self.thaw_postgres()
        process = self.postgres.process
        if process is None or not process.running:
            self.postgres.start()
        self.own.processes["db_service"].resume()
        self.wait_db_status("SERVING")


@pytest.fixture(scope="package")
async def faulty(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Faulty]:
    postgres = EmbeddedPostgres(
        tmp_path_factory.mktemp("faults-pg") / "data", port=free_port(), die_with_parent=True
    )
    postgres.start()
    try:
        with own_services(
            stack,
            ("db_service", "gateway"),
            DATABASE_URL=postgres.ensure_database("merch_faults"),
            DB_HEALTH_INTERVAL_S="0.3",
            DB_COMMAND_TIMEOUT_S="1",
            DB_CONNECT_TIMEOUT_S="1",
            GRPC_TIMEOUT_S=str(GRPC_TIMEOUT_S),
            READINESS_TIMEOUT_S="0.5",
        ) as own:
            shopper, product_id = await _cast(own.gateway_url)
            yield Faulty(postgres, own, shopper, product_id)
    finally:
        postgres.stop()


async def _cast(url: str) -> tuple[Account, int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        shopper = await make_user(c)
        product = await make_product(c, await admin_token(c), stock=50)
    return shopper, product["id"]


PRODUCTS = "{ products { edges { node { id } } } }"
PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { id } }"

# (case, method, path, JSON body, needs a token)
REQUESTS: list[tuple[str, str, str, dict[str, Any] | None, bool]] = [
    ("REST read: product list", "GET", "/api/v1/products", None, False),
    ("REST read: one product", "GET", "/api/v1/products/1", None, False),
    ("REST write: login", "POST", "/api/v1/users/login",
     {"username": "someone_x", "password": "password-x"}, False),
    ("REST write: place an order", "POST", "/api/v1/orders",
     {"product_id": 1, "quantity": 1}, True),
    ("GraphQL read: products", "POST", "/graphql", {"query": PRODUCTS}, False),
    ("GraphQL write: placeOrder", "POST", "/graphql",
     {"query": PLACE, "variables": {"p": 1}}, True),
]  # fmt: skip


def customer_token(sid: str = "12345") -> str:
    """A token the gateway accepts (so the request goes on to db_service) for `sid`."""
    return TokenCodec(JWT_SECRET, "merch-store", 600).issue(sid=sid, role="customer", version=1)


async def send(
    url: str, method: str, path: str, body: dict[str, Any] | None, token: str | None
) -> tuple[httpx.Response, str, float]:
    """(response, error code, seconds taken)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        response = await c.request(method, path, json=body, headers=headers)
    took = time.monotonic() - started
    data = response.json()
    if path == "/graphql":
        code = data["errors"][0]["extensions"]["code"] if data.get("errors") else ""
    else:
        code = data["error"]["code"] if isinstance(data, dict) and "error" in data else ""
    return response, code, took
