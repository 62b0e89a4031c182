"""The log pipeline end to end: every call recorded, linked by request id, nothing lost."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import websockets

from gateway.rest.docs import load_openapi
from tests.conftest import ADMIN, Stack, start_service, wait_ready
from tests.factories import admin_token, make_product, make_user, user_data
from tests.logtopic import RECORD_FIELDS, operations, read_all, wait_for_records

GW, DB = "gateway", "db_service"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
PLACE = """mutation($p: Int!) {
  placeOrder(productId: $p, quantity: 1) { id product { name } user { sid } }
}"""


def _rid() -> str:
    return f"test-{uuid.uuid4().hex}"


def _has(expected: dict[str, set[tuple[str, str]]]) -> Callable[[dict[str, list[Any]]], bool]:
    return lambda groups: all(expected[rid] <= operations(groups[rid]) for rid in expected)


async def test_a_scripted_session_is_recorded_call_by_call(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    product = await make_product(client, await admin_token(client), stock=10)
    data = user_data()
    rid = {
        name: _rid()
        for name in ("register", "login", "me", "order", "product", "cancel", "welcome", "denied")
    }

    def h(name: str, token: str | None = None) -> dict[str, str]:
        headers = {"X-Request-ID": rid[name]}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    await client.post("/api/v1/users/create", json=data, headers=h("register"))
    login = await client.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {"u": data["username"], "p": data["password"]},
        },
        headers=h("login"),
    )
    token = login.json()["data"]["login"]["token"]
    await client.post(
        "/graphql",
        json={"query": "{ me { sid orders { edges { node { id } } } } }"},
        headers=h("me", token),
    )
    placed = await client.post(
        "/graphql",
        json={
            "query": PLACE,
            "variables": {"p": product["id"]},
        },
        headers=h("order", token),
    )
    order_id = placed.json()["data"]["placeOrder"]["id"]
    await client.get(f"/api/v1/products/{product['id']}", headers=h("product"))
    await client.delete(f"/api/v1/orders/{order_id}", headers=h("cancel", token))
    await client.post("/graphql", json={"query": "{ welcome }"}, headers=h("welcome"))
    await client.post(
        "/graphql",
        json={"query": f'{{ user(sid: "{ADMIN["sid"]}") {{ sid }} }}'},
        headers=h("denied", token),
    )
    expected = {
        rid["register"]: {(GW, "POST /api/v1/users/create"), (DB, "DBService/CreateUser")},
        rid["login"]: {(GW, "Mutation.login"), (DB, "DBService/Login")},
        rid["me"]: {
            (GW, "Query.me"),
            (GW, "User.orders"),
            (DB, "DBService/GetUser"),
            (DB, "DBService/ListOrders"),
        },
        rid["order"]: {
            (GW, "Mutation.placeOrder"),
            (GW, "Order.product"),
            (GW, "Order.user"),
            (DB, "DBService/PlaceOrder"),
            (DB, "DBService/GetProductsByIds"),
            (DB, "DBService/GetUsersByIds"),
        },
        rid["product"]: {(GW, "GET /api/v1/products/{id}"), (DB, "DBService/GetProduct")},
        rid["cancel"]: {(GW, "DELETE /api/v1/orders/{id}"), (DB, "DBService/CancelOrder")},
        rid["welcome"]: {(GW, "Query.welcome")},
        rid["denied"]: {(GW, "Query.user"), (DB, "DBService/GetUser")},
    }

    groups = await wait_for_records(stack.kafka_bootstrap, rid.values(), _has(expected))

    records = [r for recs in groups.values() for r in recs]
    assert len({r["event_id"] for r in records}) == len(records)
    for record in records:
        assert RECORD_FIELDS <= set(record) <= RECORD_FIELDS | {"message"}
        assert record["kind"] in {"graphql", "rest", "rpc", "event"}  # event: the outbox
        assert record["duration_ms"] >= 0
        assert data["password"] not in orjson.dumps(record).decode()
        assert token not in orjson.dumps(record).decode()
    by_op = {(r["service"], r["operation"]): r for r in groups[rid["order"]]}
    assert by_op[(GW, "Mutation.placeOrder")]["user"] == data["sid"]
    assert by_op[(DB, "DBService/PlaceOrder")]["user"] == data["sid"]
    assert {r["user"] for r in groups[rid["register"]]} <= {"anonymous", data["sid"]}
    # Seed-style lines, as the original report's console consumer printed them.
    messages = {(r["service"], r["operation"]): r.get("message") for r in records}
    assert messages[(GW, "POST /api/v1/users/create")] == f"User '{data['username']}' is created"
    assert messages[(GW, "Mutation.login")] == f"User '{data['username']}' logged in"
    denied = {(r["service"], r["operation"]): r["outcome"] for r in groups[rid["denied"]]}
    assert denied == {(GW, "Query.user"): "FORBIDDEN", (DB, "DBService/GetUser"): "FORBIDDEN"}
    assert all(r["outcome"] == "ok" for r in groups[rid["order"]])


async def test_a_graphql_registration_is_recorded_with_its_username(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given a registration through GraphQL, as GraphiQL sends it (the input as a variable) and
    # written in the document
    data, inline = user_data(), user_data()
    rid = {"variable": _rid(), "inline": _rid()}
    register = "mutation($i: RegisterInput!) { register(input: $i) { sid } }"
    await client.post(
        "/graphql",
        json={"query": register, "variables": {"i": data}},
        headers={"X-Request-ID": rid["variable"]},
    )
    fields = ", ".join(f"{k}: {orjson.dumps(v).decode()}" for k, v in inline.items())
    await client.post(
        "/graphql",
        json={"query": f"mutation {{ register(input: {{{fields}}}) {{ sid }} }}"},
        headers={"X-Request-ID": rid["inline"]},
    )

    # then each record's message names the user, as the seed's console lines did
    expected = {key: {(GW, "Mutation.register")} for key in rid.values()}
    groups = await wait_for_records(stack.kafka_bootstrap, rid.values(), _has(expected))
    for key, sent in (("variable", data), ("inline", inline)):
        (record,) = [r for r in groups[rid[key]] if r["operation"] == "Mutation.register"]
        assert record["message"] == f"User '{sent['username']}' is created", key


# Every route the REST contract lists, as the gateway names it in its records ("GET /api/v1").
REST_ROUTES = [
    (method.upper(), path)
    for path, item in load_openapi()["paths"].items()
    for method in item
    if method in ("get", "put", "post", "delete", "patch")
]


async def test_every_rest_route_of_openapi_writes_its_record(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # given an admin, and a user, product and order of their own for the paths to name
    token = await admin_token(client)
    user = await make_user(client)
    product = await make_product(client, token)
    order = await client.post(
        "/api/v1/orders", json={"product_id": product["id"], "quantity": 1}, headers=user.auth
    )
    values = {"sid": user.sid, "id": str(product["id"])}

    # when every route of openapi.yaml is called once, each with a request id of its own that
    # names it (so a missing record says which route lost it)
    rid = {(m, p): f"{m}{re.sub(r'[^a-z]+', '.', p)}{uuid.uuid4().hex[:8]}" for m, p in REST_ROUTES}
    for (method, path), request_id in rid.items():
        if path.startswith("/api/v1/orders/") and "{id}" in path:
            url = path.replace("{id}", str(order.json()["id"]))
        else:
            url = path.format(**values)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        headers = {"X-Request-ID": request_id, "Authorization": f"Bearer {token}"}
        await client.request(method, url, headers=headers, **body)

    # then each call has its gateway record, named after its route, kind rest, by the admin
    expected = {request_id: {(GW, f"{m} {p}")} for (m, p), request_id in rid.items()}
    groups = await wait_for_records(stack.kafka_bootstrap, rid.values(), _has(expected))
    for records in groups.values():
        (record,) = [r for r in records if r["service"] == GW]
        assert record["kind"] == "rest"
        assert record["user"] == ADMIN["sid"]


async def _steady_load(client: httpx.AsyncClient, stop: asyncio.Event) -> list[tuple[str, int]]:
    """Requests one after another until told to stop: (request id, status) of each."""
    done: list[tuple[str, int]] = []
    while not stop.is_set():
        rid = _rid()
        response = await client.get("/api/v1/products/1", headers={"X-Request-ID": rid})
        done.append((rid, response.status_code))
        await asyncio.sleep(0.05)
    return done


async def _outage(client: httpx.AsyncClient, stack: Stack, outage: Callable[[], Any]) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(_steady_load(client, stop))
    await asyncio.sleep(1)
    await outage()
    await asyncio.sleep(1)
    stop.set()
    done = await load

    expected = {
        rid: {(GW, "GET /api/v1/products/{id}"), (DB, "DBService/GetProduct")} for rid, _ in done
    }
    await wait_for_records(stack.kafka_bootstrap, expected, _has(expected), within=60)
    assert {status for _, status in done} == {200}
    assert len(done) > 50


async def test_logging_service_down_for_10_s_loses_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    async def restart_logging_service() -> None:
        await asyncio.to_thread(stack.processes["logging_service"].stop, 10)
        await asyncio.sleep(10)
        stack.processes["logging_service"] = start_service(
            "logging_service", stack.env, stack.log_dir
        )
        await asyncio.to_thread(wait_ready, stack.gateway_url, stack.processes)

    await _outage(client, stack, restart_logging_service)


async def test_broker_paused_for_10_s_loses_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    broker = stack.broker

    async def pause_broker() -> None:
        broker.pause()
        try:
            await asyncio.sleep(10)
        finally:
            broker.resume()

    await _outage(client, stack, pause_broker)


async def test_a_full_spool_drops_counts_and_reports_but_fails_no_request(stack: Stack) -> None:
    from scripts.processes import free_port

    log_port, gw_port = free_port(), free_port()
    env = dict(
        stack.env,
        GATEWAY_PORT=str(gw_port),
        LOGGING_SERVICE_ADDR=f"127.0.0.1:{log_port}",
        LOGGING_SERVICE_LISTEN=f"127.0.0.1:{log_port}",
        LOG_SPOOL_MAX_BYTES="4096",  # about 25 records of `{ welcome }`
    )
    gateway = start_service("gateway", env, stack.log_dir)
    logging_service = None
    try:
        url = f"http://127.0.0.1:{gw_port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:

            async def up() -> bool:
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            for _ in range(300):
                if await up():
                    break
                await asyncio.sleep(0.05)
            statuses = [
                (await c.post("/graphql", json={"query": "{ welcome }"})).status_code
                for _ in range(100)
            ]
            metrics = (await c.get("/metrics")).text
            dropped = _metric(metrics, "gateway_log_records_dropped_total")
            spooled = _metric(metrics, "gateway_log_spool_bytes")

            logging_service = start_service("logging_service", env, stack.log_dir)

            async def reported() -> list[dict[str, Any]]:
                return [
                    r
                    for r in await read_all(stack.kafka_bootstrap)
                    if r["operation"] == "LogShipper.dropped" and r["service"] == "gateway"
                ]

            for _ in range(300):
                warnings = await reported()
                if warnings:
                    break
                await asyncio.sleep(0.1)
    finally:
        gateway.stop(10)
        if logging_service is not None:
            logging_service.stop(10)

    assert statuses == [200] * 100
    assert 0 < spooled <= 4096
    assert dropped >= 60
    assert warnings, "no LogShipper.dropped record arrived"
    assert str(int(dropped)) in warnings[0]["message"] or "dropped" in warnings[0]["message"]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_logs_subscription_receives_calls_made_while_open(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    token = await admin_token(client)
    rid = _rid()
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/graphql"

    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            ).decode()
        )
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
        await ws.send(
            orjson.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription { logs { requestId operation service user } }"
                    },
                }
            ).decode()
        )
        # Keep calling until the stream is live, then look for our request's records.
        seen: set[tuple[str, str]] = set()

        async def call_and_watch() -> None:
            while (GW, "GET /api/v1/products/{id}") not in seen or (
                DB,
                "DBService/GetProduct",
            ) not in seen:
                await client.get("/api/v1/products/1", headers={"X-Request-ID": rid})
                try:
                    message = orjson.loads(await asyncio.wait_for(ws.recv(), 1))
                except TimeoutError:
                    continue
                assert message["type"] == "next", message
                record = message["payload"]["data"]["logs"]
                if record["requestId"] == rid:
                    seen.add((record["service"], record["operation"]))

        await asyncio.wait_for(call_and_watch(), 30)

    assert seen >= {(GW, "GET /api/v1/products/{id}"), (DB, "DBService/GetProduct")}


async def test_logs_subscription_is_for_admins_only(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    user = await make_user(client)
    ws_url = stack.gateway_url.replace("http://", "ws://") + "/graphql"

    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            orjson.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {user.token}"}}
            ).decode()
        )
        await asyncio.wait_for(ws.recv(), 10)
        await ws.send(
            orjson.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { logs { requestId } }"},
                }
            ).decode()
        )
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))

    assert message["type"] in {"next", "error"}
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
