"""Matrix, the log outbox under a crash: db_service killed with SIGKILL in the middle of a burst
of orders; after it restarts, every order that committed has exactly one record in log-channel,
whether or not its buyer got an answer."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from scripts.infra import EmbeddedPostgres
from tests.conftest import Stack, start_service
from tests.factories import admin_token, make_product, make_user
from tests.logtopic import read_all
from tests.ownstack import OwnStack, own_services, wait_started

PLACE = "mutation($p: Int!) { placeOrder(productId: $p, quantity: 1) { id } }"
PLACED = re.compile(r"^Order (\d+) placed")


@pytest.fixture
def shop(stack: Stack, postgres: EmbeddedPostgres) -> Iterator[OwnStack]:
    """A database, logging service (and topic), db_service and gateway of the test's own."""
    with own_services(
        stack,
        ("logging_service", "db_service", "gateway"),
        DATABASE_URL=postgres.ensure_database(f"outbox_{uuid.uuid4().hex[:8]}"),
        KAFKA_TOPIC=f"log-outbox-{uuid.uuid4().hex[:8]}",
        ORDER_RATE_LIMIT="1000000",
    ) as own:
        yield own


async def _burst(
    url: str, token: str, product_id: int, stop: asyncio.Event, answered: list[int]
) -> None:
    """Orders from 6 clients until `stop` or db_service's death; the ids answered go to
    `answered`."""

    async def buyer() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            while not stop.is_set():
                r = await c.post(
                    "/graphql",
                    json={"query": PLACE, "variables": {"p": product_id}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                data = r.json().get("data") or {}
                if not data.get("placeOrder"):
                    return  # db_service is gone (UNAVAILABLE)
                answered.append(int(data["placeOrder"]["id"]))

    await asyncio.gather(*(buyer() for _ in range(6)))


async def test_every_committed_order_has_one_record_after_db_service_is_killed(
    stack: Stack, shop: OwnStack
) -> None:
    # given a shopper and a product in a shop of the test's own
    async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=30) as c:
        shopper = await make_user(c)
        product = await make_product(c, await admin_token(c), stock=100_000)

    # when db_service is killed with SIGKILL in the middle of a burst of orders, and restarted
    stop = asyncio.Event()
    answered: list[int] = []
    burst = asyncio.create_task(
        _burst(shop.gateway_url, shopper.token, product["id"], stop, answered)
    )
    deadline = time.monotonic() + 30
    while len(answered) < 60:
        assert time.monotonic() < deadline, "the burst never got going"
        assert not burst.done(), "the burst ended before db_service was killed"
        await asyncio.sleep(0.01)  # polls the burst's progress, bounded by the deadline
    os.kill(shop.processes["db_service"].pid, signal.SIGKILL)
    stop.set()
    await burst
    shop.processes["db_service"].wait(timeout=10)
    shop.processes["db_service"] = start_service("db_service", shop.env, stack.log_dir)
    await asyncio.to_thread(wait_started, shop)

    # then every order that committed has exactly one record in the topic (same event id
    # however often it was sent), and none exists for an order that did not commit
    conn = await asyncpg.connect(shop.env["DATABASE_URL"])
    try:
        committed = {r["id"] for r in await conn.fetch("SELECT id FROM orders")}
    finally:
        await conn.close()
    events: dict[int, set[str]] = collections.defaultdict(set)
    sent: collections.Counter[int] = collections.Counter()
    for _ in range(150):
        events.clear()
        sent.clear()
        for r in await read_all(stack.kafka_bootstrap, shop.env["KAFKA_TOPIC"]):
            if r["operation"] == "Order.placed" and (m := PLACED.match(r["message"])):
                events[int(m[1])].add(r["event_id"])
                sent[int(m[1])] += 1
        if set(events) >= committed:
            break
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the loop
    print(
        f"\nkill -9 db_service mid-burst: {len(answered)} orders answered, {len(committed)}"
        f" committed, {len(events)} with a record ({sum(sent.values()) - len(sent)} re-sent)"
    )
    assert set(answered) <= committed
    assert set(events) == committed
    assert all(len(ids) == 1 for ids in events.values())


async def _placed_records(stack: Stack, topic: str) -> set[int]:
    """The order ids of the `Order.placed` records in `topic`."""
    return {
        int(m[1])
        for r in await read_all(stack.kafka_bootstrap, topic)
        if r["operation"] == "Order.placed" and (m := PLACED.match(r["message"]))
    }


async def _wait_for_placed(stack: Stack, topic: str, ids: set[int], within: float) -> set[int]:
    deadline = time.monotonic() + within
    while not ids <= (found := await _placed_records(stack, topic)):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)  # the polling interval of a wait bounded by the deadline
    return found


async def test_the_relay_goes_on_after_postgres_drops_its_connection_mid_batch(
    stack: Stack, shop: OwnStack
) -> None:
    # given a shopper whose first order's record the relay has shipped
    topic = shop.env["KAFKA_TOPIC"]
    async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=30) as c:
        shopper = await make_user(c)
        product = await make_product(c, await admin_token(c), stock=100)

        async def place() -> int:
            r = await c.post(
                "/graphql",
                json={"query": PLACE, "variables": {"p": product["id"]}},
                headers={"Authorization": f"Bearer {shopper.token}"},
            )
            return int(r.json()["data"]["placeOrder"]["id"])

        first = await place()
        assert first in await _wait_for_placed(stack, topic, {first}, within=20)

        # when PostgreSQL drops the relay's connection while it waits for logging_service's
        # acknowledgement of the next batch (a failover, a restart, a network blip)
        logging_service = shop.processes["logging_service"]
        logging_service.pause()
        try:
            second = await place()
            conn = await asyncpg.connect(shop.env["DATABASE_URL"])
            try:
                deadline = time.monotonic() + 20
                while not await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'idle in transaction'"
                ):
                    assert time.monotonic() < deadline, "the relay never began the batch"
                    await asyncio.sleep(0.05)  # polls pg_stat_activity, bounded by the deadline
                terminated = await conn.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'idle in transaction') t"
                )
            finally:
                await conn.close()
        finally:
            logging_service.resume()
        assert terminated >= 1

        # then the relay ships that batch again and every later one: it did not stop
        third = await place()
        found = await _wait_for_placed(stack, topic, {second, third}, within=30)
    assert {first, second, third} <= found, f"records of orders {first, second, third}: {found}"
    assert shop.processes["db_service"].running


async def _relay_holder(conn: asyncpg.Connection) -> int:
    """How many sessions hold the relay's advisory lock, idle in their transaction."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.objid = $1 AND l.granted"
        " AND a.state = 'idle in transaction'",
        0x6C6F6773,
    )
    return count


async def test_a_replica_frozen_mid_batch_does_not_stop_the_other_ones_relay(
    stack: Stack, shop: OwnStack
) -> None:
    # given a shop whose db_service took a batch of the outbox and waits for logging_service's
    # acknowledgement of it, holding the relay lock
    topic = shop.env["KAFKA_TOPIC"]
    async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=30) as c:
        shopper = await make_user(c)
        product = await make_product(c, await admin_token(c), stock=100)
    frozen = shop.processes["db_service"]
    conn = await asyncpg.connect(shop.env["DATABASE_URL"])
    try:
        shop.processes["logging_service"].pause()
        try:
            async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=30) as c:
                r = await c.post(
                    "/graphql",
                    json={"query": PLACE, "variables": {"p": product["id"]}},
                    headers={"Authorization": f"Bearer {shopper.token}"},
                )
            first = int(r.json()["data"]["placeOrder"]["id"])
            deadline = time.monotonic() + 20
            while not await _relay_holder(conn):
                assert time.monotonic() < deadline, "the relay never began the batch"
                await asyncio.sleep(0.05)  # polls pg_locks, bounded by the deadline

            # when that db_service's host freezes there (a VM paused, a partition: its
            # connection stays open, nothing closes it), and another replica serves on
            frozen.pause()
        finally:
            shop.processes["logging_service"].resume()
        try:
            with own_services(
                stack,
                ("db_service", "gateway"),
                DATABASE_URL=shop.env["DATABASE_URL"],
                LOGGING_SERVICE_ADDR=shop.logging_addr,
                KAFKA_TOPIC=topic,
                ORDER_RATE_LIMIT="1000000",
            ) as other:
                async with httpx.AsyncClient(base_url=other.gateway_url, timeout=30) as c:
                    r = await c.post(
                        "/graphql",
                        json={"query": PLACE, "variables": {"p": product["id"]}},
                        headers={"Authorization": f"Bearer {shopper.token}"},
                    )
                second = int(r.json()["data"]["placeOrder"]["id"])

                # then the other replica relays the outbox (the frozen batch too) within
                # bounded time, rather than for as long as the frozen one stays frozen
                found = await _wait_for_placed(stack, topic, {first, second}, within=45)
                # and the rows go once acknowledged: a record is in the topic before the
                # relay's DELETE of its row commits, so the count is waited for too
                deadline = time.monotonic() + 30
                while (waiting := await conn.fetchval("SELECT count(*) FROM log_outbox")) > 0:
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)  # the polling interval of a wait bounded by it
        finally:
            frozen.resume()
    finally:
        await conn.close()
    assert {first, second} <= found, f"records of orders {first, second}: {found}"
    assert waiting == 0
