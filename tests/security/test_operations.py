"""Matrix, operations: health, metrics, request ids, configuration refusals, and no secret in
any response, service log or Kafka record."""

from __future__ import annotations

import io
import json
import sys
import uuid

import httpx
import pytest
import websockets

from gateway.backends import CHANNEL_OPTIONS, READ_ATTEMPTS, SERVICE_CONFIG
from scripts.processes import ManagedProcess, free_port
from tests.conftest import ADMIN, JWT_SECRET, ROOT, Stack, wait_until
from tests.factories import login, user_data
from tests.logtopic import read_all, wait_for_records
from tests.security.conftest import Actors, assert_safe


async def test_liveness_and_readiness_name_every_dependency(client: httpx.AsyncClient) -> None:
    # given the running stack; when its probes are read
    live, ready = await client.get("/healthz"), await client.get("/readyz")

    # then both are up and readiness names each backend
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["dependencies"] == {"db_service": "SERVING", "logging_service": "SERVING"}


async def test_metrics_show_load_and_no_secret(client: httpx.AsyncClient, actors: Actors) -> None:
    # given calls made with tokens; when /metrics is scraped
    await client.get("/api/v1/orders", headers=actors.headers("alice"))
    metrics = await client.get("/metrics")

    # then it counts requests in flight and holds no token, password or key
    assert "gateway_http_requests_in_flight" in metrics.text
    assert_safe(metrics, secrets=[actors.alice.token, actors.admin, actors.alice.password])


@pytest.mark.parametrize(
    ("case", "given"),
    [
        ("129 characters", "r" * 129),
        ("spaces and quotes", 'a b "c"'),
        ("markup", "<script>alert(1)</script>"),
        ("a path", "../../etc/passwd"),
        # Latin-1 letters pass isalnum(), but gRPC metadata is ASCII: such an id would fail the
        # backend call of every request coalesced with it.
        ("non-ASCII letters", "caf\u00e9-\u00e9t\u00e9"),
        # A coalesced call joins its requests' ids with commas: one with a comma would be two.
        ("a comma", "abc,def"),
    ],
)
async def test_hostile_request_ids_are_replaced(
    client: httpx.AsyncClient, case: str, given: str
) -> None:
    # given a request id no log should carry; when it is sent
    headers = [(b"X-Request-ID", given.encode("latin-1"))]
    response = await client.get("/api/v1", headers=headers)

    # then the gateway answers with an id of its own
    assert response.headers["x-request-id"] != given
    assert len(response.headers["x-request-id"]) == 32


def test_backend_calls_have_deadlines_keepalive_and_bounded_read_retries() -> None:
    # given the gateway's channel configuration
    options = dict(CHANNEL_OPTIONS)
    config = json.loads(SERVICE_CONFIG)
    (policy,) = config["methodConfig"]
    methods = {name["method"] for name in policy["name"]}

    # then dead peers are noticed, and only reads are retried, on UNAVAILABLE (or CANCELLED: a
    # stopping backend's answer to calls it had not started), a bounded number
    assert options["grpc.keepalive_time_ms"] > 0
    assert options["grpc.keepalive_timeout_ms"] > 0
    assert policy["retryPolicy"]["maxAttempts"] == READ_ATTEMPTS <= 5
    assert policy["retryPolicy"]["retryableStatusCodes"] == ["CANCELLED", "UNAVAILABLE"]
    assert all(m.startswith(("Get", "List")) for m in methods)
    assert config["retryThrottling"]["maxTokens"] > 0


def _start_and_wait(service: str, env: dict[str, str]) -> tuple[int | None, list[str]]:
    """Start `service` with exactly `env`; its exit code (None if it kept running) and output."""
    proc = ManagedProcess(
        service,
        [sys.executable, "-m", service],
        env=env,
        cwd=ROOT,
        output=io.StringIO(),
        die_with_parent=True,
    )
    proc.start()
    try:
        code = proc.wait(timeout=30)
    finally:
        proc.stop(timeout=5)
    return code, [line for line in proc.tail() if line.strip()]


def _own_ports(env: dict[str, str]) -> dict[str, str]:
    """`env` with listen addresses of its own, so a service that does start clashes with none."""
    return {
        **env,
        "GATEWAY_PORT": str(free_port()),
        "DB_SERVICE_LISTEN": f"127.0.0.1:{free_port()}",
        "LOGGING_SERVICE_LISTEN": f"127.0.0.1:{free_port()}",
    }


@pytest.mark.parametrize("service", ["gateway", "db_service"])
def test_production_refuses_the_development_secret(stack: Stack, service: str) -> None:
    # given production settings with no JWT secret of their own
    env = {k: v for k, v in stack.env.items() if k != "JWT_SECRET"}
    env = _own_ports({**env, "MERCH_ENV": "production"})

    # when the service starts
    code, lines = _start_and_wait(service, env)

    # then it refuses, saying why without repeating any value it was given (the admin password)
    assert code == 2
    assert any("JWT_SECRET" in line for line in lines)
    assert not any(ADMIN["password"] in line for line in lines)


@pytest.mark.parametrize("service", ["gateway", "db_service"])
def test_with_no_merch_env_a_service_is_production_and_needs_a_jwt_secret(
    stack: Stack, service: str
) -> None:
    # given the environment of a deployment that forgot both MERCH_ENV and JWT_SECRET
    env = _own_ports({k: v for k, v in stack.env.items() if k not in ("MERCH_ENV", "JWT_SECRET")})

    # when the service starts
    code, lines = _start_and_wait(service, env)

    # then it refuses in one line that names the secret and the mode
    assert code == 2
    assert len(lines) == 1, lines
    assert "JWT_SECRET" in lines[0]
    assert "production is the default" in lines[0]


@pytest.mark.parametrize(
    ("service", "variable", "address"),
    [
        ("gateway", "GATEWAY_HOST", "0.0.0.0"),
        ("db_service", "DB_SERVICE_LISTEN", "0.0.0.0:0"),
        ("logging_service", "LOGGING_SERVICE_LISTEN", "[::]:0"),
    ],
)
def test_development_mode_refuses_to_listen_on_every_interface(
    stack: Stack, service: str, variable: str, address: str
) -> None:
    # given development mode (the test stack's) and an address other machines reach
    env = {**_own_ports(stack.env), variable: address}

    # when the service starts
    code, lines = _start_and_wait(service, env)

    # then it refuses in one line naming the setting
    assert code == 2
    assert len(lines) == 1, lines
    assert variable in lines[0]
    assert "loopback" in lines[0]


async def test_no_password_token_or_hash_reaches_a_log(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an account's whole life, through both APIs, with distinctive secrets
    password, wrong, new = (f"{kind}-{uuid.uuid4().hex}" for kind in ("pw", "wrong", "new"))
    data = user_data(password=password)
    rid = f"secrets-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": rid}
    created = await client.post("/api/v1/users/create", json=data, headers=headers)
    assert created.status_code == 201
    failed = await client.post(
        "/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p)"
            " { token } }",
            "variables": {"u": data["username"], "p": wrong},
        },
        headers=headers,
    )
    token = await login(client, data["username"], password)
    changed = await client.put(
        f"/api/v1/users/{data['sid']}",
        json={"password": new, "current_password": password},
        headers={**headers, "Authorization": f"Bearer {token}"},
    )
    assert changed.status_code == 200
    assert_safe(failed, secrets=[wrong])

    # when their records have reached Kafka
    await wait_for_records(
        stack.kafka_bootstrap,
        [rid],
        lambda groups: len(groups[rid]) >= 6,  # 3 calls, each by the gateway and db_service
    )

    # then no record and no service log holds a password, a token, a hash or the signing key
    topic = json.dumps(await read_all(stack.kafka_bootstrap))
    logs = "".join(path.read_text(errors="replace") for path in stack.log_dir.glob("*.log"))
    for secret in (password, wrong, new, token, "$argon2", JWT_SECRET, ADMIN["password"]):
        assert secret not in topic, f"{secret[:12]}… in the log topic"
        assert secret not in logs, f"{secret[:12]}… in a service log"


async def test_a_token_in_a_websocket_url_stays_out_of_the_gateway_log(
    stack: Stack, actors: Actors
) -> None:
    # given a client that puts its token in the WebSocket's URL, as clients do whose browser
    # cannot set headers on a WebSocket (the gateway reads its token from connection_init)
    gateway_log = stack.log_dir / "gateway.log"
    before = len(gateway_log.read_text(errors="replace"))
    marker = uuid.uuid4().hex
    url = stack.gateway_url.replace("http://", "ws://")
    url += f"/graphql?access_token={actors.alice.token}&marker={marker}"

    # when the socket opens and closes
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]):
        pass

    # then the gateway's log has its line, without the token
    def logged() -> str:
        return gateway_log.read_text(errors="replace")[before:]

    wait_until(lambda: "WebSocket /graphql" in logged(), timeout=10, message="no WebSocket line")
    assert actors.alice.token not in logged()
