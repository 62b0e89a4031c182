"""compose.yaml's load balancer, for real: nginx with the `lb` configuration compose writes, in
front of two gateway replicas that one name resolves to (a DNS stub stands in for Docker's), the
way `docker compose up --scale gateway=2` runs them.

Only what names the container world changes: the resolver's address, and the ports (both
gateways listen on one port, on 127.0.0.1 and 127.0.0.2, as replicas do on their own
addresses). Clients connect from addresses of their own (127.0.0.3, 127.0.0.4) so the
gateways can tell them apart only through the balancer's X-Forwarded-For.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from scripts.infra import EmbeddedPostgres
from scripts.processes import free_port
from tests.conftest import Stack, wait_until
from tests.dnsstub import DNSStub
from tests.factories import admin_token
from tests.graphqlws import GraphQLSocket
from tests.ownstack import own_services

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT_LOGINS = 3  # per client address and window, on the gateways behind the balancer

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is not installed (.ci/run installs it)"
)


@dataclass
class Balanced:
    url: str
    gateway_urls: list[str]


def lb_config(gateway_port: int, listen_port: int, dns_port: int) -> str:
    """compose's `lb` configuration with the container world's names swapped for ours."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    config: str = compose["configs"]["lb-config"]["content"].replace("$$", "$")
    swaps = {
        "resolver 127.0.0.11 ": f"resolver 127.0.0.1:{dns_port} ",
        "listen 8081;": f"listen 127.0.0.1:{listen_port};",
        "http://gateway:8081;": f"http://gateway:{gateway_port};",
    }
    for old, new in swaps.items():
        assert old in config, f"compose's lb configuration no longer has {old!r}"
        config = config.replace(old, new)
    return config


@pytest.fixture(scope="module")
def balanced(
    stack: Stack, postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Balanced]:
    port, listen = free_port(), free_port()
    hosts = ["127.0.0.1", "127.0.0.2"]
    work = tmp_path_factory.mktemp("lb")
    limits = {
        "GATEWAY_PORT": str(port),
        "CLIENT_AUTH_LIMIT": str(CLIENT_LOGINS),
        "CLIENT_AUTH_WINDOW_S": "60",
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    with ExitStack() as running:
        first = running.enter_context(
            own_services(
                stack,
                ("db_service", "gateway"),
                # A database of its own: login windows of 127.0.0.1 that other tests fill (with
                # no limit to speak of on their db_service) must not count against this one's.
                DATABASE_URL=postgres.ensure_database("merch_load_balancer"),
                GATEWAY_HOST=hosts[0],
                **limits,
            )
        )
        second = running.enter_context(
            own_services(
                stack, ("gateway",), GATEWAY_HOST=hosts[1], DB_SERVICE_ADDR=first.db_addr, **limits
            )
        )
        dns = running.enter_context(DNSStub({"gateway": hosts}))
        (work / "default.conf").write_text(lb_config(port, listen, dns.port))
        (work / "nginx.conf").write_text(
            f"daemon off; master_process off; pid {work}/nginx.pid;\n"
            f"error_log {work}/error.log warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{ access_log off; client_body_temp_path {work}/body;"
            f" proxy_temp_path {work}/proxy; include {work}/default.conf; }}\n"
        )
        nginx = subprocess.Popen(
            [NGINX, "-p", str(work), "-c", str(work / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{listen}"

            def up() -> bool:
                if nginx.poll() is not None:
                    log = (work / "error.log").read_text() if (work / "error.log").exists() else ""
                    raise AssertionError(f"nginx exited {nginx.returncode}: {log}")
                try:
                    return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, timeout=30, message="nginx never answered /readyz")
            yield Balanced(url, [first.gateway_url, second.gateway_url])
        finally:
            nginx.terminate()
            nginx.wait(10)


@contextlib.asynccontextmanager
async def client_from(address: str, url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections come from `address` (a loopback address of its own)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as client:
        yield client


def requests_served(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_worker_http_requests")
    )


async def test_the_balancer_spreads_requests_over_every_gateway(balanced: Balanced) -> None:
    # given what each gateway has served so far
    before = [requests_served(u) for u in balanced.gateway_urls]

    # when 40 requests come through the balancer, each on a connection of its own
    for _ in range(40):
        async with client_from("127.0.0.3", balanced.url) as client:
            assert (await client.get("/api/v1/products/1")).status_code == 200

    # then both gateways served some of them (nginx resolves the name per request)
    after = [requests_served(u) for u in balanced.gateway_urls]
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert all(n >= 5 for n in served), served


async def test_each_client_behind_the_balancer_has_a_login_window_of_its_own(
    balanced: Balanced,
) -> None:
    def login() -> dict[str, str]:
        return {"username": f"nobody{uuid.uuid4().hex[:10]}", "password": "not a password"}

    # given a client (127.0.0.3) that used up its logins through the balancer
    async with client_from("127.0.0.3", balanced.url) as first:
        used = [
            (await first.post("/api/v1/users/login", json=login())).status_code
            for _ in range(CLIENT_LOGINS)
        ]
        refused = await first.post("/api/v1/users/login", json=login())
        # and that tries to pass for someone else with a header of its own
        forged = await first.post(
            "/api/v1/users/login", json=login(), headers={"X-Forwarded-For": "203.0.113.9"}
        )

    # when another client (127.0.0.4) logs in through the same balancer
    async with client_from("127.0.0.4", balanced.url) as second:
        other = await second.post("/api/v1/users/login", json=login())

    # then the first is refused, even with the forged header, and the second is not
    assert used == [401] * CLIENT_LOGINS
    assert refused.status_code == 429
    assert forged.status_code == 429
    assert other.status_code == 401


async def test_a_subscription_streams_records_through_the_balancer(balanced: Balanced) -> None:
    async with httpx.AsyncClient(base_url=balanced.url, timeout=30) as client:
        token = await admin_token(client)
        async with GraphQLSocket.open(balanced.url, token) as socket:
            await socket.subscribe("1", "subscription { logs { requestId operation } }")
            messages = await socket.messages_while_calling(client, "1", until="next", within=30)

    assert messages[-1]["payload"]["data"]["logs"]["operation"]
